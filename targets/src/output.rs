//! Query results as JSON, and the collector that enforces the row and byte limits while rows stream in.

use crate::error::TargetError;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Number, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Rows of one query, as JSON objects keyed by column name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOutput {
    /// Column names in result order. Repeated names get a suffix (`id`, `id_2`) so every row key is unique.
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    /// More rows existed than the row cap or the byte limit let through.
    pub truncated: bool,
    /// Time from sending the statement to the last row read.
    #[serde(serialize_with = "serialize_millis")]
    pub elapsed: Duration,
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Receives rows one by one and says when to stop fetching.
pub(crate) struct Collector {
    row_cap: usize,
    max_bytes: usize,
    columns: Option<Vec<String>>,
    rows: Vec<Map<String, Value>>,
    bytes: usize,
    truncated: bool,
    /// When the statement was sent: a collector is made just before.
    started: Instant,
}

impl Collector {
    pub(crate) fn new(row_cap: usize, max_bytes: usize) -> Self {
        Collector {
            row_cap,
            max_bytes,
            columns: None,
            rows: Vec::new(),
            bytes: 0,
            truncated: false,
            started: Instant::now(),
        }
    }

    /// True until the column names are known (they come with the first row, or from a describe).
    pub(crate) fn needs_columns(&self) -> bool {
        self.columns.is_none()
    }

    pub(crate) fn set_columns<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.columns = Some(unique_names(names));
    }

    /// Adds one row (values in column order). Returns `Ok(false)` when the result is full: the caller must stop
    /// fetching. The row that overflows the cap is not kept; it only proves that more rows exist.
    pub(crate) fn push(&mut self, values: Vec<Value>) -> Result<bool, TargetError> {
        if self.rows.len() >= self.row_cap {
            self.truncated = true;
            return Ok(false);
        }
        let columns = self.columns.get_or_insert_with(Vec::new);
        let size = 2 + columns.iter().zip(&values).map(|(k, v)| k.len() + 4 + json_size(v)).sum::<usize>();
        if self.bytes + size > self.max_bytes {
            if self.rows.is_empty() {
                return Err(TargetError::TooLarge(format!(
                    "a single row takes about {size} bytes, more than the {} byte limit",
                    self.max_bytes
                )));
            }
            self.truncated = true;
            return Ok(false);
        }
        self.bytes += size;
        self.rows.push(columns.iter().cloned().zip(values).collect());
        Ok(true)
    }

    /// The rows collected, timed up to now (call it once the last row is read, before the session ends).
    pub(crate) fn finish(self) -> QueryOutput {
        QueryOutput {
            columns: self.columns.unwrap_or_default(),
            rows: self.rows,
            truncated: self.truncated,
            elapsed: self.started.elapsed(),
        }
    }
}

/// Gives repeated column names a numeric suffix: `SELECT a.id, b.id` yields `id` and `id_2`.
fn unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(names.len());
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut candidate = name.to_owned();
        let mut n = 2;
        while seen.contains(&candidate) {
            candidate = format!("{name}_{n}");
            n += 1;
        }
        seen.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

/// Size of a value once serialized, close enough for a memory limit (escapes are not counted).
fn json_size(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_size(i) + 1).sum::<usize>(),
        Value::Object(map) => 2 + map.iter().map(|(k, v)| k.len() + 4 + json_size(v)).sum::<usize>(),
    }
}

/// A float as a JSON number; NaN and infinities (which JSON cannot carry) as strings.
pub(crate) fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(non_finite(f)))
}

/// A 4-byte float through its shortest decimal form, so `0.1f32` reads `0.1`, not `0.10000000149011612`.
pub(crate) fn float32(f: f32) -> Value {
    if !f.is_finite() {
        return Value::String(non_finite(f64::from(f)));
    }
    f.to_string().parse::<f64>().map(float).unwrap_or(Value::Null)
}

fn non_finite(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// An exact decimal (NUMERIC, DECIMAL, MONEY) as a JSON number when an `f64` carries it without loss, otherwise as
/// its exact decimal string (`"12345678901234567890.5"`). Non-numeric input (`NaN`) stays a string.
pub(crate) fn decimal(text: &str) -> Value {
    let Some(normal) = normalize_decimal(text) else {
        return Value::String(text.to_owned());
    };
    // Integers print without a fraction, but only when an f64 holds them too: JavaScript clients read every JSON
    // number as an f64, so `9007199254740993` (2^53 + 1) must stay a string. The comparison is in i128 because
    // `i64::MAX as f64` rounds up to 2^63, which an `as i64` cast would saturate back to `i64::MAX`.
    if !normal.contains('.')
        && let Ok(i) = normal.parse::<i64>()
        && (i as f64) as i128 == i128::from(i)
    {
        return Value::from(i);
    }
    match normal.parse::<f64>() {
        // Rust prints an f64 as the shortest decimal that reads back to it, never in exponent form: if that is the
        // same decimal, the number is exact in JSON.
        Ok(f) if f.is_finite() && normalize_decimal(&f.to_string()).as_deref() == Some(normal.as_str()) => float(f),
        _ => Value::String(text.to_owned()),
    }
}

/// Canonical form of a plain decimal: no `+`, no leading zeros, no trailing fractional zeros, no `-0`.
/// `None` when `text` is not a plain decimal.
fn normalize_decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::with_capacity(text.len() + 1);
    if negative && (int != "0" || !frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

/// Binary data as standard base64 (padded).
pub(crate) fn bytes(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// A value of a type this crate does not know: its bytes as text when they plainly are text, otherwise null.
pub(crate) fn unknown(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => Value::String(s.to_owned()),
        _ => Value::Null,
    }
}

/// JSON text parsed into a value; text that does not parse stays a string.
pub(crate) fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_become_numbers_only_when_exact() {
        assert_eq!(decimal("12.30"), json!(12.3));
        assert_eq!(decimal("-0.000"), json!(0));
        assert_eq!(decimal("42.00"), json!(42));
        assert_eq!(decimal("1234567.89"), json!(1234567.89));
        assert_eq!(decimal("9007199254740993"), json!("9007199254740993"));
        assert_eq!(decimal("-9007199254740992"), json!(-9007199254740992i64));
        assert_eq!(decimal("9223372036854775807"), json!("9223372036854775807"));
        assert_eq!(decimal("12345678901234567890.5"), json!("12345678901234567890.5"));
        assert_eq!(decimal("0.1000000000000000000001"), json!("0.1000000000000000000001"));
        assert_eq!(decimal("NaN"), json!("NaN"));
        assert_eq!(decimal("100000000000000000000"), json!(1e20));
        assert_eq!(decimal("-5"), json!(-5));
    }

    #[test]
    fn floats_keep_their_short_form() {
        assert_eq!(float32(0.1), json!(0.1));
        assert_eq!(float(f64::NAN), json!("NaN"));
        assert_eq!(float32(f32::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn repeated_columns_are_suffixed() {
        assert_eq!(unique_names(["id", "id", "id_2", "name"]), vec!["id", "id_2", "id_2_2", "name"]);
    }

    #[test]
    fn collector_stops_at_the_cap_and_marks_truncation() {
        let mut c = Collector::new(2, 1 << 20);
        c.set_columns(["n"]);
        assert!(c.push(vec![json!(1)]).unwrap());
        assert!(c.push(vec![json!(2)]).unwrap());
        assert!(!c.push(vec![json!(3)]).unwrap());
        let out = c.finish();
        assert_eq!(out.rows.len(), 2);
        assert!(out.truncated);
    }

    #[test]
    fn collector_stops_at_the_byte_limit() {
        let mut c = Collector::new(100, 100);
        c.set_columns(["s"]);
        assert!(c.push(vec![json!("x".repeat(40))]).unwrap());
        assert!(!c.push(vec![json!("y".repeat(60))]).unwrap());
        assert!(c.finish().truncated);

        let mut big = Collector::new(100, 10);
        big.set_columns(["s"]);
        assert!(matches!(big.push(vec![json!("z".repeat(50))]), Err(TargetError::TooLarge(_))));
    }

    #[test]
    fn unknown_bytes_are_text_or_null() {
        assert_eq!(unknown(b"hello"), json!("hello"));
        assert_eq!(unknown(&[0, 1, 2]), Value::Null);
    }
}
