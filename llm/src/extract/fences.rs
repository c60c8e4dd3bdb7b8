//! Fenced code blocks (```sql, ```redis, bare ``` fences...) and which of them holds the statement.

use super::*;

pub(super) struct Fence {
    /// Lowercased first word of the info string (`sql`, `json`, `` for a bare fence).
    pub(super) lang: String,
    pub(super) content: String,
    /// Byte range of the whole block, fences included.
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) fn parse_fences(text: &str) -> Vec<Fence> {
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
pub(super) fn fence_marker(line: &str) -> Option<&str> {
    let first = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run = line.chars().take_while(|c| *c == first).count();
    (run >= 3).then(|| &line[..run])
}

pub(super) const SQL_LANGS: &[&str] = &[
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
pub(super) const NEUTRAL_LANGS: &[&str] = &["", "text", "plaintext", "plain", "txt", "code"];
pub(super) const REDIS_LANGS: &[&str] = &["redis", "redis-cli", "rediscli"];
pub(super) const SHELL_LANGS: &[&str] = &["bash", "sh", "shell", "console", "zsh", "cmd"];

pub(super) fn from_fences(text: &str, fences: &[Fence], target: Target) -> Option<Extracted> {
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
pub(super) fn blank_out(text: &str, fences: &[Fence]) -> String {
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
