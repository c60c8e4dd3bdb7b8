//! Function allowlists and denylist, and the catalogs that may not be read. Names are lowercase; callers pass
//! the lowercased last part of a (possibly qualified, possibly quoted) name.

use crate::{Dialect, casts};

/// Prefixes of dangerous function families: large objects, dblink, server file access, advisory locks,
/// replication and statistics resets, XML functions that run arbitrary SQL, SQLite pragma functions.
const DENIED_PREFIXES: &[&str] = &[
    "lo_",
    "dblink",
    "pg_ls_",
    "pg_read_",
    "pg_file_",
    "pg_stat_file",
    "pg_advisory",
    "pg_try_advisory",
    "pg_stat_reset",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_logical_",
    "pg_stat_get_",
    "binary_upgrade_",
    "query_to_xml",
    "table_to_xml",
    "cursor_to_xml",
    "schema_to_xml",
    "database_to_xml",
    "pragma_",
    "sqlite_",
];

/// The second net: known-dangerous functions in any dialect. Checked before the allowlist so that the rule
/// names the danger, and so that an allowlist mistake cannot let one of these through.
pub(crate) fn is_denied_function(name: &str) -> bool {
    DENIED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || matches!(
            name,
            // PostgreSQL: files, sleep, settings, sequences, backends, locks, notifications, transaction ids.
            "pg_sleep"
                | "pg_sleep_for"
                | "pg_sleep_until"
                | "set_config"
                | "current_setting"
                | "nextval"
                | "setval"
                | "currval"
                | "lastval"
                | "pg_terminate_backend"
                | "pg_cancel_backend"
                | "pg_signal_backend"
                | "pg_reload_conf"
                | "pg_rotate_logfile"
                | "pg_switch_wal"
                | "pg_promote"
                | "pg_backup_start"
                | "pg_backup_stop"
                | "pg_start_backup"
                | "pg_stop_backup"
                | "pg_notify"
                | "pg_export_snapshot"
                | "pg_log_backend_memory_contexts"
                | "pg_current_xact_id"
                | "txid_current"
                | "loread"
                | "lowrite"
                | "setseed"
                // MySQL / MariaDB: files, sleep, CPU burn, named locks, replication waits, UDF shells.
                | "load_file"
                | "sleep"
                | "benchmark"
                | "get_lock"
                | "release_lock"
                | "release_all_locks"
                | "is_free_lock"
                | "is_used_lock"
                | "master_pos_wait"
                | "source_pos_wait"
                | "wait_for_executed_gtid_set"
                | "wait_until_sql_thread_after_gtids"
                | "sys_exec"
                | "sys_eval"
                | "last_insert_id"
                // SQLite: extensions and the CLI's file functions.
                | "load_extension"
                | "readfile"
                | "writefile"
                | "edit"
                | "fsdir"
                | "zipfile"
                | "fts3_tokenizer"
        )
}

/// Whether `name` is an ordinary scalar, aggregate, window or table function of `dialect`, or one of its cast
/// and conversion functions.
pub(crate) fn is_allowed_function(dialect: Dialect, name: &str) -> bool {
    is_common_function(name)
        || match dialect {
            Dialect::Postgresql => is_postgresql_function(name),
            Dialect::Mysql => is_mysql_function(name),
            Dialect::Sqlite => is_sqlite_function(name),
        }
        || casts::is_cast_function(dialect, name)
}

fn is_common_function(name: &str) -> bool {
    matches!(
        name,
        // aggregates
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "stddev"
            | "stddev_pop"
            | "stddev_samp"
            | "variance"
            | "var_pop"
            | "var_samp"
            | "grouping"
            // window functions
            | "row_number"
            | "rank"
            | "dense_rank"
            | "percent_rank"
            | "cume_dist"
            | "ntile"
            | "lag"
            | "lead"
            | "first_value"
            | "last_value"
            | "nth_value"
            // conditionals
            | "coalesce"
            | "nullif"
            // math
            | "abs"
            | "ceil"
            | "ceiling"
            | "floor"
            | "round"
            | "mod"
            | "power"
            | "pow"
            | "sqrt"
            | "exp"
            | "ln"
            | "log"
            | "log10"
            | "log2"
            | "sign"
            | "pi"
            | "degrees"
            | "radians"
            | "sin"
            | "cos"
            | "tan"
            | "asin"
            | "acos"
            | "atan"
            | "atan2"
            // strings
            | "length"
            | "char_length"
            | "character_length"
            | "octet_length"
            | "lower"
            | "upper"
            | "concat"
            | "concat_ws"
            | "substr"
            | "substring"
            | "trim"
            | "ltrim"
            | "rtrim"
            | "replace"
            | "position"
            | "current_date"
            | "current_time"
            | "current_timestamp"
    )
}

fn is_postgresql_function(name: &str) -> bool {
    matches!(
        name,
        // aggregates
        "bool_and"
            | "bool_or"
            | "every"
            | "array_agg"
            | "string_agg"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "percentile_cont"
            | "percentile_disc"
            | "mode"
            | "corr"
            | "covar_pop"
            | "covar_samp"
            | "regr_slope"
            | "regr_intercept"
            | "regr_r2"
            | "regr_count"
            | "regr_avgx"
            | "regr_avgy"
            | "bit_and"
            | "bit_or"
            | "bit_xor"
            | "any_value"
            // conditionals and comparison
            | "greatest"
            | "least"
            | "num_nulls"
            | "num_nonnulls"
            // math
            | "trunc"
            | "cbrt"
            | "div"
            | "cot"
            | "sinh"
            | "cosh"
            | "tanh"
            | "width_bucket"
            | "gcd"
            | "lcm"
            | "factorial"
            | "scale"
            | "trim_scale"
            | "random"
            // strings
            | "btrim"
            | "initcap"
            | "left"
            | "right"
            | "lpad"
            | "rpad"
            | "repeat"
            | "reverse"
            | "strpos"
            | "split_part"
            | "ascii"
            | "chr"
            | "format"
            | "md5"
            | "sha224"
            | "sha256"
            | "sha384"
            | "sha512"
            | "encode"
            | "decode"
            | "translate"
            | "overlay"
            | "starts_with"
            | "string_to_array"
            | "array_to_string"
            | "regexp_replace"
            | "regexp_match"
            | "regexp_matches"
            | "regexp_like"
            | "regexp_substr"
            | "regexp_instr"
            | "regexp_count"
            | "regexp_split_to_array"
            | "regexp_split_to_table"
            | "string_to_table"
            | "quote_ident"
            | "quote_literal"
            | "quote_nullable"
            | "to_hex"
            | "bit_length"
            | "normalize"
            | "unistr"
            | "to_ascii"
            // formatting (function-style casts are in `casts`)
            | "to_char"
            | "to_number"
            | "to_date"
            | "to_timestamp"
            // dates and times
            | "now"
            | "localtime"
            | "localtimestamp"
            | "clock_timestamp"
            | "statement_timestamp"
            | "transaction_timestamp"
            | "date_trunc"
            | "date_part"
            | "date_bin"
            | "date_add"
            | "date_subtract"
            | "extract"
            | "age"
            | "make_date"
            | "make_time"
            | "make_timestamp"
            | "make_timestamptz"
            | "make_interval"
            | "justify_days"
            | "justify_hours"
            | "justify_interval"
            | "isfinite"
            | "timezone"
            // set-returning and arrays
            | "generate_series"
            | "generate_subscripts"
            | "unnest"
            | "array"
            | "row"
            | "array_length"
            | "array_upper"
            | "array_lower"
            | "array_ndims"
            | "array_dims"
            | "array_position"
            | "array_positions"
            | "array_append"
            | "array_prepend"
            | "array_cat"
            | "array_remove"
            | "array_replace"
            | "cardinality"
            // JSON
            | "to_json"
            | "to_jsonb"
            | "row_to_json"
            | "array_to_json"
            | "json_build_object"
            | "jsonb_build_object"
            | "json_build_array"
            | "jsonb_build_array"
            | "json_object"
            | "jsonb_object"
            | "json_array_length"
            | "jsonb_array_length"
            | "json_typeof"
            | "jsonb_typeof"
            | "json_extract_path"
            | "jsonb_extract_path"
            | "json_extract_path_text"
            | "jsonb_extract_path_text"
            | "json_each"
            | "jsonb_each"
            | "json_each_text"
            | "jsonb_each_text"
            | "json_array_elements"
            | "jsonb_array_elements"
            | "json_array_elements_text"
            | "jsonb_array_elements_text"
            | "json_object_keys"
            | "jsonb_object_keys"
            | "jsonb_pretty"
            | "jsonb_strip_nulls"
            | "json_strip_nulls"
            | "jsonb_path_query"
            | "jsonb_path_query_array"
            | "jsonb_path_query_first"
            | "jsonb_path_exists"
            | "jsonb_path_match"
            // full-text search
            | "to_tsvector"
            | "to_tsquery"
            | "plainto_tsquery"
            | "phraseto_tsquery"
            | "websearch_to_tsquery"
            | "ts_rank"
            | "ts_rank_cd"
            | "ts_headline"
            // ranges
            | "lower_inc"
            | "upper_inc"
            | "isempty"
            // misc pure functions
            | "gen_random_uuid"
            | "pg_typeof"
    )
}

fn is_mysql_function(name: &str) -> bool {
    matches!(
        name,
        // aggregates
        "group_concat"
            | "json_arrayagg"
            | "json_objectagg"
            | "bit_and"
            | "bit_or"
            | "bit_xor"
            | "std"
            | "any_value"
            // conditionals and comparison
            | "if"
            | "ifnull"
            | "isnull"
            | "greatest"
            | "least"
            | "interval"
            | "strcmp"
            // math
            | "truncate"
            | "cot"
            | "rand"
            | "conv"
            | "crc32"
            | "div"
            | "bin"
            | "oct"
            // strings
            | "lcase"
            | "ucase"
            | "left"
            | "right"
            | "lpad"
            | "rpad"
            | "repeat"
            | "reverse"
            | "locate"
            | "instr"
            | "substring_index"
            | "mid"
            | "ascii"
            | "char"
            | "ord"
            | "space"
            | "field"
            | "find_in_set"
            | "elt"
            | "format"
            | "insert"
            | "hex"
            | "unhex"
            | "md5"
            | "sha1"
            | "sha2"
            | "to_base64"
            | "from_base64"
            | "quote"
            | "soundex"
            | "bit_length"
            | "bit_count"
            | "regexp_replace"
            | "regexp_substr"
            | "regexp_instr"
            | "regexp_like"
            | "inet_aton"
            | "inet_ntoa"
            | "uuid"
            // dates and times
            | "now"
            | "curdate"
            | "curtime"
            | "sysdate"
            | "localtime"
            | "localtimestamp"
            | "utc_date"
            | "utc_time"
            | "utc_timestamp"
            | "date"
            | "time"
            | "timestamp"
            | "year"
            | "month"
            | "day"
            | "dayofmonth"
            | "dayofweek"
            | "dayofyear"
            | "dayname"
            | "monthname"
            | "hour"
            | "minute"
            | "second"
            | "microsecond"
            | "week"
            | "weekday"
            | "weekofyear"
            | "yearweek"
            | "quarter"
            | "last_day"
            | "date_add"
            | "date_sub"
            | "adddate"
            | "subdate"
            | "addtime"
            | "subtime"
            | "datediff"
            | "timediff"
            | "timestampdiff"
            | "timestampadd"
            | "date_format"
            | "time_format"
            | "str_to_date"
            | "from_unixtime"
            | "unix_timestamp"
            | "makedate"
            | "maketime"
            | "period_add"
            | "period_diff"
            | "to_days"
            | "from_days"
            | "to_seconds"
            | "sec_to_time"
            | "time_to_sec"
            | "convert_tz"
            | "get_format"
            | "extract"
            // JSON
            | "json_extract"
            | "json_unquote"
            | "json_object"
            | "json_array"
            | "json_contains"
            | "json_contains_path"
            | "json_keys"
            | "json_length"
            | "json_valid"
            | "json_type"
            | "json_search"
            | "json_depth"
            | "json_value"
            | "json_quote"
            | "json_overlaps"
            | "json_pretty"
    )
}

fn is_sqlite_function(name: &str) -> bool {
    matches!(
        name,
        // aggregates
        "group_concat"
            | "string_agg"
            | "total"
            // conditionals and comparison
            | "iif"
            | "if"
            | "ifnull"
            | "likely"
            | "unlikely"
            | "likelihood"
            | "typeof"
            // math
            | "trunc"
            | "random"
            // strings
            | "instr"
            | "hex"
            | "unhex"
            | "unicode"
            | "char"
            | "quote"
            | "printf"
            | "format"
            | "glob"
            | "like"
            | "soundex"
            // dates and times
            | "date"
            | "time"
            | "datetime"
            | "julianday"
            | "unixepoch"
            | "strftime"
            | "timediff"
            // JSON
            | "json"
            | "jsonb"
            | "json_extract"
            | "json_array"
            | "json_object"
            | "json_array_length"
            | "json_type"
            | "json_valid"
            | "json_quote"
            | "json_group_array"
            | "json_group_object"
            | "json_each"
            | "json_tree"
    )
}

/// Credential and server-internal catalogs. `parts` are the lowercased parts of a table name.
pub(crate) fn is_denied_relation(dialect: Dialect, parts: &[String]) -> bool {
    let Some((table, qualifiers)) = parts.split_last() else {
        return false;
    };
    match dialect {
        Dialect::Postgresql => matches!(
            table.as_str(),
            "pg_authid"
                | "pg_shadow"
                | "pg_user"
                | "pg_auth_members"
                | "pg_user_mapping"
                | "pg_user_mappings"
                | "user_mappings"
                | "user_mapping_options"
                | "pg_hba_file_rules"
                | "pg_ident_file_mappings"
                | "pg_file_settings"
                | "pg_settings"
                | "pg_config"
                | "pg_largeobject"
                | "pg_largeobject_metadata"
                | "pg_statistic"
                | "pg_statistic_ext_data"
                | "pg_stat_activity"
                | "pg_stat_statements"
                | "pg_stat_statements_info"
                | "pg_stat_replication"
                | "pg_stat_wal_receiver"
                | "pg_stat_subscription"
                | "pg_subscription"
                | "pg_replication_slots"
                | "pg_prepared_xacts"
                | "pg_locks"
        ),
        Dialect::Mysql => {
            qualifiers.last().is_some_and(|schema| matches!(schema.as_str(), "mysql" | "performance_schema" | "sys"))
                || matches!(table.as_str(), "processlist" | "user_privileges")
        }
        // Eponymous virtual tables read without parentheses: raw database pages, pragmas, the file system.
        Dialect::Sqlite => {
            table.starts_with("pragma_") || matches!(table.as_str(), "sqlite_dbpage" | "fsdir" | "zipfile")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_function_is_both_allowed_and_denied() {
        let probes =
            ["count", "now", "lower", "pg_sleep", "sleep", "load_file", "lo_import", "dblink", "date", "json_each"];
        for dialect in Dialect::ALL {
            for name in probes {
                assert!(!(is_allowed_function(dialect, name) && is_denied_function(name)), "{name} in {dialect}");
            }
        }
    }

    #[test]
    fn denylist_catches_families_by_prefix() {
        for name in ["lo_import", "lo_export", "dblink_exec", "pg_read_binary_file", "pg_ls_dir", "query_to_xml"] {
            assert!(is_denied_function(name), "{name}");
        }
        assert!(!is_denied_function("lower"));
    }

    #[test]
    fn mysql_internal_schemas_are_denied() {
        let parts = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert!(is_denied_relation(Dialect::Mysql, &parts("mysql.user")));
        assert!(is_denied_relation(Dialect::Mysql, &parts("performance_schema.threads")));
        assert!(!is_denied_relation(Dialect::Mysql, &parts("shop.user")));
        assert!(is_denied_relation(Dialect::Postgresql, &parts("pg_catalog.pg_authid")));
        assert!(!is_denied_relation(Dialect::Postgresql, &parts("pg_catalog.pg_class")));
        assert!(!is_denied_relation(Dialect::Sqlite, &parts("sqlite_master")));
    }
}
