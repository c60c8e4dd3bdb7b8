//! Finding the statement in what a model wrote.
//!
//! Real replies come as a fenced block (```sql, ```postgresql, a bare ``` fence...), bare SQL with prose around
//! it, a JSON object `{"sql": ..., "explanation": ...}` (alone, in a ```json fence or inside prose), with
//! Windows newlines, and sometimes after a `<think>...</think>` reasoning block. The rules here only ever return
//! text the model wrote as a statement: prose such as "Select the table you need." or "I cannot answer that" gives
//! `sql: None` (the prose then becomes the explanation).
//!
//! The extracted text is returned as written (comments and all) except for surrounding whitespace and one
//! trailing `;`. Deciding whether it is safe to run is the validator's job, so write statements are extracted too.

use serde_json::Value;

/// A statement and the model's explanation of it, as found in a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The statement (SQL, or Redis command lines for [`extract_command`]); `None` when the reply has none.
    pub sql: Option<String>,
    /// The model's explanation: the JSON `explanation` field, or the prose around the statement.
    pub explanation: Option<String>,
}

/// Extracts an SQL statement from a model reply.
pub fn extract_sql(reply: &str) -> Extracted {
    extract(reply, Target::Sql)
}

/// Extracts Redis command lines (one command per line) from a model reply.
pub fn extract_command(reply: &str) -> Extracted {
    extract(reply, Target::Redis)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Sql,
    Redis,
}

/// How many `{` positions are tried as the start of a JSON object (bounds the work on long replies).
const MAX_JSON_STARTS: usize = 32;

fn extract(reply: &str, target: Target) -> Extracted {
    let normalized = reply.replace("\r\n", "\n").replace('\r', "\n");
    let text = strip_reasoning(&normalized);
    let text = text.trim();
    if text.is_empty() {
        return Extracted::default();
    }
    let fences = parse_fences(text);
    if let Some(found) = from_json(text, &fences, target) {
        return found;
    }
    if let Some(found) = from_fences(text, &fences, target) {
        return found;
    }
    // Bare statements are only looked for outside code blocks (an unrelated ```python block is not SQL).
    let outside = blank_out(text, &fences);
    if let Some((start, end, statement)) = find_bare(&outside, target) {
        return Extracted { sql: Some(statement), explanation: explanation_around(&outside[..start], &outside[end..]) };
    }
    if let Some(statement) = find_inline_code(&outside, target) {
        return Extracted { sql: Some(statement), explanation: non_empty(text) };
    }
    Extracted { sql: None, explanation: non_empty(text) }
}

// ---------------------------------------------------------------------------------------------------------
// Reasoning blocks

/// Removes `<think>...</think>` (and `<thinking>`) blocks. An unclosed block runs to the end of the reply; a
/// closing tag without an opening one (servers that put the opening tag in the prompt template) ends a block
/// that started at the beginning.
fn strip_reasoning(text: &str) -> String {
    const TAGS: [(&str, &str); 2] = [("<think>", "</think>"), ("<thinking>", "</thinking>")];
    let mut out = text.to_owned();
    for (open, close) in TAGS {
        let lower = out.to_ascii_lowercase();
        if let Some(close_at) = lower.find(close)
            && lower.find(open).is_none_or(|open_at| open_at > close_at)
        {
            out.replace_range(..close_at + close.len(), "");
        }
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(start) = lower.find(open) else { break };
            let end = lower[start..].find(close).map_or(out.len(), |i| start + i + close.len());
            out.replace_range(start..end, "");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// JSON replies

/// Looks for a reply object in the text, in a ```json (or bare) fence or in prose, but not inside an SQL block
/// (where `'{"query": 1}'::jsonb` is data, not a reply).
fn from_json(text: &str, fences: &[Fence], target: Target) -> Option<Extracted> {
    let in_code = |at: usize| {
        fences
            .iter()
            .any(|f| (f.start..f.end).contains(&at) && !matches!(f.lang.as_str(), "json" | "jsonc" | "json5" | ""))
    };
    let starts = text.match_indices('{').map(|(i, _)| i).filter(|i| !in_code(*i));
    for start in starts.take(MAX_JSON_STARTS) {
        let Some(object) = parse_object_at(&text[start..]) else { continue };
        let Some(statement) = statement_field(&object, target) else { continue };
        let explanation =
            field(&object, &["explanation", "reason", "description"]).and_then(Value::as_str).and_then(non_empty);
        let sql = statement.and_then(|s| match target {
            Target::Sql => sql_from_fragment(&s),
            Target::Redis => redis_from_fragment(&s),
        });
        return Some(Extracted { sql, explanation });
    }
    None
}

/// Parses the JSON object at the start of `text`, ignoring whatever follows it. Models often put raw newlines
/// inside JSON strings; those are escaped and the parse retried.
fn parse_object_at(text: &str) -> Option<serde_json::Map<String, Value>> {
    let first = |s: &str| match serde_json::Deserializer::from_str(s).into_iter::<Value>().next() {
        Some(Ok(Value::Object(map))) => Some(map),
        _ => None,
    };
    first(text).or_else(|| first(&escape_raw_controls_in_strings(text)))
}

fn escape_raw_controls_in_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\n' => {
                    out.push_str("\\n");
                    continue;
                }
                '\t' => {
                    out.push_str("\\t");
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// The statement field of a reply object: `Some(None)` when the field is there but empty or null (the model
/// declined), `None` when the object has no such field.
fn statement_field(object: &serde_json::Map<String, Value>, target: Target) -> Option<Option<String>> {
    let keys: &[&str] = match target {
        Target::Sql => &["sql", "query", "sql_query"],
        Target::Redis => &["command", "commands", "redis", "sql"],
    };
    let value = field(object, keys)?;
    Some(match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if target == Target::Redis => {
            let lines: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        }
        _ => None,
    })
}

fn field<'a>(object: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|key| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A statement given in a JSON field may itself be fenced; it must still start like a statement.
fn sql_from_fragment(fragment: &str) -> Option<String> {
    let fences = parse_fences(fragment);
    let body = fences.first().map_or(fragment, |f| f.content.as_str());
    let body = body.trim();
    starts_with_sql_keyword(skip_sql_comments(body)).then(|| finish_sql(body))
}

fn redis_from_fragment(fragment: &str) -> Option<String> {
    let fences = parse_fences(fragment);
    let body = fences.first().map_or(fragment, |f| f.content.as_str());
    redis_lines(body, true)
}

// ---------------------------------------------------------------------------------------------------------
// Fenced blocks

struct Fence {
    /// Lowercased first word of the info string (`sql`, `json`, `` for a bare fence).
    lang: String,
    content: String,
    /// Byte range of the whole block, fences included.
    start: usize,
    end: usize,
}

fn parse_fences(text: &str) -> Vec<Fence> {
    let mut fences = Vec::new();
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        let Some(marker) = fence_marker(trimmed) else { continue };
        let info = trimmed[marker.len()..].trim();
        // A one-line block: ```SELECT 1```
        if marker.starts_with('`')
            && let Some(inner) = info.strip_suffix(marker)
        {
            fences.push(Fence {
                lang: String::new(),
                content: inner.trim().to_owned(),
                start: line_start,
                end: offset,
            });
            continue;
        }
        let lang = info.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        // An unclosed block (a reply cut off by max_tokens) runs to the end.
        let mut content = String::new();
        for inner in lines.by_ref() {
            offset += inner.len();
            let t = inner.trim();
            if t.len() >= marker.len() && t.chars().all(|c| marker.starts_with(c)) {
                break;
            }
            content.push_str(inner);
        }
        fences.push(Fence { lang, content: content.trim_end().to_owned(), start: line_start, end: offset });
    }
    fences
}

/// The opening run of three or more backticks or tildes of a fence line.
fn fence_marker(line: &str) -> Option<&str> {
    let first = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run = line.chars().take_while(|c| *c == first).count();
    (run >= 3).then(|| &line[..run])
}

const SQL_LANGS: &[&str] = &[
    "sql",
    "mysql",
    "mariadb",
    "postgresql",
    "postgres",
    "pgsql",
    "psql",
    "plpgsql",
    "sqlite",
    "sqlite3",
    "tsql",
    "t-sql",
    "plsql",
    "sql92",
];
const NEUTRAL_LANGS: &[&str] = &["", "text", "plaintext", "plain", "txt", "code"];
const REDIS_LANGS: &[&str] = &["redis", "redis-cli", "rediscli"];
const SHELL_LANGS: &[&str] = &["bash", "sh", "shell", "console", "zsh", "cmd"];

fn from_fences(text: &str, fences: &[Fence], target: Target) -> Option<Extracted> {
    let found = match target {
        Target::Sql => {
            let tagged = fences.iter().find_map(|f| {
                let body = f.content.trim();
                (SQL_LANGS.contains(&f.lang.as_str()) && starts_with_sql_keyword(skip_sql_comments(body)))
                    .then(|| (f, finish_sql(body)))
            });
            tagged.or_else(|| {
                fences.iter().find_map(|f| {
                    (NEUTRAL_LANGS.contains(&f.lang.as_str()) && looks_like_sql(f.content.trim()))
                        .then(|| (f, finish_sql(f.content.trim())))
                })
            })
        }
        Target::Redis => {
            let tagged = fences.iter().find_map(|f| {
                REDIS_LANGS.contains(&f.lang.as_str()).then(|| redis_lines(&f.content, true)).flatten().map(|s| (f, s))
            });
            tagged.or_else(|| {
                fences.iter().find_map(|f| {
                    let lang = f.lang.as_str();
                    (NEUTRAL_LANGS.contains(&lang) || SHELL_LANGS.contains(&lang))
                        .then(|| redis_lines(&f.content, false))
                        .flatten()
                        .map(|s| (f, s))
                })
            })
        }
    };
    let (fence, statement) = found?;
    Some(Extracted { sql: Some(statement), explanation: explanation_around(&text[..fence.start], &text[fence.end..]) })
}

/// `text` with the fenced blocks replaced by blank lines of the same byte length, so offsets stay valid.
fn blank_out(text: &str, fences: &[Fence]) -> String {
    let mut out = text.to_owned();
    for fence in fences {
        let blank: String = text[fence.start..fence.end]
            .chars()
            .flat_map(|c| {
                let (fill, n) = if c == '\n' { ('\n', 1) } else { (' ', c.len_utf8()) };
                std::iter::repeat_n(fill, n)
            })
            .collect();
        out.replace_range(fence.start..fence.end, &blank);
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Bare statements

/// Finds the first bare statement: at the start of a line or after a label such as `SQL:`. Returns its byte
/// range in `text` and the finished statement.
fn find_bare(text: &str, target: Target) -> Option<(usize, usize, String)> {
    let lines = line_spans(text);
    for (index, &(line_start, line_end)) in lines.iter().enumerate() {
        let line = &text[line_start..line_end];
        for start in candidate_starts(line) {
            let abs = line_start + start;
            let found = match target {
                Target::Sql => bare_sql_at(text, &lines, index, abs),
                Target::Redis => bare_redis_at(text, &lines, index, abs),
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// `(start, end)` byte offsets of each line, without the newline.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.trim_end_matches('\n').len();
        spans.push((start, end));
        start += line.len();
    }
    spans
}

/// Offsets in a line where a statement may begin: the first non-blank character (after a `>` quote or a list
/// bullet), and just after a `label:`.
fn candidate_starts(line: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let content = line.trim_start();
    let mut at = line.len() - content.len();
    for prefix in ["> ", "- ", "* "] {
        if let Some(rest) = line[at..].strip_prefix(prefix) {
            at = line.len() - rest.trim_start().len();
        }
    }
    starts.push(at);
    for (i, c) in line.char_indices() {
        if c == ':' || c == '：' {
            let after = i + c.len_utf8();
            let rest = &line[after..];
            let skipped = rest.len() - rest.trim_start().len();
            if skipped > 0 || c == '：' {
                starts.push(after + skipped);
            }
        }
    }
    starts
}

fn bare_sql_at(text: &str, lines: &[(usize, usize)], index: usize, start: usize) -> Option<(usize, usize, String)> {
    let first_line = &text[start..lines[index].1];
    starts_with_sql_keyword(first_line).then_some(())?;
    let end = sql_extent(text, lines, index, start);
    let candidate = text[start..end].trim_end();
    looks_like_sql(candidate).then(|| (start, start + candidate.len(), finish_sql(candidate)))
}

/// Where a bare statement starting at `start` (on line `index`) ends: at a `;` (unless another statement
/// follows on the next line), at a blank line not followed by a continuation, or at a line of prose.
fn sql_extent(text: &str, lines: &[(usize, usize)], index: usize, start: usize) -> usize {
    let first = &text[start..lines[index].1];
    if let Some(semi) = unquoted_semicolon(first) {
        let rest = first[semi + 1..].trim();
        if !rest.is_empty() && !starts_with_uppercase_sql_keyword(rest) {
            // `SELECT ...; This returns ...`: the rest of the line is prose.
            return start + semi + 1;
        }
    }
    let mut end = lines[index].1;
    let mut i = index + 1;
    while i < lines.len() {
        let ends_statement = text[start..end].trim_end().ends_with(';');
        let (line_start, line_end) = lines[i];
        let line = &text[line_start..line_end];
        if line.trim().is_empty() {
            let next = lines[i..].iter().map(|&(s, e)| &text[s..e]).find(|l| !l.trim().is_empty());
            match next {
                Some(next) if !ends_statement && is_continuation(next) => {
                    i += 1;
                    continue;
                }
                _ => break,
            }
        }
        if ends_statement && !starts_with_uppercase_sql_keyword(line.trim_start()) {
            break;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented && is_prose_line(line) {
            break;
        }
        end = line_end;
        i += 1;
    }
    end
}

/// A line that carries on a statement after a blank line.
fn is_continuation(line: &str) -> bool {
    const CLAUSES: &[&str] = &[
        "FROM",
        "WHERE",
        "JOIN",
        "INNER",
        "LEFT",
        "RIGHT",
        "FULL",
        "CROSS",
        "ON",
        "AND",
        "OR",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "SELECT",
        "WINDOW",
        "FETCH",
    ];
    let t = line.trim_start();
    t.starts_with(')') || t.starts_with(',') || CLAUSES.contains(&first_word(t).to_ascii_uppercase().as_str())
}

fn is_prose_line(line: &str) -> bool {
    let t = line.trim();
    if starts_with_sql_keyword(t) || is_continuation(t) {
        return false;
    }
    let unquoted = unquoted(t);
    has_prose_words(&unquoted)
        || has_cjk_punctuation(&unquoted)
        || t.ends_with(['.', ':', '?', '!'])
        || t.starts_with("**")
        || t.starts_with('#')
}

/// Whether `s` reads as an SQL statement rather than an English or Chinese sentence.
fn looks_like_sql(s: &str) -> bool {
    let s = skip_sql_comments(s.trim());
    if !starts_with_sql_keyword(s) {
        return false;
    }
    let code = sql_code_only(s);
    let body = code.trim_start_matches('(').trim().trim_end_matches(';').trim_end();
    if has_prose_words(body) || has_cjk_punctuation(body) || body.ends_with(['.', '?', '!', ':']) {
        return false;
    }
    let keyword = first_word(body);
    let upper_keyword = keyword.to_ascii_uppercase();
    let rest = body[keyword.len()..].trim();
    let words: Vec<String> = rest.split_whitespace().map(|w| w.to_ascii_uppercase()).collect();
    let next = words.first().map(String::as_str).unwrap_or("");
    let has_word = |w: &str| words.iter().any(|x| x.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == w);
    let symbolic = rest.chars().any(|c| "*(),=<>'\"`".contains(c) || c.is_ascii_digit());
    let shouted = keyword == upper_keyword;
    match upper_keyword.as_str() {
        "SELECT" => !rest.is_empty() && (shouted || has_word("FROM") || symbolic),
        "WITH" => has_word("AS") && rest.contains('(') && has_word("SELECT"),
        "EXPLAIN" => words.iter().any(|w| ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE"].contains(&w.as_str())),
        "SHOW" => {
            const SHOWABLE: &[&str] = &[
                "TABLES",
                "DATABASES",
                "COLUMNS",
                "FIELDS",
                "INDEX",
                "INDEXES",
                "KEYS",
                "CREATE",
                "FULL",
                "VARIABLES",
                "STATUS",
                "SCHEMAS",
                "SEARCH_PATH",
                "SERVER_VERSION",
                "TIMEZONE",
                "TRANSACTION",
                "ALL",
                "GRANTS",
                "PROCESSLIST",
                "TABLE",
                "ENGINES",
                "WARNINGS",
                "ERRORS",
                "TRIGGERS",
                "GLOBAL",
                "SESSION",
            ];
            SHOWABLE.contains(&next)
        }
        "DESCRIBE" | "DESC" => words.len() == 1 && is_identifier(next),
        "PRAGMA" => !next.is_empty() && next.chars().all(|c| c.is_ascii_alphanumeric() || "_.()='\"".contains(c)),
        "VALUES" => rest.starts_with('('),
        "INSERT" => next == "INTO" || (next == "OR" && has_word("INTO")) || next == "IGNORE",
        "REPLACE" | "MERGE" => next == "INTO",
        "UPDATE" => has_word("SET"),
        "DELETE" => next == "FROM" || has_word("FROM"),
        "DROP" | "CREATE" | "ALTER" => {
            const OBJECTS: &[&str] = &[
                "TABLE",
                "VIEW",
                "INDEX",
                "DATABASE",
                "SCHEMA",
                "FUNCTION",
                "PROCEDURE",
                "TRIGGER",
                "SEQUENCE",
                "USER",
                "ROLE",
                "MATERIALIZED",
                "OR",
                "TEMPORARY",
                "TEMP",
                "UNIQUE",
                "EXTENSION",
                "TYPE",
                "IF",
                "UNLOGGED",
                "EVENT",
                "SERVER",
                "POLICY",
                "RULE",
                "DOMAIN",
                "COLUMN",
                "SYSTEM",
            ];
            OBJECTS.contains(&next)
        }
        "TRUNCATE" => next == "TABLE" || (words.len() == 1 && is_identifier(next)),
        "GRANT" | "REVOKE" => has_word("ON") && (has_word("TO") || has_word("FROM")),
        "COPY" => has_word("TO") || has_word("FROM"),
        "SET" => shouted && (rest.contains('=') || next == "TRANSACTION" || next == "SESSION" || next == "ROLE"),
        // Rare statements count only when written in capitals, as models write SQL keywords.
        _ => shouted,
    }
}

fn is_identifier(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || "_.`\"$".contains(c))
}

const SQL_KEYWORDS: &[&str] = &[
    "SELECT", "WITH", "EXPLAIN", "SHOW", "DESCRIBE", "DESC", "PRAGMA", "VALUES", "INSERT", "UPDATE", "DELETE",
    "REPLACE", "MERGE", "DROP", "CREATE", "ALTER", "TRUNCATE", "GRANT", "REVOKE", "COPY", "CALL", "SET", "BEGIN",
    "START", "COMMIT", "ROLLBACK", "LOCK", "ATTACH", "VACUUM", "ANALYZE", "USE", "EXEC", "EXECUTE", "DO", "LOAD",
    "HANDLER", "TABLE",
];

/// Whether `s` begins with a statement keyword (or an opening parenthesis, as in `(SELECT ...) UNION ...`).
fn starts_with_sql_keyword(s: &str) -> bool {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('(') {
        return first_word(rest.trim_start()).eq_ignore_ascii_case("SELECT");
    }
    let word = first_word(s);
    SQL_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn starts_with_uppercase_sql_keyword(s: &str) -> bool {
    let word = first_word(s);
    SQL_KEYWORDS.contains(&word)
}

/// Skips leading `--` line comments and `/* */` block comments.
fn skip_sql_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if s.starts_with("--") || s.starts_with('#') {
            s = s.find('\n').map_or("", |i| &s[i + 1..]);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else {
            return s;
        }
    }
}

/// The statement as returned: trimmed, without one trailing `;`.
fn finish_sql(s: &str) -> String {
    let s = s.trim();
    s.strip_suffix(';').unwrap_or(s).trim_end().to_owned()
}

// ---------------------------------------------------------------------------------------------------------
// Redis commands

/// Redis command words: reads first, then writes and administration (extracted so the validator can refuse them).
const REDIS_COMMANDS: &[&str] = &[
    "GET",
    "MGET",
    "GETRANGE",
    "STRLEN",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "EXPIRETIME",
    "KEYS",
    "SCAN",
    "DBSIZE",
    "RANDOMKEY",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HSTRLEN",
    "HSCAN",
    "HRANDFIELD",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "LPOS",
    "SMEMBERS",
    "SISMEMBER",
    "SMISMEMBER",
    "SCARD",
    "SSCAN",
    "SRANDMEMBER",
    "SINTER",
    "SUNION",
    "SDIFF",
    "SINTERCARD",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZREVRANGEBYLEX",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "ZRANDMEMBER",
    "ZUNION",
    "ZINTER",
    "ZDIFF",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XINFO",
    "XREAD",
    "BITCOUNT",
    "BITPOS",
    "GETBIT",
    "PFCOUNT",
    "GEOPOS",
    "GEODIST",
    "GEOHASH",
    "GEOSEARCH",
    "GEORADIUS_RO",
    "GEORADIUSBYMEMBER_RO",
    "OBJECT",
    "MEMORY",
    "INFO",
    "TIME",
    "PING",
    "ECHO",
    "LCS",
    "SUBSTR",
    "SORT_RO",
    "JSON.GET",
    "JSON.MGET",
    "JSON.TYPE",
    "JSON.STRLEN",
    "JSON.ARRLEN",
    "JSON.OBJKEYS",
    "FT.SEARCH",
    "FT.AGGREGATE",
    "FT.INFO",
    "TS.GET",
    "TS.RANGE",
    "TS.MRANGE",
    "TS.INFO",
    "SET",
    "SETEX",
    "SETNX",
    "MSET",
    "GETSET",
    "GETDEL",
    "GETEX",
    "APPEND",
    "INCR",
    "INCRBY",
    "DECR",
    "DECRBY",
    "DEL",
    "UNLINK",
    "EXPIRE",
    "PEXPIRE",
    "PERSIST",
    "RENAME",
    "HSET",
    "HSETNX",
    "HMSET",
    "HDEL",
    "HINCRBY",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LSET",
    "LREM",
    "LTRIM",
    "SADD",
    "SREM",
    "SPOP",
    "ZADD",
    "ZREM",
    "ZINCRBY",
    "XADD",
    "XDEL",
    "SORT",
    "FLUSHDB",
    "FLUSHALL",
    "CONFIG",
    "EVAL",
    "EVALSHA",
    "FCALL",
    "SCRIPT",
    "FUNCTION",
    "MODULE",
    "SHUTDOWN",
    "DEBUG",
    "MIGRATE",
    "RESTORE",
    "DUMP",
    "MOVE",
    "COPY",
    "SELECT",
    "SWAPDB",
    "CLIENT",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "REPLICAOF",
    "SLAVEOF",
    "ACL",
    "PUBLISH",
    "SUBSCRIBE",
    "MULTI",
    "EXEC",
    "WATCH",
];

/// Commands that take no argument (so a one-word line is a command).
const REDIS_NO_ARGS: &[&str] =
    &["DBSIZE", "RANDOMKEY", "INFO", "TIME", "PING", "FLUSHDB", "FLUSHALL", "SAVE", "BGSAVE", "MULTI", "EXEC"];

fn is_redis_command(word: &str) -> bool {
    REDIS_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// Strips a `redis-cli [options]` invocation or an interactive prompt (`127.0.0.1:6379>`, `redis>`, `$`).
fn strip_redis_prompt(line: &str) -> &str {
    let mut s = line.trim();
    s = s.strip_prefix("$ ").unwrap_or(s).trim_start();
    if let Some(gt) = s.find("> ")
        && s[..gt].chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
    {
        s = s[gt + 2..].trim_start();
    }
    if let Some(rest) = s.strip_prefix("redis-cli") {
        let mut tokens = rest.split_whitespace();
        while let Some(token) = tokens.next() {
            if !token.starts_with('-') {
                // `token` borrows from `rest`: its offset is the distance between the two pointers.
                let at = token.as_ptr() as usize - rest.as_ptr() as usize;
                return &rest[at..];
            }
            if ["-h", "-p", "-n", "-a", "-u", "--user", "--pass", "-s"].contains(&token) {
                tokens.next();
            }
        }
        return "";
    }
    s
}

/// Redis command lines of a block. In a block tagged `redis`, any line starting with an upper-case word counts
/// (module commands); elsewhere only known command words do. Comments and redis-cli output lines are skipped.
fn redis_lines(block: &str, tagged: bool) -> Option<String> {
    let mut commands = Vec::new();
    for line in block.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") || trimmed.starts_with("--") {
            continue;
        }
        let command = strip_redis_prompt(trimmed);
        if command.is_empty() || is_redis_output(command) {
            continue;
        }
        let word = first_word(command);
        let upper_word = !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase() || c == '.' || c == '_');
        let accepted = if tagged { is_redis_command(word) || upper_word } else { is_bare_redis_command(command) };
        if accepted {
            commands.push(command.trim_end_matches(';').trim_end().to_owned());
        } else if !tagged {
            // A shell or plain block with other content is not a Redis block.
            return None;
        }
    }
    (!commands.is_empty()).then(|| commands.join("\n"))
}

/// redis-cli reply lines: `(integer) 1`, `"value"`, `1) "a"`, `OK`, `(nil)`.
fn is_redis_output(line: &str) -> bool {
    line.starts_with('(')
        || line.starts_with('"')
        || line == "OK"
        || line.split_once(')').is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn is_bare_redis_command(line: &str) -> bool {
    let line = line.trim().trim_end_matches(';').trim_end();
    let word = first_word(line);
    if !is_redis_command(word) {
        return false;
    }
    let unquoted = unquoted(line);
    if has_prose_words(&unquoted) || has_cjk_punctuation(&unquoted) || line.ends_with(['.', '?', '!', ':']) {
        return false;
    }
    let upper = word.to_ascii_uppercase();
    let args = line.split_whitespace().count() - 1;
    let shouted = word == upper;
    if args == 0 {
        return shouted && REDIS_NO_ARGS.contains(&upper.as_str());
    }
    // Lower-case lines must look like command syntax: a key with a separator, a number or a pattern.
    shouted || line[word.len()..].chars().any(|c| ":*_{}0123456789\"'".contains(c))
}

fn bare_redis_at(text: &str, lines: &[(usize, usize)], index: usize, start: usize) -> Option<(usize, usize, String)> {
    let first = strip_redis_prompt(&text[start..lines[index].1]);
    if !is_bare_redis_command(first) {
        return None;
    }
    let mut commands = vec![first.trim().trim_end_matches(';').trim_end().to_owned()];
    let mut end = lines[index].1;
    for &(line_start, line_end) in &lines[index + 1..] {
        let command = strip_redis_prompt(&text[line_start..line_end]);
        if !is_bare_redis_command(command) {
            break;
        }
        commands.push(command.trim().trim_end_matches(';').trim_end().to_owned());
        end = line_end;
    }
    Some((start, end, commands.join("\n")))
}

// ---------------------------------------------------------------------------------------------------------
// Inline code and explanations

/// The first `` `inline code` `` span holding a statement.
fn find_inline_code(text: &str, target: Target) -> Option<String> {
    let mut parts = text.split('`');
    parts.next();
    // Odd-indexed pieces are inside backticks.
    let spans: Vec<&str> = parts.step_by(2).collect();
    spans.into_iter().find_map(|span| match target {
        Target::Sql => looks_like_sql(span).then(|| finish_sql(span)),
        Target::Redis => is_bare_redis_command(span).then(|| span.trim().trim_end_matches(';').to_owned()),
    })
}

/// The prose before and after a statement, minus the lead-in line ("Here is the query:") and labels.
fn explanation_around(before: &str, after: &str) -> Option<String> {
    let before = before.trim();
    let before = match before.rsplit_once('\n') {
        Some((head, last)) if is_lead_in(last) => head.trim_end(),
        None if is_lead_in(before) => "",
        _ => before,
    };
    let after = strip_label(after.trim());
    let joined = [before, after].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n\n");
    non_empty(&joined)
}

fn is_lead_in(line: &str) -> bool {
    line.trim().trim_end_matches('*').trim_end().ends_with([':', '：'])
}

/// Removes a leading "Explanation:" label (with Markdown emphasis or heading marks).
fn strip_label(s: &str) -> &str {
    const LABELS: &[&str] = &["explanation", "解释", "说明", "解析"];
    let t = s.trim_start_matches(['#', '*', ' ']);
    for label in LABELS {
        if t.len() >= label.len() && t.is_char_boundary(label.len()) && t[..label.len()].eq_ignore_ascii_case(label) {
            let rest = t[label.len()..].trim_start_matches(['*', ' ']);
            if let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：')) {
                return rest.trim_start_matches(['*', ' ']).trim();
            }
        }
    }
    s
}

/// Trims `s`, drops trailing spaces of lines and collapses runs of blank lines (left by removed blocks).
fn non_empty(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_owned())
}

// ---------------------------------------------------------------------------------------------------------
// Small text helpers

fn first_word(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')).unwrap_or(s.len());
    &s[..end]
}

/// `s` with the contents of quoted strings and identifiers ('...', "...", `...`) replaced by spaces. An
/// apostrophe between two letters (`you'd`, `can't`) is prose, not a quote.
fn unquoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            // Same byte length, so offsets found in the result are valid in `s`.
            Some(_) => out.extend(std::iter::repeat_n(' ', c.len_utf8())),
            None => {
                let apostrophe = c == '\''
                    && prev.is_some_and(char::is_alphabetic)
                    && chars.peek().is_some_and(|n| n.is_alphabetic());
                if (c == '\'' && !apostrophe) || c == '"' || c == '`' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
        prev = Some(c);
    }
    out
}

/// [`unquoted`] with SQL comments (`-- ...`, `/* ... */`) blanked too: what is left is code.
fn sql_code_only(s: &str) -> String {
    let mut code = unquoted(s);
    while let Some(start) = code.find("/*") {
        let end = code[start..].find("*/").map_or(code.len(), |i| start + i + 2);
        code.replace_range(start..end, &" ".repeat(end - start));
    }
    while let Some(start) = code.find("--") {
        let end = code[start..].find('\n').map_or(code.len(), |i| start + i);
        code.replace_range(start..end, &" ".repeat(end - start));
    }
    code
}

fn unquoted_semicolon(s: &str) -> Option<usize> {
    unquoted(s).find(';')
}

/// English words that do not occur in SQL or Redis syntax but fill every sentence.
fn has_prose_words(unquoted: &str) -> bool {
    const PROSE: &[&str] = &[
        "the",
        "this",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "will",
        "would",
        "should",
        "could",
        "here",
        "here's",
        "following",
        "please",
        "sorry",
        "cannot",
        "can't",
        "i'm",
        "which",
        "there",
        "an",
        "it's",
        "don't",
        "doesn't",
        "isn't",
        "unfortunately",
        "however",
        "because",
    ];
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .any(|w| PROSE.iter().any(|p| p.eq_ignore_ascii_case(w)))
}

/// Chinese sentence punctuation: no statement contains it outside quotes.
fn has_cjk_punctuation(unquoted: &str) -> bool {
    unquoted.contains(['，', '。', '：', '？', '！', '；', '、'])
}

#[cfg(test)]
mod tests;
