//! What a database contains, as the LLM prompt, `GET /connections/{id}/schema` and worker replies carry it.

use serde::{Deserialize, Serialize};

/// Tables and views of a database, system schemas excluded, sorted by name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSchema {
    pub tables: Vec<TableInfo>,
}

/// One table or view.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// The name to write in SQL: PostgreSQL tables outside `public` are qualified (`sales.orders`).
    pub name: String,
    pub kind: TableKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub columns: Vec<ColumnInfo>,
    /// Foreign keys of this table, in the order the database lists them.
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKey>,
    /// Approximate row count from the database's statistics (PostgreSQL `reltuples`, MySQL `TABLE_ROWS`, SQLite
    /// `sqlite_stat1`); absent when the database keeps none. Never counted by a scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<i64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// One column.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The declared type as the database spells it (`integer`, `varchar(100)`, `decimal(10,2)`); may be empty for
    /// SQLite view columns.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// Part of the primary key.
    pub primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A foreign key: `columns` of this table reference `referenced_columns` of `referenced_table` (named as in
/// [`TableInfo::name`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}
