//! The body of `POST /sql/generate`, parsed into what a turn needs, with the document's error codes: a problem
//! inside `schema` is `INVALID_SCHEMA`, inside `database` `INVALID_DATABASE`, anything else (a body that is not
//! JSON, a blank query, an unknown database type, a schema over the limits) `INVALID_REQUEST`. The message says
//! what to fix, with the path of the field.

use querygpt_common::config::Text2SqlSettings;
use querygpt_common::{Driver, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

use super::conversation::ConversationId;
use super::error::{Lang, Text2SqlError};

/// Longest question, in characters.
const MAX_QUERY_CHARS: usize = 10_000;
/// Longest `previous_sql`, in bytes (the validator's own input limit is larger than any real statement).
const MAX_PREVIOUS_SQL_BYTES: usize = 100 * 1024;
/// Longest table or column name, and column type, in characters.
const MAX_NAME_CHARS: usize = 256;
/// Longest column comment, in characters.
const MAX_COMMENT_CHARS: usize = 2_000;
/// Longest `database.version`, in characters.
const MAX_VERSION_CHARS: usize = 64;

/// The request as the document describes it.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GenerateSqlRequest {
    /// The question in plain language.
    #[schema(example = "查询所有年龄大于30的用户")]
    query: String,
    /// Required for a new conversation; may be omitted in a follow-up (the conversation's is reused).
    #[serde(default)]
    schema: Option<SchemaBody>,
    /// Required for a new conversation; may be omitted in a follow-up.
    #[serde(default)]
    database: Option<DatabaseBody>,
    /// `conv_` and 24 characters, from an earlier response.
    #[serde(default)]
    conversation_id: Option<String>,
    /// The statement to edit. Wins over the conversation's last statement.
    #[serde(default)]
    previous_sql: Option<String>,
}

/// The tables the statement may use. For Redis, a table is a key pattern (`user:*`) and its columns are hash
/// fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct SchemaBody {
    pub tables: Vec<TableBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct TableBody {
    pub name: String,
    pub columns: Vec<ColumnBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ColumnBody {
    pub name: String,
    /// e.g. `int`, `varchar(100)`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct DatabaseBody {
    /// `mysql`, `postgresql`, `sqlite` or `redis`.
    #[serde(rename = "type")]
    #[schema(example = "mysql")]
    kind: String,
    /// e.g. `8.0`, `14`, `3`.
    #[serde(default)]
    version: Option<String>,
}

/// The target a statement is written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Database {
    pub driver: Driver,
    pub version: Option<String>,
}

/// A request that passed every check of its own (a follow-up is checked against its conversation later).
#[derive(Debug)]
pub(crate) struct Generate {
    pub query: String,
    pub schema: Option<SchemaBody>,
    pub database: Option<Database>,
    pub conversation_id: Option<ConversationId>,
    pub previous_sql: Option<String>,
}

/// Parses and checks a body (already known to be JSON by its Content-Type and within the size limit).
pub(crate) fn parse(body: &[u8], limits: &Text2SqlSettings, lang: Lang) -> Result<Generate, Text2SqlError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let request: GenerateSqlRequest =
        serde_path_to_error::deserialize(deserializer).map_err(|e| shape_error(e, lang))?;
    let query = request.query.trim();
    if query.is_empty() {
        return Err(Text2SqlError::invalid_request(lang.pick("query 不能为空", "query must not be empty")));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(Text2SqlError::invalid_request(format!(
            "{} {MAX_QUERY_CHARS}",
            lang.pick("query 过长：最多字符数为", "query is too long: the most characters allowed is")
        )));
    }
    let schema = request.schema.map(|schema| check_schema(schema, limits, lang)).transpose()?;
    let database = request.database.map(|database| check_database(database, lang)).transpose()?;
    let conversation_id = match request.conversation_id.as_deref().map(str::trim) {
        None | Some("") => None,
        // An id that cannot be one of ours does not exist, as the document's 404 says.
        Some(id) => Some(ConversationId::parse(id).ok_or_else(|| super::conversation::not_found(lang))?),
    };
    let previous_sql = match request.previous_sql.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(sql) if sql.len() > MAX_PREVIOUS_SQL_BYTES => {
            return Err(Text2SqlError::invalid_request(format!(
                "{} {MAX_PREVIOUS_SQL_BYTES}",
                lang.pick("previous_sql 过长：最大字节数为", "previous_sql is too long: the most bytes allowed is")
            )));
        }
        Some(sql) => Some(sql.to_owned()),
    };
    Ok(Generate { query: query.to_owned(), schema, database, conversation_id, previous_sql })
}

/// A body that is not JSON, or JSON of the wrong shape, with the code of the part it is in.
fn shape_error(error: serde_path_to_error::Error<serde_json::Error>, lang: Lang) -> Text2SqlError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return Text2SqlError::invalid_request(format!(
            "{}: {inner}",
            lang.pick("请求体不是合法的 JSON", "the request body is not valid JSON")
        ));
    }
    let code = match path.split(['.', '[']).next() {
        Some("schema") => ErrorCode::InvalidSchema,
        Some("database") => ErrorCode::InvalidDatabase,
        _ => ErrorCode::InvalidRequest,
    };
    let what = match code {
        ErrorCode::InvalidSchema => lang.pick("schema 格式错误", "invalid schema"),
        ErrorCode::InvalidDatabase => lang.pick("database 格式错误", "invalid database"),
        _ => lang.pick("请求参数错误", "invalid request"),
    };
    // serde_path_to_error says `.` for the document itself.
    let at = if path == "." { String::new() } else { format!(" ({path})") };
    Text2SqlError::new(code, format!("{what}{at}: {inner}"))
}

fn check_schema(schema: SchemaBody, limits: &Text2SqlSettings, lang: Lang) -> Result<SchemaBody, Text2SqlError> {
    let invalid = |message: String| Text2SqlError::new(ErrorCode::InvalidSchema, message);
    if schema.tables.is_empty() {
        return Err(invalid(lang.pick("schema.tables 不能为空", "schema.tables must list at least one table").into()));
    }
    let over_limit = |what: String, count: usize, limit: usize| {
        let prefix = lang.pick("schema 超出限制：", "the schema is over the limits: ");
        Text2SqlError::invalid_request(format!("{prefix}{what} {count} > {limit}"))
    };
    if schema.tables.len() > limits.max_tables {
        let what = lang.pick("表的数量", "tables").to_owned();
        return Err(over_limit(what, schema.tables.len(), limits.max_tables));
    }
    let mut names = HashSet::new();
    let mut tables = Vec::with_capacity(schema.tables.len());
    for (t, table) in schema.tables.into_iter().enumerate() {
        let name = checked_name(&table.name, &format!("schema.tables[{t}].name"), lang).map_err(invalid)?;
        if !names.insert(name.to_lowercase()) {
            return Err(invalid(format!("{}: {name}", lang.pick("表名重复", "a table is listed twice"))));
        }
        if table.columns.len() > limits.max_columns_per_table {
            let what = format!("{} {name}:", lang.pick("列的数量", "columns of"));
            return Err(over_limit(what, table.columns.len(), limits.max_columns_per_table));
        }
        let mut column_names = HashSet::new();
        let mut columns = Vec::with_capacity(table.columns.len());
        for (c, column) in table.columns.into_iter().enumerate() {
            let at = format!("schema.tables[{t}].columns[{c}]");
            let column_name = checked_name(&column.name, &format!("{at}.name"), lang).map_err(invalid)?;
            if !column_names.insert(column_name.to_lowercase()) {
                return Err(invalid(format!(
                    "{}: {name}.{column_name}",
                    lang.pick("列名重复", "a column is listed twice")
                )));
            }
            let data_type = optional(column.data_type, MAX_NAME_CHARS, &format!("{at}.type"), lang).map_err(invalid)?;
            let comment =
                optional(column.comment, MAX_COMMENT_CHARS, &format!("{at}.comment"), lang).map_err(invalid)?;
            columns.push(ColumnBody { name: column_name, data_type, comment });
        }
        tables.push(TableBody { name, columns });
    }
    Ok(SchemaBody { tables })
}

fn checked_name(name: &str, at: &str, lang: Lang) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{at} {}", lang.pick("不能为空", "must not be empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!("{at} {}", lang.pick("过长或含控制字符", "is too long or holds control characters")));
    }
    Ok(name.to_owned())
}

/// A blank optional text is none.
fn optional(text: Option<String>, max_chars: usize, at: &str, lang: Lang) -> Result<Option<String>, String> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > max_chars => {
            Err(format!("{at} {} {max_chars}", lang.pick("过长：最多字符数为", "is too long: the most characters is")))
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn check_database(database: DatabaseBody, lang: Lang) -> Result<Database, Text2SqlError> {
    let kind = database.kind.trim();
    if kind.is_empty() {
        return Err(Text2SqlError::new(
            ErrorCode::InvalidDatabase,
            lang.pick("database.type 不能为空", "database.type must not be empty"),
        ));
    }
    let driver = kind.parse::<Driver>().map_err(|_| {
        Text2SqlError::invalid_request(format!(
            "{}: `{kind}`",
            lang.pick(
                "不支持的 database.type，可选 mysql / postgresql / sqlite / redis",
                "unsupported database.type (use mysql, postgresql, sqlite or redis)"
            )
        ))
    })?;
    let version = optional(database.version, MAX_VERSION_CHARS, "database.version", lang)
        .map_err(|message| Text2SqlError::new(ErrorCode::InvalidDatabase, message))?;
    Ok(Database { driver, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(body: &str) -> Result<Generate, Text2SqlError> {
        parse(body.as_bytes(), &Text2SqlSettings::default(), Lang::En)
    }

    fn code_of(body: &str) -> ErrorCode {
        parse_json(body).unwrap_err().code
    }

    const TABLES: &str = r#"{"tables": [{"name": "users", "columns": [{"name": "id", "type": "int"}]}]}"#;

    #[test]
    fn the_documents_request_parses() {
        let body = format!(
            r#"{{"query": " 查询所有年龄大于30的用户 ", "schema": {TABLES}, "database": {{"type": "MySQL", "version": "8.0"}},
               "previous_sql": "SELECT * FROM users WHERE age > 30"}}"#
        );
        let parsed = parse_json(&body).unwrap();
        assert_eq!(parsed.query, "查询所有年龄大于30的用户");
        assert_eq!(parsed.database, Some(Database { driver: Driver::Mysql, version: Some("8.0".into()) }));
        assert_eq!(parsed.schema.unwrap().tables[0].columns[0].data_type.as_deref(), Some("int"));
        assert_eq!(parsed.previous_sql.as_deref(), Some("SELECT * FROM users WHERE age > 30"));
        assert!(parsed.conversation_id.is_none());
    }

    #[test]
    fn each_fault_has_the_code_of_its_part() {
        let cases = [
            ("not json", ErrorCode::InvalidRequest),
            ("[1]", ErrorCode::InvalidRequest),
            ("{}", ErrorCode::InvalidRequest),
            (r#"{"query": "   "}"#, ErrorCode::InvalidRequest),
            (r#"{"query": 5}"#, ErrorCode::InvalidRequest),
            (r#"{"query": "q", "schema": {}}"#, ErrorCode::InvalidSchema),
            (r#"{"query": "q", "schema": {"tables": []}}"#, ErrorCode::InvalidSchema),
            (r#"{"query": "q", "schema": {"tables": [{"columns": []}]}}"#, ErrorCode::InvalidSchema),
            (r#"{"query": "q", "schema": {"tables": [{"name": "t"}]}}"#, ErrorCode::InvalidSchema),
            (r#"{"query": "q", "schema": {"tables": [{"name": " ", "columns": []}]}}"#, ErrorCode::InvalidSchema),
            (
                r#"{"query": "q", "schema": {"tables": [{"name": "t", "columns": [{"name": "a"}, {"name": "A"}]}]}}"#,
                ErrorCode::InvalidSchema,
            ),
            (
                r#"{"query": "q", "schema": {"tables": [{"name": "t", "columns": []}, {"name": "T", "columns": []}]}}"#,
                ErrorCode::InvalidSchema,
            ),
            (r#"{"query": "q", "schema": "users"}"#, ErrorCode::InvalidSchema),
            (r#"{"query": "q", "database": {}}"#, ErrorCode::InvalidDatabase),
            (r#"{"query": "q", "database": {"type": ""}}"#, ErrorCode::InvalidDatabase),
            (r#"{"query": "q", "database": {"type": "mysql", "version": 8}}"#, ErrorCode::InvalidDatabase),
            (r#"{"query": "q", "database": {"type": "oracle"}}"#, ErrorCode::InvalidRequest),
            (r#"{"query": "q", "conversation_id": "conv_short"}"#, ErrorCode::ConversationNotFound),
        ];
        for (body, code) in cases {
            assert_eq!(code_of(body), code, "{body}");
        }
        let message = parse_json(r#"{"query": "q", "schema": {"tables": [{"name": "t"}]}}"#).unwrap_err().message;
        assert!(message.contains("schema.tables[0]") && message.contains("columns"), "{message}");
    }

    #[test]
    fn limits_are_invalid_requests_that_name_the_limit() {
        let limits = Text2SqlSettings { max_tables: 1, max_columns_per_table: 1, ..Text2SqlSettings::default() };
        let two_tables =
            r#"{"query": "q", "schema": {"tables": [{"name": "a", "columns": []}, {"name": "b", "columns": []}]}}"#;
        let error = parse(two_tables.as_bytes(), &limits, Lang::En).unwrap_err();
        assert_eq!(
            (error.code, error.message.contains("2 > 1")),
            (ErrorCode::InvalidRequest, true),
            "{}",
            error.message
        );
        let two_columns =
            r#"{"query": "q", "schema": {"tables": [{"name": "a", "columns": [{"name": "x"}, {"name": "y"}]}]}}"#;
        assert_eq!(parse(two_columns.as_bytes(), &limits, Lang::En).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn messages_follow_the_language() {
        let zh = parse(br#"{"query": ""}"#, &Text2SqlSettings::default(), Lang::Zh).unwrap_err();
        assert_eq!(zh.message, "query 不能为空");
        assert_eq!(parse_json(r#"{"query": ""}"#).unwrap_err().message, "query must not be empty");
    }
}
