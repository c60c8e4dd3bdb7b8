//! The attack and pass corpora shipped with this crate (under `tests/corpus/`), readable by other test code,
//! for example to run the attacks against real databases with this layer switched off.
//!
//! Files: `attacks_<target>.sql` / `passes_<target>.sql` for `postgresql`, `mysql`, `sqlite`, and
//! `attacks_redis.txt` / `passes_redis.txt`.
//!
//! Format: entries are separated by one or more blank lines, and an entry may span several lines. A line
//! `-- expect: <rule>` is metadata naming the [`Rule`] the validator must report (every attack has one); it is
//! not part of the statement. Every other line, `--` comments included, belongs to the statement, because
//! comments are part of several attacks. A block made only of `--` lines and no `expect` line is a file comment
//! and is skipped.

use std::path::PathBuf;

use crate::{LintTarget, Rule};

/// Directory holding the corpus files (in this crate's source tree).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus")
}

/// Path of the attack corpus for `target`.
pub fn attacks_file(target: LintTarget) -> PathBuf {
    corpus_dir().join(file_name("attacks", target))
}

/// Path of the pass corpus (real read-only queries) for `target`.
pub fn passes_file(target: LintTarget) -> PathBuf {
    corpus_dir().join(file_name("passes", target))
}

fn file_name(kind: &str, target: LintTarget) -> String {
    match target {
        LintTarget::Sql(dialect) => format!("{kind}_{dialect}.sql"),
        LintTarget::Redis => format!("{kind}_redis.txt"),
    }
}

/// One corpus entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The statement exactly as it should be submitted (metadata lines removed).
    pub statement: String,
    /// The rule the validator must report, from the `-- expect:` line.
    pub expect: Option<Rule>,
    /// 1-based line where the entry starts in its file.
    pub line: usize,
}

/// A malformed corpus file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorpusError {
    #[error("line {line}: unknown rule `{rule}` in an expect line")]
    UnknownRule { line: usize, rule: String },
    #[error("line {line}: more than one expect line in one entry")]
    DuplicateExpect { line: usize },
}

const EXPECT: &str = "-- expect:";

/// Parses the text of a corpus file.
pub fn parse(text: &str) -> Result<Vec<Entry>, CorpusError> {
    let mut entries = Vec::new();
    let mut block: Vec<(usize, &str)> = Vec::new();
    for (index, line) in text.lines().chain(std::iter::once("")).enumerate() {
        if !line.trim().is_empty() {
            block.push((index + 1, line));
            continue;
        }
        if let Some(entry) = parse_block(&block)? {
            entries.push(entry);
        }
        block.clear();
    }
    Ok(entries)
}

fn parse_block(block: &[(usize, &str)]) -> Result<Option<Entry>, CorpusError> {
    let Some(&(first_line, _)) = block.first() else {
        return Ok(None);
    };
    let mut expect = None;
    let mut statement = Vec::new();
    for &(line, text) in block {
        match text.trim_start().strip_prefix(EXPECT) {
            Some(rule) => {
                let rule = rule.trim();
                let parsed = rule.parse().map_err(|_| CorpusError::UnknownRule { line, rule: rule.to_owned() })?;
                if expect.replace(parsed).is_some() {
                    return Err(CorpusError::DuplicateExpect { line });
                }
            }
            None => statement.push(text),
        }
    }
    let only_comments = statement.iter().all(|l| l.trim_start().starts_with("--"));
    if expect.is_none() && only_comments {
        return Ok(None);
    }
    Ok(Some(Entry { statement: statement.join("\n"), expect, line: first_line }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_metadata_and_comments() {
        let text = "-- file header\n\n-- expect: not_a_query\n-- a leading comment is part of the attack\nDROP TABLE t\n\n\nSELECT 1\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].expect, Some(Rule::NotAQuery));
        assert_eq!(entries[0].statement, "-- a leading comment is part of the attack\nDROP TABLE t");
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[1], Entry { statement: "SELECT 1".into(), expect: None, line: 8 });
    }

    #[test]
    fn rejects_unknown_rules() {
        assert_eq!(
            parse("-- expect: nope\nSELECT 1").unwrap_err(),
            CorpusError::UnknownRule { line: 1, rule: "nope".into() }
        );
    }
}
