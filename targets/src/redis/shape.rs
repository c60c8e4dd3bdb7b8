//! Redis replies shaped into result tables: which columns a command's reply gets, and its values as JSON.

use crate::output::{bytes, decimal, float};
use querygpt_sqlsafe::RedisCommand;
use redis::Value;
use serde_json::Value as Json;

/// One command's reply as a table, cut at `limit` rows (the caller passes its row cap + 1 so it can tell that
/// more existed).
pub(crate) struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Json>>,
}

impl Table {
    fn new(columns: Vec<&'static str>) -> Self {
        Table { columns, rows: Vec::new() }
    }
}

/// The table of `reply` to `command`. SCAN-family replies are not shaped here (see [`scan_items`]).
pub(crate) fn table(command: &RedisCommand, reply: Value, limit: usize) -> Table {
    let name = command.name.as_str();
    let items = match reply {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => return pairs_table(["field", "value"], pairs, limit),
        Value::Attribute { data, .. } => return table(command, *data, limit),
        single => {
            let mut t = Table::new(vec!["value"]);
            t.rows.push(vec![json(single)]);
            return t;
        }
    };
    let with_scores = command.args.iter().any(|a| a.eq_ignore_ascii_case("WITHSCORES"));
    match name {
        "HGETALL" => pairs_table(["field", "value"], flat_pairs(items), limit),
        "ZRANGE" | "ZREVRANGE" | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" | "ZINTER" | "ZUNION" | "ZDIFF"
            if with_scores =>
        {
            // RESP2 sends `member score member score`; ZRANGE under RESP3 sends `[member, score]` pairs.
            let pairs = if items.iter().all(|i| matches!(i, Value::Array(p) if p.len() == 2)) {
                items.into_iter().filter_map(pair_of).collect()
            } else {
                flat_pairs(items)
            };
            pairs_table(["member", "score"], pairs, limit)
        }
        "LRANGE" => {
            let start = command.args.get(1).and_then(|s| s.parse::<i64>().ok()).filter(|s| *s >= 0).unwrap_or(0);
            let mut t = Table::new(vec!["index", "value"]);
            for (i, item) in items.into_iter().take(limit).enumerate() {
                t.rows.push(vec![Json::from(start + i as i64), json(item)]);
            }
            t
        }
        "MGET" | "HMGET" | "SMISMEMBER" | "ZMSCORE" => {
            // Each reply item answers one argument: MGET's keys, or the fields/members after the key.
            let (label, names) = match name {
                "MGET" => ("key", &command.args[..]),
                "HMGET" => ("field", &command.args[1..]),
                _ => ("member", &command.args[1..]),
            };
            let mut t = Table::new(vec![label, "value"]);
            for (arg, item) in names.iter().zip(items).take(limit) {
                t.rows.push(vec![Json::from(arg.as_str()), json(item)]);
            }
            t
        }
        "XRANGE" | "XREVRANGE" => stream_table(items, limit),
        _ => {
            let mut t = Table::new(vec!["value"]);
            t.rows.extend(items.into_iter().take(limit).map(|i| vec![json(i)]));
            t
        }
    }
}

/// Columns of a SCAN-family command's rows: keys, set members, hash fields and values, zset members and scores.
pub(crate) fn scan_columns(command: &RedisCommand) -> Vec<&'static str> {
    match command.name.as_str() {
        "HSCAN" if command.args.iter().any(|a| a.eq_ignore_ascii_case("NOVALUES")) => vec!["field"],
        "HSCAN" => vec!["field", "value"],
        "ZSCAN" => vec!["member", "score"],
        "SSCAN" => vec!["member"],
        _ => vec!["key"],
    }
}

/// A SCAN-family reply split into its next cursor and its rows (`width` values each).
pub(crate) fn scan_items(reply: Value, width: usize) -> Option<(u64, Vec<Vec<Json>>)> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let [cursor, items] = <[Value; 2]>::try_from(parts).ok()?;
    let cursor = match cursor {
        Value::BulkString(b) => std::str::from_utf8(&b).ok()?.parse().ok()?,
        Value::SimpleString(s) => s.parse().ok()?,
        Value::Int(i) => u64::try_from(i).ok()?,
        _ => return None,
    };
    let (Value::Array(items) | Value::Set(items)) = items else {
        return None;
    };
    let mut rows = Vec::with_capacity(items.len() / width.max(1));
    let mut items = items.into_iter();
    loop {
        let row: Vec<Json> = items.by_ref().take(width).map(json).collect();
        if row.len() < width || row.is_empty() {
            return Some((cursor, rows));
        }
        rows.push(row);
    }
}

fn flat_pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(a), Some(b)) = (items.next(), items.next()) {
        out.push((a, b));
    }
    out
}

fn pair_of(item: Value) -> Option<(Value, Value)> {
    let Value::Array(pair) = item else { return None };
    let [a, b] = <[Value; 2]>::try_from(pair).ok()?;
    Some((a, b))
}

fn pairs_table(columns: [&'static str; 2], pairs: Vec<(Value, Value)>, limit: usize) -> Table {
    let mut t = Table::new(columns.to_vec());
    t.rows.extend(pairs.into_iter().take(limit).map(|(a, b)| vec![json(a), json(b)]));
    t
}

/// XRANGE entries `[id, [field, value, ...]]` as rows `id` and `fields` (an object of the entry's fields).
fn stream_table(items: Vec<Value>, limit: usize) -> Table {
    let mut t = Table::new(vec!["id", "fields"]);
    for entry in items.into_iter().take(limit) {
        let Some((id, fields)) = pair_of(entry) else { continue };
        let fields = match fields {
            Value::Array(f) => flat_pairs(f),
            Value::Map(m) => m,
            _ => Vec::new(),
        };
        let object = fields.into_iter().map(|(k, v)| (text(k), json(v))).collect();
        t.rows.push(vec![json(id), Json::Object(object)]);
    }
    t
}

fn text(v: Value) -> String {
    match json(v) {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// A reply value as JSON. Integer replies are numbers; bulk strings that are plain numbers in canonical form
/// (`42`, `-1.5`, as counters and scores are stored) become numbers too, so that a chart can use them, while
/// `007` or `1e3` stay text. Binary data that is not UTF-8 is base64.
pub(crate) fn json(v: Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Int(i) => Json::from(i),
        Value::Double(f) => float(f),
        Value::Boolean(b) => Json::Bool(b),
        Value::Okay => Json::from("OK"),
        Value::SimpleString(s) => Json::String(s),
        Value::VerbatimString { text, .. } => Json::String(text),
        Value::BulkString(b) => match String::from_utf8(b) {
            Ok(s) => number_text(&s).unwrap_or(Json::String(s)),
            Err(e) => bytes(e.as_bytes()),
        },
        Value::Array(items) | Value::Set(items) => Json::Array(items.into_iter().map(json).collect()),
        Value::Map(pairs) => Json::Object(pairs.into_iter().map(|(k, v)| (text(k), json(v))).collect()),
        Value::Attribute { data, .. } => json(*data),
        Value::ServerError(e) => Json::String(format!("error: {e}")),
        other => Json::String(format!("{other:?}")),
    }
}

fn number_text(s: &str) -> Option<Json> {
    let canonical = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !(s.starts_with('0') && s.len() > 1 && !s.starts_with("0."))
        && !s.starts_with("-0")
        && !(s.contains('.') && s.ends_with('0'));
    match decimal(s) {
        n @ Json::Number(_) if canonical => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_canonical_numbers_become_numbers() {
        for (text, expected) in [("42", json!(42)), ("-1.5", json!(-1.5)), ("0", json!(0)), ("0.25", json!(0.25))] {
            assert_eq!(json(Value::BulkString(text.into())), expected, "{text}");
        }
        for text in ["007", "1e3", "1.50", "-0", "12abc", "", "9007199254740993", "1.", "+1"] {
            assert_eq!(json(Value::BulkString(text.into())), json!(text), "{text}");
        }
        assert_eq!(json(Value::BulkString(vec![0xff, 0x00])), json!("/wA="));
    }

    #[test]
    fn scan_replies_give_cursor_and_rows() {
        let reply = Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::BulkString(b"1".to_vec())]),
        ]);
        let (cursor, rows) = scan_items(reply, 2).unwrap();
        assert_eq!(cursor, 17);
        assert_eq!(rows, vec![vec![json!("a"), json!(1)]]);
    }
}
