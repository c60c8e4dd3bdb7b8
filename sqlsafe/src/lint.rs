//! `querygpt validate`: one verdict per statement of a file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Dialect, Policy, Rule, UnknownDialect, validate, validate_redis};

/// What [`lint`] validates: SQL in a dialect, or Redis commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LintTarget {
    Sql(Dialect),
    Redis,
}

impl FromStr for LintTarget {
    type Err = UnknownDialect;

    /// `postgresql`, `mysql`, `sqlite` (and their aliases, see [`Dialect`]) or `redis`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("redis") {
            return Ok(LintTarget::Redis);
        }
        s.parse().map(LintTarget::Sql).map_err(|_| UnknownDialect(s.to_owned()))
    }
}

impl fmt::Display for LintTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LintTarget::Sql(dialect) => dialect.fmt(f),
            LintTarget::Redis => f.write_str("redis"),
        }
    }
}

/// The verdict on one statement: `{"statement": ..., "ok": true}` or
/// `{"statement": ..., "ok": false, "rule": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub statement: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Splits `input` into statements and validates each with the default [`Policy`].
///
/// Splitting rule: if the input contains a blank line (empty or whitespace only), statements are the
/// blank-line-separated blocks and may span several lines; otherwise every non-blank line is one statement.
/// Statements are trimmed. For Redis a block may hold several commands (validated together, as one LLM answer).
pub fn lint(input: &str, target: LintTarget) -> Vec<Verdict> {
    split_statements(input)
        .into_iter()
        .map(|statement| {
            let outcome = match target {
                LintTarget::Sql(dialect) => validate(&statement, dialect, &Policy::default()).map(drop),
                LintTarget::Redis => validate_redis(&statement).map(drop),
            };
            match outcome {
                Ok(()) => Verdict { statement, ok: true, rule: None, message: None },
                Err(rejection) => {
                    Verdict { statement, ok: false, rule: Some(rejection.rule), message: Some(rejection.message) }
                }
            }
        })
        .collect()
}

fn split_statements(input: &str) -> Vec<String> {
    let is_blank = |line: &&str| line.trim().is_empty();
    let lines: Vec<&str> = input.lines().collect();
    let has_blank_separator = match (lines.iter().position(|l| !is_blank(l)), lines.iter().rposition(|l| !is_blank(l)))
    {
        (Some(first), Some(last)) => lines[first..=last].iter().any(is_blank),
        _ => false,
    };
    if !has_blank_separator {
        return lines.iter().filter(|l| !is_blank(l)).map(|l| l.trim().to_owned()).collect();
    }
    let mut statements = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in lines.into_iter().chain(std::iter::once("")) {
        if is_blank(&line) {
            if !current.is_empty() {
                statements.push(current.join("\n").trim().to_owned());
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_without_blank_separator_are_statements() {
        assert_eq!(split_statements("SELECT 1\n  SELECT 2  \n"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn blank_lines_separate_multi_line_blocks() {
        let input = "\nSELECT a\nFROM t\n\n\n  \nSELECT 2\n";
        assert_eq!(split_statements(input), ["SELECT a\nFROM t", "SELECT 2"]);
    }

    #[test]
    fn trailing_blank_lines_do_not_switch_to_blocks() {
        assert_eq!(split_statements("SELECT 1\nSELECT 2\n\n"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn verdicts_serialize_as_documented() {
        let verdicts = lint("SELECT 1\nDELETE FROM t", LintTarget::Sql(Dialect::Postgresql));
        let json: Vec<serde_json::Value> = verdicts.iter().map(|v| serde_json::to_value(v).unwrap()).collect();
        assert_eq!(json[0], serde_json::json!({"statement": "SELECT 1", "ok": true}));
        assert_eq!(json[1]["ok"], false);
        assert_eq!(json[1]["rule"], "not_a_query");
        assert!(json[1]["message"].as_str().unwrap().contains("DELETE"));
    }

    #[test]
    fn targets_parse() {
        assert_eq!("redis".parse::<LintTarget>().unwrap(), LintTarget::Redis);
        assert_eq!("PostgreSQL".parse::<LintTarget>().unwrap(), LintTarget::Sql(Dialect::Postgresql));
        assert!("oracle".parse::<LintTarget>().is_err());
    }
}
