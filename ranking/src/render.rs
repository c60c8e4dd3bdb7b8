//! One table as one prompt line, in the shape the worker has always sent (models are used to it), with the table's
//! comment and foreign keys after it:
//!
//! ```text
//! TABLE sales_orders (id bigint PRIMARY KEY, customer_id bigint -- 客户ID, amount decimal(12,2) -- 订单金额) -- 销售订单; FK customer_id -> sales_customers.id
//! ```
//!
//! A line whose columns were pruned says how many it leaves out (`..., ... 37 more columns)`), so that the model
//! knows the list is not the whole table.

use std::fmt::Write;

use querygpt_common::schema::{ColumnInfo, ForeignKey, TableInfo};

/// Appends the line of `table` (with its `\n`) to `out`; with `keep`, only the columns it marks.
pub(crate) fn table(out: &mut String, table: &TableInfo, keep: Option<&[bool]>) {
    out.push_str("TABLE ");
    out.push_str(&table.name);
    out.push_str(" (");
    let mut written = 0;
    for (i, col) in table.columns.iter().enumerate() {
        if keep.is_some_and(|keep| !keep[i]) {
            continue;
        }
        if written > 0 {
            out.push_str(", ");
        }
        column(out, col);
        written += 1;
    }
    let omitted = table.columns.len() - written;
    if omitted > 0 {
        if written > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "... {omitted} more columns");
    }
    out.push(')');
    let comment = table.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if comment.is_some() || !table.foreign_keys.is_empty() {
        out.push_str(" --");
    }
    if let Some(comment) = comment {
        out.push(' ');
        one_line(out, comment);
    }
    if !table.foreign_keys.is_empty() {
        if comment.is_some() {
            out.push(';');
        }
        out.push_str(" FK ");
        for (i, fk) in table.foreign_keys.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            foreign_key(out, fk);
        }
    }
    out.push('\n');
}

/// `name type[ PRIMARY KEY][ -- comment]` (no type for the SQLite view columns that have none).
pub(crate) fn column(out: &mut String, column: &ColumnInfo) {
    out.push_str(&column.name);
    if !column.data_type.is_empty() {
        out.push(' ');
        out.push_str(&column.data_type);
    }
    if column.primary {
        out.push_str(" PRIMARY KEY");
    }
    if let Some(comment) = column.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        out.push_str(" -- ");
        one_line(out, comment);
    }
}

/// `customer_id -> customers.id`; `(a, b) -> t(x, y)` when composite; `a -> t` when the referenced columns are
/// implicit (SQLite's `REFERENCES t`, its primary key).
fn foreign_key(out: &mut String, fk: &ForeignKey) {
    let list = |out: &mut String, names: &[String]| {
        out.push('(');
        out.push_str(&names.join(", "));
        out.push(')');
    };
    match fk.columns.as_slice() {
        [single] => out.push_str(single),
        many => list(out, many),
    }
    out.push_str(" -> ");
    out.push_str(&fk.referenced_table);
    match fk.referenced_columns.as_slice() {
        [] => {}
        [single] => {
            out.push('.');
            out.push_str(single);
        }
        many => list(out, many),
    }
}

/// A comment on the table's one line: line breaks become spaces.
fn one_line(out: &mut String, text: &str) {
    if text.contains(['\n', '\r']) {
        out.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_common::schema::TableKind;

    fn col(name: &str, data_type: &str, primary: bool, comment: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: data_type.into(),
            nullable: !primary,
            primary,
            comment: comment.map(Into::into),
        }
    }

    fn order_items() -> TableInfo {
        TableInfo {
            name: "order_items".into(),
            kind: TableKind::Table,
            comment: Some("订单明细\n(one row a line)".into()),
            columns: vec![
                col("order_id", "integer", true, None),
                col("line_no", "integer", true, None),
                col("product_id", "integer", false, Some("产品")),
                col("qty", "", false, Some("  ")),
            ],
            foreign_keys: vec![
                ForeignKey {
                    columns: vec!["order_id".into()],
                    referenced_table: "orders".into(),
                    referenced_columns: vec!["id".into()],
                },
                ForeignKey {
                    columns: vec!["product_id".into(), "line_no".into()],
                    referenced_table: "products".into(),
                    referenced_columns: vec!["id".into(), "version".into()],
                },
                ForeignKey {
                    columns: vec!["qty".into()],
                    referenced_table: "units".into(),
                    referenced_columns: Vec::new(),
                },
            ],
            row_count: None,
        }
    }

    #[test]
    fn the_line_has_columns_comment_and_foreign_keys() {
        let mut out = String::new();
        table(&mut out, &order_items(), None);
        assert_eq!(
            out,
            "TABLE order_items (order_id integer PRIMARY KEY, line_no integer PRIMARY KEY, product_id integer -- 产品, \
             qty) -- 订单明细 (one row a line); FK order_id -> orders.id, (product_id, line_no) -> products(id, \
             version), qty -> units\n"
        );
    }

    #[test]
    fn a_plain_table_keeps_the_historical_shape() {
        let mut plain = order_items();
        plain.comment = None;
        plain.foreign_keys.clear();
        plain.columns.truncate(1);
        let mut out = String::new();
        table(&mut out, &plain, None);
        assert_eq!(out, "TABLE order_items (order_id integer PRIMARY KEY)\n");
    }

    #[test]
    fn pruned_columns_are_counted() {
        let mut t = order_items();
        t.foreign_keys.clear();
        let mut out = String::new();
        table(&mut out, &t, Some(&[true, false, false, true]));
        assert_eq!(
            out,
            "TABLE order_items (order_id integer PRIMARY KEY, qty, ... 2 more columns) -- 订单明细 (one row a line)\n"
        );
        out.clear();
        table(&mut out, &t, Some(&[false; 4]));
        assert!(out.starts_with("TABLE order_items (... 4 more columns)"), "{out}");
    }
}
