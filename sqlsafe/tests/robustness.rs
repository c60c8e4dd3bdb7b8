//! Deterministic "no panic, no stack overflow" run over thousands of generated and mutated inputs (the
//! cargo-fuzz target in /work/main/fuzz explores further). Runs on the default 2 MiB test thread stack.

use querygpt_sqlsafe::corpus;
use querygpt_sqlsafe::{Dialect, LintTarget, Policy, lint, validate, validate_redis};

/// xorshift64*: a tiny deterministic generator, so a failure reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "SELECT ",
    "FROM ",
    "WHERE ",
    "WITH ",
    "AS ",
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "`",
    "[",
    "]",
    "--",
    "/*",
    "*/",
    "/*!",
    "/*M!",
    "/*+",
    "$$",
    "$q$",
    "\\",
    "\n",
    " ",
    "::",
    ":=",
    "@",
    "@@",
    "?",
    "$1",
    "*",
    "+",
    "-",
    "||",
    "->>",
    "=",
    "<>",
    "NOT ",
    "AND ",
    "OR ",
    "IN ",
    "EXISTS ",
    "CASE WHEN ",
    "THEN ",
    "ELSE ",
    "END ",
    "UNION ",
    "INTERSECT ",
    "EXCEPT ",
    "ALL ",
    "DISTINCT ",
    "LIMIT ",
    "OFFSET ",
    "FETCH FIRST ",
    "ROWS ONLY ",
    "FOR UPDATE ",
    "INTO ",
    "OUTFILE ",
    "DELETE ",
    "UPDATE ",
    "INSERT ",
    "RETURNING ",
    "VALUES ",
    "LATERAL ",
    "JOIN ",
    "ON ",
    "OVER (",
    "PARTITION BY ",
    "ORDER BY ",
    "GROUP BY ",
    "HAVING ",
    "pg_sleep(",
    "sleep(",
    "load_file(",
    "count(",
    "generate_series(",
    "json_each(",
    "orders ",
    "pg_authid ",
    "mysql.user ",
    "t.",
    "1",
    "0x1f",
    "1e309",
    "NULL ",
    "ARRAY[",
    "INTERVAL '1 day' ",
    "CAST(",
    " AS INT)",
    "E'\\''",
    "N'x'",
    "X'00'",
    "\u{0}",
    "\u{feff}",
    "é",
    "🦀",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(6) {
        let at = rng.below(text.len() + 1);
        match rng.below(4) {
            0 => text.splice(at..at, rng.pick(FRAGMENTS).chars()).for_each(drop),
            1 if at < text.len() => {
                let end = (at + rng.below(12)).min(text.len());
                text.drain(at..end);
            }
            2 if at < text.len() => {
                let end = (at + rng.below(20)).min(text.len());
                let copy: Vec<char> = text[at..end].to_vec();
                let again = rng.below(text.len() + 1);
                text.splice(again..again, copy);
            }
            _ => text.splice(at..at, std::iter::once(char::from(rng.below(128) as u8))).for_each(drop),
        }
    }
    text.into_iter().collect()
}

fn random_text(rng: &mut Rng) -> String {
    (0..rng.below(40)).map(|_| rng.pick(FRAGMENTS)).collect()
}

fn nested(rng: &mut Rng) -> String {
    let depth = 50 + rng.below(3_000);
    let (open, close) = [
        ("(", ")"),
        ("(SELECT ", ")"),
        ("abs(", ")"),
        ("NOT ", ""),
        ("- ", ""),
        ("CASE WHEN 1 THEN ", " END"),
        ("ARRAY[", "]"),
        ("EXISTS (SELECT ", ")"),
        ("1 + ", ""),
        ("x::int::", "int"),
    ][rng.below(10)];
    format!("SELECT {}1{}", open.repeat(depth), close.repeat(depth))
}

fn check(input: &str) {
    let policy = Policy { allowed_tables: Some(vec!["orders".into(), "customers".into()]), row_limit: Some(50) };
    for dialect in Dialect::ALL {
        for policy in [&Policy::default(), &policy] {
            if let Ok(validated) = validate(input, dialect, policy) {
                // Whatever passes must still pass as the text that runs.
                let again = validate(&validated.sql, dialect, policy);
                assert!(again.is_ok(), "{dialect}: {input:?} -> {:?} -> {again:?}", validated.sql);
            }
        }
    }
    let _ = validate_redis(input);
}

#[test]
fn no_panic_on_thousands_of_generated_inputs() {
    let mut seeds = Vec::new();
    for target in [
        LintTarget::Sql(Dialect::Postgresql),
        LintTarget::Sql(Dialect::Mysql),
        LintTarget::Sql(Dialect::Sqlite),
        LintTarget::Redis,
    ] {
        for path in [corpus::attacks_file(target), corpus::passes_file(target)] {
            let text = std::fs::read_to_string(&path).unwrap();
            seeds.extend(corpus::parse(&text).unwrap().into_iter().map(|e| e.statement));
        }
    }
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut runs = 0;
    for seed in &seeds {
        check(seed);
        for _ in 0..8 {
            check(&mutate(&mut rng, seed));
            runs += 1;
        }
    }
    for _ in 0..1_000 {
        check(&random_text(&mut rng));
        runs += 1;
    }
    for _ in 0..200 {
        check(&nested(&mut rng));
        runs += 1;
    }
    assert!(runs > 5_000, "{runs}");
}

#[test]
fn lint_never_panics_on_odd_files() {
    for input in ["", "\n\n\n", "SELECT 1\n\n\nDROP TABLE x\n", "\r\n\r\nSELECT 1;\r\n", "🦀\n\n'"] {
        for target in ["postgresql", "mysql", "sqlite", "redis"] {
            let verdicts = lint(input, target.parse().unwrap());
            assert!(verdicts.iter().all(|v| v.ok == v.rule.is_none()));
        }
    }
}
