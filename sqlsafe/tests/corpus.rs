//! The attack corpus must be rejected with the expected rule, the pass corpus must all pass.

use querygpt_sqlsafe::corpus::{self, Entry};
use querygpt_sqlsafe::{Dialect, LintTarget, Policy, Rule, validate, validate_redis};

fn load(path: std::path::PathBuf) -> Vec<Entry> {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    corpus::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn attacks(dialect: Dialect) -> Vec<Entry> {
    load(corpus::attacks_file(LintTarget::Sql(dialect)))
}

fn passes(dialect: Dialect) -> Vec<Entry> {
    load(corpus::passes_file(LintTarget::Sql(dialect)))
}

fn row_limited() -> Policy {
    Policy { allowed_tables: None, row_limit: Some(1000) }
}

#[test]
fn attack_corpus_is_large_enough() {
    let total: usize = Dialect::ALL.iter().map(|&d| attacks(d).len()).sum();
    assert!(total >= 150, "only {total} attacks");
    for dialect in Dialect::ALL {
        assert!(attacks(dialect).len() >= 50, "{dialect}: too few attacks");
    }
}

#[test]
fn pass_corpus_is_large_enough() {
    let total: usize = Dialect::ALL.iter().map(|&d| passes(d).len()).sum();
    assert!(total >= 300, "only {total} passing queries");
}

#[test]
fn every_attack_is_rejected_with_its_rule() {
    let mut failures = Vec::new();
    for dialect in Dialect::ALL {
        for entry in attacks(dialect) {
            let expected = entry.expect.unwrap_or_else(|| panic!("{dialect} line {}: no expect line", entry.line));
            // The rule must hold with and without a row limit (the rewrite must not change the verdict).
            for policy in [Policy::default(), row_limited()] {
                match validate(&entry.statement, dialect, &policy) {
                    Err(rejection) if rejection.rule == expected => {}
                    Err(rejection) => failures.push(format!(
                        "{dialect} line {}: expected {expected}, got {rejection}\n    {}",
                        entry.line, entry.statement
                    )),
                    Ok(validated) => failures.push(format!(
                        "{dialect} line {}: expected {expected}, but it PASSED as {}\n    {}",
                        entry.line, validated.sql, entry.statement
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_real_query_passes_and_renders_to_a_fixpoint() {
    let mut failures = Vec::new();
    for dialect in Dialect::ALL {
        for entry in passes(dialect) {
            assert!(entry.expect.is_none(), "{dialect} line {}: pass entries carry no expect line", entry.line);
            for policy in [Policy::default(), row_limited()] {
                match validate(&entry.statement, dialect, &policy) {
                    Ok(validated) => {
                        // The text to run validates again to itself: nothing is lost or added on a second pass.
                        match validate(&validated.sql, dialect, &policy) {
                            Ok(again) if again == validated => {}
                            other => failures.push(format!(
                                "{dialect} line {}: not a fixpoint: {} -> {other:?}",
                                entry.line, validated.sql
                            )),
                        }
                    }
                    Err(rejection) => {
                        failures.push(format!("{dialect} line {}: {rejection}\n    {}", entry.line, entry.statement))
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} false positives:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn row_limit_is_in_the_text_that_runs() {
    for dialect in Dialect::ALL {
        for entry in passes(dialect) {
            let sql = validate(&entry.statement, dialect, &row_limited()).map(|v| v.sql).unwrap_or_default();
            let upper = sql.to_ascii_uppercase();
            assert!(upper.contains(" LIMIT "), "{dialect} line {}: no LIMIT in {sql}", entry.line);
        }
    }
}

#[test]
fn redis_attacks_are_rejected_and_reads_pass() {
    let attacks = load(corpus::attacks_file(LintTarget::Redis));
    assert!(attacks.len() >= 40, "only {} redis attacks", attacks.len());
    let mut failures = Vec::new();
    for entry in &attacks {
        let expected = entry.expect.expect("redis attacks carry an expect line");
        match validate_redis(&entry.statement) {
            Err(rejection) if rejection.rule == expected => {}
            other => failures.push(format!("line {}: expected {expected}, got {other:?}", entry.line)),
        }
    }
    for entry in load(corpus::passes_file(LintTarget::Redis)) {
        if let Err(rejection) = validate_redis(&entry.statement) {
            failures.push(format!("line {}: {rejection}", entry.line));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Huge and deeply nested inputs are generated (they do not fit a corpus file) and must give an error, not a
/// crash: these tests run on the default 2 MiB test thread stack.
mod generated {
    use super::*;

    fn rule(sql: &str, dialect: Dialect) -> Rule {
        match validate(sql, dialect, &Policy::default()) {
            Err(rejection) => rejection.rule,
            Ok(validated) => panic!("passed: {}", &validated.sql[..validated.sql.len().min(200)]),
        }
    }

    #[test]
    fn huge_inputs_are_too_long() {
        for dialect in Dialect::ALL {
            let padding = format!("SELECT 1 /* {} */", "x".repeat(70_000));
            assert_eq!(rule(&padding, dialect), Rule::TooLong);
            let chain = format!("SELECT 1{}", " + 1".repeat(3_000));
            assert_eq!(rule(&chain, dialect), Rule::TooLong);
            let many_ors = format!("SELECT id FROM orders WHERE {}", vec!["id = 1"; 1_500].join(" OR "));
            assert_eq!(rule(&many_ors, dialect), Rule::TooLong);
        }
    }

    #[test]
    fn deep_nesting_is_too_deep() {
        for dialect in Dialect::ALL {
            let parens = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
            assert_eq!(rule(&parens, dialect), Rule::TooDeep);
            let subqueries = format!("SELECT {}1{}", "(SELECT ".repeat(500), ")".repeat(500));
            assert_eq!(rule(&subqueries, dialect), Rule::TooDeep);
            let derived = format!("SELECT * FROM {}orders{}", "(SELECT * FROM ".repeat(300), ") t".repeat(300));
            assert!(matches!(rule(&derived, dialect), Rule::TooDeep | Rule::ParseError));
            // sqlparser backtracks over `NOT`, so its recursion limit surfaces as a parse error here.
            let nots = format!("SELECT {}1", "NOT ".repeat(1_500));
            assert!(matches!(rule(&nots, dialect), Rule::TooDeep | Rule::ParseError));
            let functions = format!("SELECT {}1{}", "abs(".repeat(1_000), ")".repeat(1_000));
            assert_eq!(rule(&functions, dialect), Rule::TooDeep);
            let cases = format!("SELECT {}1{}", "CASE WHEN 1 THEN ".repeat(400), " END".repeat(400));
            assert_eq!(rule(&cases, dialect), Rule::TooDeep);
            let unions = vec!["SELECT 1"; 600].join(" UNION ");
            assert_eq!(rule(&unions, dialect), Rule::TooDeep);
            let ctes = format!("{}SELECT 1{}", "WITH a AS (".repeat(400), ") SELECT 1".repeat(400));
            assert_eq!(rule(&ctes, dialect), Rule::TooDeep);
        }
    }

    #[test]
    fn long_chains_within_the_token_cap_are_too_deep_not_a_crash() {
        for dialect in Dialect::ALL {
            // ~1,000 operators: under the token cap, over MAX_DEPTH once built into a left-deep tree.
            let chain = format!("SELECT id FROM orders WHERE {}", vec!["id = 1"; 500].join(" OR "));
            assert_eq!(rule(&chain, dialect), Rule::TooDeep);
            let casts = format!("SELECT 1{}", "::text".repeat(900));
            if dialect == Dialect::Postgresql {
                assert_eq!(rule(&casts, dialect), Rule::TooDeep);
            }
        }
    }

    #[test]
    fn a_hundred_ors_still_pass() {
        for dialect in Dialect::ALL {
            let sql = format!("SELECT id FROM orders WHERE {}", vec!["status = 'x'"; 100].join(" OR "));
            assert!(validate(&sql, dialect, &Policy::default()).is_ok());
        }
    }
}
