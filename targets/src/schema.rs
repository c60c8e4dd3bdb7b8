//! Building a [`DbSchema`] from catalog rows. The types live in `querygpt_common::schema` (workers send them to
//! API nodes).

pub use querygpt_common::schema::{ColumnInfo, DbSchema, ForeignKey, TableInfo, TableKind};
use std::collections::HashMap;

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

/// One column pair of a foreign key, as a catalog lists it: ordered by table, then key, then position in the key.
pub(crate) struct ForeignKeyColumn {
    /// The referencing table, named as in [`TableInfo::name`].
    pub table: String,
    /// Tells the keys of one table apart (constraint name or number); consecutive rows with the same `table` and
    /// `key` form one foreign key.
    pub key: String,
    pub column: String,
    /// The referenced table as the catalog names it (SQLite keeps the spelling of the `REFERENCES` clause).
    pub referenced_table: String,
    pub referenced_column: String,
}

/// Groups foreign key columns into [`ForeignKey`]s and attaches them to their tables.
///
/// The referenced table is renamed to the listed table it means: the same name, or else the one listed table whose
/// name differs only in case (SQLite and case-insensitive MySQL servers compare table names that way). A key
/// whose table or referenced table is not listed (not readable by the login, in another database) is left out:
/// the prompt must only name tables the model can query.
pub(crate) fn attach_foreign_keys(schema: &mut DbSchema, columns: impl IntoIterator<Item = ForeignKeyColumn>) {
    let mut keys: Vec<(String, String, ForeignKey)> = Vec::new();
    for c in columns {
        match keys.last_mut() {
            Some((table, key, fk))
                if *table == c.table && *key == c.key && fk.referenced_table == c.referenced_table =>
            {
                fk.columns.push(c.column);
                fk.referenced_columns.push(c.referenced_column);
            }
            _ => keys.push((
                c.table,
                c.key,
                ForeignKey {
                    columns: vec![c.column],
                    referenced_table: c.referenced_table,
                    referenced_columns: vec![c.referenced_column],
                },
            )),
        }
    }
    let index: HashMap<String, usize> = schema.tables.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    for (table, _, mut fk) in keys {
        let (Some(&at), Some(referenced)) = (index.get(&table), listed_name(schema, &index, &fk.referenced_table))
        else {
            continue;
        };
        fk.referenced_table = referenced;
        schema.tables[at].foreign_keys.push(fk);
    }
}

/// The listed table `name` means: itself, or the only listed table equal to it ignoring ASCII case.
fn listed_name(schema: &DbSchema, index: &HashMap<String, usize>, name: &str) -> Option<String> {
    if index.contains_key(name) {
        return Some(name.to_owned());
    }
    let mut alike = schema.tables.iter().filter(|t| t.name.eq_ignore_ascii_case(name));
    match (alike.next(), alike.next()) {
        (Some(only), None) => Some(only.name.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> TableInfo {
        TableInfo {
            name: name.into(),
            kind: TableKind::Table,
            comment: None,
            columns: Vec::new(),
            foreign_keys: Vec::new(),
            row_count: None,
        }
    }

    fn column(table: &str, key: &str, column: &str, referenced: (&str, &str)) -> ForeignKeyColumn {
        ForeignKeyColumn {
            table: table.into(),
            key: key.into(),
            column: column.into(),
            referenced_table: referenced.0.into(),
            referenced_column: referenced.1.into(),
        }
    }

    #[test]
    fn foreign_keys_are_grouped_renamed_and_filtered() {
        let mut schema = DbSchema { tables: vec![table("lines"), table("Orders"), table("shipments")] };
        attach_foreign_keys(
            &mut schema,
            [
                column("lines", "1", "order_id", ("orders", "id")),
                column("shipments", "a", "order_id", ("lines", "order_id")),
                column("shipments", "a", "line", ("lines", "line")),
                column("shipments", "b", "order_id", ("Orders", "id")),
                // Not listed (another database, no privilege): left out.
                column("shipments", "c", "carrier", ("carriers", "id")),
                column("hidden", "1", "order_id", ("Orders", "id")),
            ],
        );
        let keys = |t: &TableInfo| {
            t.foreign_keys
                .iter()
                .map(|fk| (fk.columns.join(","), fk.referenced_table.clone(), fk.referenced_columns.join(",")))
                .collect::<Vec<_>>()
        };
        let fk = |c: &str, t: &str, r: &str| (c.to_owned(), t.to_owned(), r.to_owned());
        assert_eq!(keys(&schema.tables[0]), vec![fk("order_id", "Orders", "id")]);
        assert!(schema.tables[1].foreign_keys.is_empty());
        assert_eq!(
            keys(&schema.tables[2]),
            vec![fk("order_id,line", "lines", "order_id,line"), fk("order_id", "Orders", "id")]
        );
    }

    #[test]
    fn a_referenced_name_that_differs_in_case_must_be_unambiguous() {
        let mut schema = DbSchema { tables: vec![table("a"), table("T"), table("t2"), table("x"), table("X")] };
        attach_foreign_keys(&mut schema, [column("a", "1", "id", ("t", "id")), column("a", "2", "id", ("x", "id"))]);
        let referenced: Vec<&str> = schema.tables[0].foreign_keys.iter().map(|f| f.referenced_table.as_str()).collect();
        // `t` means `T`; `x` is listed as itself, so it is not confused with `X`.
        assert_eq!(referenced, vec!["T", "x"]);
    }
}
