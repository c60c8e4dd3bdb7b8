//! Function-style casts and conversion functions, per dialect.
//!
//! `CAST(x AS t)`, `x::t` and MySQL's `CONVERT(x, t)` are syntax and pass the walk on their own; this list is
//! for the spellings that parse as ordinary function calls. A name belongs here only when every call of it on
//! the dialect's servers converts its arguments and nothing else: no catalog lookup, no file, no other
//! database, no session state. Names are lowercase, like the callers' lowercased last name part.

use crate::Dialect;

/// PostgreSQL resolves `typename(x)` to the type's conversion function in `pg_catalog` or to the cast itself
/// (the function-call syntax of type casts). Unquoted `time(x)`, `timestamp(x)`, `interval(x)` and
/// `varchar(x)` are syntax errors there (keywords), which the server reports; quoted, they are casts. Left
/// out on purpose: the `reg*` and `oid` types (they look names up in the catalogs), `xml` (a parser of its
/// own, never needed to answer a question about data), `pg_lsn`, `txid_snapshot` and other server-internal
/// types.
const POSTGRESQL: &[&str] = &[
    // dates and times
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    // numbers
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    // strings
    "text",
    "varchar",
    "bpchar",
    // other value types
    "bool",
    "uuid",
    "json",
    "jsonb",
    "bytea",
    "inet",
    "cidr",
];

/// MySQL and MariaDB already allow `DATE()`, `TIME()`, `TIMESTAMP()` and the other date functions; these are
/// the conversions they lacked. `TO_CHAR` exists on MariaDB (10.6+), `BIN_TO_UUID`/`UUID_TO_BIN` on MySQL
/// (8.0+): the other server reports the unknown function. There is no `DATETIME()` function on either server.
const MYSQL: &[&str] = &["to_char", "inet6_aton", "inet6_ntoa", "bin_to_uuid", "uuid_to_bin"];

/// SQLite converts with `CAST` only: its type names are not functions, and `date()`, `time()`, `datetime()`,
/// `julianday()`, `unixepoch()` and `strftime()` are on its allowlist already.
const SQLITE: &[&str] = &[];

/// Whether `name` is a pure cast or conversion function of `dialect`.
pub(crate) fn is_cast_function(dialect: Dialect, name: &str) -> bool {
    casts(dialect).contains(&name)
}

fn casts(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgresql => POSTGRESQL,
        Dialect::Mysql => MYSQL,
        Dialect::Sqlite => SQLITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::is_denied_function;

    #[test]
    fn no_cast_is_denied() {
        for dialect in Dialect::ALL {
            for name in casts(dialect) {
                assert!(!is_denied_function(name), "{name} in {dialect}");
            }
        }
    }

    #[test]
    fn casts_are_per_dialect() {
        assert!(is_cast_function(Dialect::Postgresql, "int4"));
        assert!(!is_cast_function(Dialect::Mysql, "int4"));
        assert!(!is_cast_function(Dialect::Sqlite, "int4"));
        assert!(is_cast_function(Dialect::Mysql, "inet6_aton"));
        assert!(!is_cast_function(Dialect::Postgresql, "inet6_aton"));
    }
}
