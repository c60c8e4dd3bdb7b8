//! Layer 1 of the read-only guarantee: proves that a statement written by an LLM is a plain read before it
//! reaches a database. Pure and fast: no I/O, no global state.
//!
//! * [`validate`] parses one SQL statement in the target's dialect, walks the whole tree and either rejects it
//!   (naming the [`Rule`] that fired) or returns the exact text to run, re-rendered from the checked tree and
//!   re-validated after any rewrite (such as an added `LIMIT`).
//! * [`validate_redis`] checks LLM-written Redis commands against an allowlist of read-only commands and
//!   rewrites `KEYS` into a bounded `SCAN`.
//! * [`lint`] splits a file of statements and returns one JSON-serializable [`Verdict`] per statement (the
//!   `querygpt validate` subcommand).
//!
//! Everything the validator does not understand is rejected (fail closed).

mod casts;
pub mod corpus;
mod lint;
mod names;
mod redis;
mod sql;
mod walk;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use lint::{LintTarget, Verdict, lint};
pub use redis::{KEYS_SCAN_COUNT, MAX_REDIS_COMMANDS, MAX_SCAN_COUNT, RedisCommand, validate_redis};
pub use sql::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_OPERATOR_TOKENS, PARSER_RECURSION_LIMIT, validate};

/// SQL dialect of the target database (MariaDB uses [`Dialect::Mysql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgresql,
    Mysql,
    Sqlite,
}

impl Dialect {
    /// Every supported SQL dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Postgresql, Dialect::Mysql, Dialect::Sqlite];

    /// Canonical lowercase name (`postgresql`, `mysql`, `sqlite`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgresql => "postgresql",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dialect or target name that is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dialect `{0}` (expected postgresql, mysql or sqlite)")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    /// Accepts the canonical names and the usual aliases, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" => Ok(Dialect::Postgresql),
            "mysql" | "mariadb" => Ok(Dialect::Mysql),
            "sqlite" | "sqlite3" => Ok(Dialect::Sqlite),
            _ => Err(UnknownDialect(s.to_owned())),
        }
    }
}

/// Per-connection restrictions applied on top of the fixed rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// When set, every table the statement reads must be in this list. An entry is a plain name, `table` or
    /// `schema.table`, and matches a reference written with the same qualification (list both `users` and
    /// `public.users` to allow both spellings). Names compare as the database resolves them: PostgreSQL folds
    /// unquoted identifiers to lowercase, SQLite ignores ASCII case, MySQL compares exactly.
    pub allowed_tables: Option<Vec<String>>,
    /// When set, the outermost query gets `LIMIT row_limit` if it has no limit, and a larger or non-literal
    /// limit (or a `FETCH FIRST`) is replaced by it. A runner that wants to detect truncation passes its row
    /// cap + 1.
    pub row_limit: Option<u64>,
}

/// A statement that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedSql {
    /// The exact text to run: rendered from the checked syntax tree (comments dropped, rewrites applied) and
    /// validated again as text. Never run the original input instead.
    pub sql: String,
    /// Tables the statement reads (CTE names excluded), as written, deduplicated, in order of appearance.
    pub tables: Vec<String>,
}

/// The rule a rejected statement broke; serializes as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The parser (or Redis tokenizer) could not read the input.
    ParseError,
    /// No statement at all (empty, whitespace or comments only).
    Empty,
    /// Input over [`MAX_INPUT_BYTES`] or [`MAX_OPERATOR_TOKENS`], or too many Redis commands.
    TooLong,
    /// Nesting beyond the parser's recursion limit or [`MAX_DEPTH`].
    TooDeep,
    /// More than one statement (stacked queries, `COMMIT; ...` escapes).
    MultipleStatements,
    /// The statement is not a query (DML, DDL, SET, COPY, PRAGMA, transaction control, EXPLAIN...).
    NotAQuery,
    /// INSERT/UPDATE/DELETE/MERGE nested inside a query (`WITH d AS (DELETE ...) SELECT`).
    DataModifyingCte,
    /// `SELECT ... INTO` (creates a table or assigns variables).
    SelectInto,
    /// MySQL `INTO OUTFILE` / `INTO DUMPFILE` (writes server files).
    IntoOutfile,
    /// `FOR UPDATE` / `FOR SHARE` and other row locks.
    LockingClause,
    /// A function on the denylist of dangerous functions (files, sleep, locks, sequences, remote SQL...).
    DeniedFunction,
    /// A function that is not on the dialect's allowlist (or is schema-qualified outside the system schema).
    FunctionNotAllowed,
    /// A table outside the connection's allowlist.
    TableNotAllowed,
    /// A credential or server-internal catalog (pg_authid, pg_shadow, mysql.user, ...).
    SystemCatalog,
    /// Optimizer hints (`/*+ SET_VAR(...) */` can change session limits).
    OptimizerHint,
    /// MariaDB executable comment (`/*M! ... */`).
    ExecutableComment,
    /// Session or system variables (`@x`, `@@x`, `:=`).
    Variable,
    /// Valid syntax the validator does not accept (other dialects' extensions, custom operators, ...).
    UnsupportedSyntax,
    /// The row limit could not be enforced on the rewritten statement.
    LimitRewrite,
    /// A Redis command that writes data.
    WriteCommand,
    /// Redis scripting (EVAL, EVAL_RO, FCALL, SCRIPT, FUNCTION).
    ScriptingCommand,
    /// Redis administration, connection or transaction commands (CONFIG, FLUSHALL, CLIENT, MULTI...).
    AdminCommand,
    /// Redis commands that block (BLPOP, XREAD BLOCK, SUBSCRIBE, WAIT...).
    BlockingCommand,
    /// A Redis command outside the read-only allowlist.
    CommandNotAllowed,
    /// A Redis command with the wrong number or kind of arguments.
    WrongArguments,
}

impl Rule {
    /// The snake_case name used in JSON and in error details.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ParseError => "parse_error",
            Rule::Empty => "empty",
            Rule::TooLong => "too_long",
            Rule::TooDeep => "too_deep",
            Rule::MultipleStatements => "multiple_statements",
            Rule::NotAQuery => "not_a_query",
            Rule::DataModifyingCte => "data_modifying_cte",
            Rule::SelectInto => "select_into",
            Rule::IntoOutfile => "into_outfile",
            Rule::LockingClause => "locking_clause",
            Rule::DeniedFunction => "denied_function",
            Rule::FunctionNotAllowed => "function_not_allowed",
            Rule::TableNotAllowed => "table_not_allowed",
            Rule::SystemCatalog => "system_catalog",
            Rule::OptimizerHint => "optimizer_hint",
            Rule::ExecutableComment => "executable_comment",
            Rule::Variable => "variable",
            Rule::UnsupportedSyntax => "unsupported_syntax",
            Rule::LimitRewrite => "limit_rewrite",
            Rule::WriteCommand => "write_command",
            Rule::ScriptingCommand => "scripting_command",
            Rule::AdminCommand => "admin_command",
            Rule::BlockingCommand => "blocking_command",
            Rule::CommandNotAllowed => "command_not_allowed",
            Rule::WrongArguments => "wrong_arguments",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{0}`")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| UnknownRule(s.to_owned()))
    }
}

/// Why a statement was refused: the rule that fired and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Rejection {
    pub rule: Rule,
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(rule: Rule, message: impl Into<String>) -> Self {
        Rejection { rule, message: message.into() }
    }
}
