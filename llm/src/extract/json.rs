//! Replies that are a JSON object `{"sql": ..., "explanation": ...}`: alone, in a fence, or inside prose.

use super::*;
use serde_json::Value;

/// Looks for a reply object in the text, in a ```json (or bare) fence or in prose, but not inside an SQL block
/// (where `'{"query": 1}'::jsonb` is data, not a reply).
pub(super) fn from_json(text: &str, fences: &[Fence], target: Target) -> Option<Extracted> {
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
pub(super) fn parse_object_at(text: &str) -> Option<serde_json::Map<String, Value>> {
    let first = |s: &str| match serde_json::Deserializer::from_str(s).into_iter::<Value>().next() {
        Some(Ok(Value::Object(map))) => Some(map),
        _ => None,
    };
    first(text).or_else(|| first(&escape_raw_controls_in_strings(text)))
}

pub(super) fn escape_raw_controls_in_strings(text: &str) -> String {
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
pub(super) fn statement_field(object: &serde_json::Map<String, Value>, target: Target) -> Option<Option<String>> {
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

pub(super) fn field<'a>(object: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|key| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A statement given in a JSON field may itself be fenced; it must still start like a statement.
pub(super) fn sql_from_fragment(fragment: &str) -> Option<String> {
    let fences = parse_fences(fragment);
    let body = fences.first().map_or(fragment, |f| f.content.as_str());
    let body = body.trim();
    starts_with_sql_keyword(skip_sql_comments(body)).then(|| finish_sql(body))
}

pub(super) fn redis_from_fragment(fragment: &str) -> Option<String> {
    let fences = parse_fences(fragment);
    let body = fences.first().map_or(fragment, |f| f.content.as_str());
    redis_lines(body, true)
}
