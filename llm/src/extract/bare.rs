//! Statements written without a fence: where one starts, where it ends, and whether a line is SQL or prose.

use super::*;

/// Finds the first bare statement: at the start of a line or after a label such as `SQL:`. Returns its byte
/// range in `text` and the finished statement.
pub(super) fn find_bare(text: &str, target: Target) -> Option<(usize, usize, String)> {
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
pub(super) fn line_spans(text: &str) -> Vec<(usize, usize)> {
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
pub(super) fn candidate_starts(line: &str) -> Vec<usize> {
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

pub(super) fn bare_sql_at(
    text: &str,
    lines: &[(usize, usize)],
    index: usize,
    start: usize,
) -> Option<(usize, usize, String)> {
    let first_line = &text[start..lines[index].1];
    starts_with_sql_keyword(first_line).then_some(())?;
    let end = sql_extent(text, lines, index, start);
    let candidate = text[start..end].trim_end();
    looks_like_sql(candidate).then(|| (start, start + candidate.len(), finish_sql(candidate)))
}

/// Where a bare statement starting at `start` (on line `index`) ends: at a `;` (unless another statement
/// follows on the next line), at a blank line not followed by a continuation, or at a line of prose.
pub(super) fn sql_extent(text: &str, lines: &[(usize, usize)], index: usize, start: usize) -> usize {
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
pub(super) fn is_continuation(line: &str) -> bool {
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

pub(super) fn is_prose_line(line: &str) -> bool {
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
pub(super) fn looks_like_sql(s: &str) -> bool {
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

pub(super) fn is_identifier(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || "_.`\"$".contains(c))
}

pub(super) const SQL_KEYWORDS: &[&str] = &[
    "SELECT", "WITH", "EXPLAIN", "SHOW", "DESCRIBE", "DESC", "PRAGMA", "VALUES", "INSERT", "UPDATE", "DELETE",
    "REPLACE", "MERGE", "DROP", "CREATE", "ALTER", "TRUNCATE", "GRANT", "REVOKE", "COPY", "CALL", "SET", "BEGIN",
    "START", "COMMIT", "ROLLBACK", "LOCK", "ATTACH", "VACUUM", "ANALYZE", "USE", "EXEC", "EXECUTE", "DO", "LOAD",
    "HANDLER", "TABLE",
];

/// Whether `s` begins with a statement keyword (or an opening parenthesis, as in `(SELECT ...) UNION ...`).
pub(super) fn starts_with_sql_keyword(s: &str) -> bool {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('(') {
        return first_word(rest.trim_start()).eq_ignore_ascii_case("SELECT");
    }
    let word = first_word(s);
    SQL_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

pub(super) fn starts_with_uppercase_sql_keyword(s: &str) -> bool {
    let word = first_word(s);
    SQL_KEYWORDS.contains(&word)
}

/// Skips leading `--` line comments and `/* */` block comments.
pub(super) fn skip_sql_comments(mut s: &str) -> &str {
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
pub(super) fn finish_sql(s: &str) -> String {
    let s = s.trim();
    s.strip_suffix(';').unwrap_or(s).trim_end().to_owned()
}
