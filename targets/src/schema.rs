//! What a database contains, as the LLM prompt and `GET /connections/{id}/schema` need it.

use serde::{Deserialize, Serialize};

/// Tables and views of a database, system schemas excluded, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSchema {
    pub tables: Vec<TableInfo>,
}

/// One table or view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// The name to write in SQL: PostgreSQL tables outside `public` are qualified (`sales.orders`).
    pub name: String,
    pub kind: TableKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub columns: Vec<ColumnInfo>,
    /// Approximate row count from the database's statistics (PostgreSQL `reltuples`, MySQL `TABLE_ROWS`, SQLite
    /// `sqlite_stat1`); absent when the database keeps none. Never counted by a scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// One column.
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

impl DbSchema {
    /// Groups rows of a (table, column) listing into tables, keeping the listing's order.
    pub(crate) fn push_column(&mut self, table: TableHeader, column: ColumnInfo) {
        match self.tables.last_mut() {
            Some(last) if last.name == table.name => last.columns.push(column),
            _ => self.tables.push(TableInfo {
                name: table.name,
                kind: table.kind,
                comment: table.comment,
                columns: vec![column],
                row_count: table.row_count,
            }),
        }
    }
}

/// Table-level facts repeated on every column row of a catalog query.
pub(crate) struct TableHeader {
    pub name: String,
    pub kind: TableKind,
    pub comment: Option<String>,
    pub row_count: Option<i64>,
}

/// Empty comments are no comments.
pub(crate) fn comment(c: Option<String>) -> Option<String> {
    c.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty())
}
