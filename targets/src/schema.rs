//! Building a [`DbSchema`] from catalog rows. The types live in `querygpt_common::schema` (workers send them to
//! API nodes).

pub use querygpt_common::schema::{ColumnInfo, DbSchema, ForeignKey, TableInfo, TableKind};

/// Groups rows of a (table, column) listing into tables, keeping the listing's order.
pub(crate) fn push_column(schema: &mut DbSchema, table: TableHeader, column: ColumnInfo) {
    match schema.tables.last_mut() {
        Some(last) if last.name == table.name => last.columns.push(column),
        _ => schema.tables.push(TableInfo {
            name: table.name,
            kind: table.kind,
            comment: table.comment,
            columns: vec![column],
            foreign_keys: Vec::new(),
            row_count: table.row_count,
        }),
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
