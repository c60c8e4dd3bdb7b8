//! Recall of the needed tables and time to rank on a generated 500-table schema (std::time only):
//! `cargo bench -p querygpt-ranking --bench recall`.
//!
//! For every question, `fit` at the worker's default budget: which of the tables its SQL needs were sent, and
//! where the missed ones ranked. Then the figures: recall of the needed tables, questions with all of them, the
//! prompt size, and the time of `fit` (index, ranking and text) and of its parts, as p50/p99 over many runs. The
//! old prompt (the schema in table order, cut at the budget) is the baseline.

use std::hint::black_box;
use std::time::{Duration, Instant};

use querygpt_common::schema::DbSchema;
use querygpt_ranking::fixtures::{self as data, QUESTIONS, Question};
use querygpt_ranking::{SchemaIndex, fit, render};

/// `worker.schema_budget`'s default.
const BUDGET: usize = 24 * 1024;
/// Timed rounds over all the questions.
const ROUNDS: usize = 40;

fn main() {
    // `cargo bench` passes `--bench`; test runners that list or run every target must find no tests here.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let schema = data::schema();
    check(&schema);
    let full = render(&schema);
    let columns: usize = schema.tables.iter().map(|t| t.columns.len()).sum();
    let fks: usize = schema.tables.iter().map(|t| t.foreign_keys.len()).sum();
    println!(
        "schema: {} tables, {columns} columns, {fks} foreign keys, {:.1} KB rendered; budget {BUDGET} bytes; {} questions\n",
        schema.tables.len(),
        kb(full.len()),
        QUESTIONS.len()
    );

    println!(
        "{:>2}  {:<4} {:>5}  {:>4}  {:>5}  {:>4}  question (missed: table #rank)",
        "#", "lang", "hits", "sent", "KB", "rank"
    );
    let index = SchemaIndex::new(&schema);
    for (i, question) in QUESTIONS.iter().enumerate() {
        let fitted = fit(&schema, question.text, question.context, BUDGET);
        assert!(fitted.ranked && fitted.text.len() <= BUDGET);
        let missed: Vec<&str> =
            question.tables.iter().copied().filter(|t| !fitted.tables.iter().any(|s| s == t)).collect();
        // Every table fits one byte short of the whole schema: `tables` is then the whole ranking.
        let ranking = index.fit(&schema, question.text, question.context, full.len() - 1).tables;
        let rank = |t: &str| ranking.iter().position(|r| r == t).expect("ranked") + 1;
        let missed: Vec<String> = missed.iter().map(|t| format!("{t} #{}", rank(t))).collect();
        println!(
            "{:>2}  {:<4} {:>2}/{:<2}  {:>4}  {:>5.1}  {:>4}  {}{}",
            i + 1,
            if question.text.is_ascii() { "en" } else { "zh" },
            question.tables.len() - missed.len(),
            question.tables.len(),
            fitted.tables.len(),
            kb(fitted.text.len()),
            question.tables.iter().map(|t| rank(t)).max().unwrap_or(0),
            question.text,
            if missed.is_empty() { String::new() } else { format!("  (missed: {})", missed.join(", ")) }
        );
    }
    println!("\n(rank: the worst rank of the question's tables in the full ranking)\n");
    println!("{:>6}  {:>8}  {:>14}  {:>10}  {:>7}", "budget", "recall", "all tables", "avg sent", "avg KB");
    for budget in [8 * 1024, 12 * 1024, 16 * 1024, BUDGET] {
        let mut at = Totals::default();
        for question in QUESTIONS {
            let fitted = fit(&schema, question.text, question.context, budget);
            at.add(question, &fitted.tables, fitted.text.len());
        }
        at.print(&format!("{} KiB", budget / 1024));
    }
    baseline(&full).print("before");
    println!("(before: the schema in table order, cut at {} KiB, as the worker sent it)", BUDGET / 1024);

    println!("\ntime, {} runs each (p50 / p99):", ROUNDS * QUESTIONS.len());
    report("fit (index + rank + text)", time(|q| fit(&schema, q.text, q.context, BUDGET)));
    report("SchemaIndex::new", time(|_| SchemaIndex::new(&schema)));
    report("fit with a kept index", time(|q| index.fit(&schema, q.text, q.context, BUDGET)));
}

/// Every needed table exists, and every foreign key points at a table.
fn check(schema: &DbSchema) {
    let exists = |name: &str| schema.tables.iter().any(|t| t.name == name);
    for question in QUESTIONS {
        for table in question.tables {
            assert!(exists(table), "{}: no table {table}", question.text);
        }
    }
    for table in &schema.tables {
        for fk in &table.foreign_keys {
            assert!(exists(&fk.referenced_table), "{} -> {}", table.name, fk.referenced_table);
        }
    }
}

/// What the worker sent before ranking: the tables whose lines fit in the budget, in table order.
fn baseline(full: &str) -> Totals {
    let mut sent = Vec::new();
    let mut len = 0;
    for line in full.split_inclusive('\n') {
        if len + line.len() > BUDGET {
            break;
        }
        len += line.len();
        sent.push(line["TABLE ".len()..].split(' ').next().unwrap().to_owned());
    }
    let mut totals = Totals::default();
    for question in QUESTIONS {
        totals.add(question, &sent, len);
    }
    totals
}

/// Needed tables found, questions with all of them, tables and bytes sent, over the questions.
#[derive(Default)]
struct Totals {
    questions: usize,
    needed: usize,
    found: usize,
    complete: usize,
    sent: usize,
    bytes: usize,
}

impl Totals {
    fn add(&mut self, question: &Question, sent: &[String], bytes: usize) {
        let found = question.tables.iter().filter(|t| sent.iter().any(|s| s == *t)).count();
        self.questions += 1;
        self.needed += question.tables.len();
        self.found += found;
        self.complete += usize::from(found == question.tables.len());
        self.sent += sent.len();
        self.bytes += bytes;
    }

    fn print(&self, budget: &str) {
        println!(
            "{budget:>6}  {:>6.1} %  {:>6.1} % {:>2}/{:<2}  {:>10.1}  {:>7.1}",
            100.0 * self.found as f64 / self.needed as f64,
            100.0 * self.complete as f64 / self.questions as f64,
            self.complete,
            self.questions,
            self.sent as f64 / self.questions as f64,
            kb(self.bytes / self.questions)
        );
    }
}

/// Times `run` on every question `ROUNDS` times, after one warm-up round.
fn time<T>(mut run: impl FnMut(&Question) -> T) -> Vec<Duration> {
    QUESTIONS.iter().for_each(|q| {
        black_box(run(q));
    });
    let mut times = Vec::with_capacity(ROUNDS * QUESTIONS.len());
    for _ in 0..ROUNDS {
        for question in QUESTIONS {
            let start = Instant::now();
            black_box(run(question));
            times.push(start.elapsed());
        }
    }
    times.sort_unstable();
    times
}

fn report(what: &str, sorted: Vec<Duration>) {
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!("  {what:<27} {:>6.3} ms / {:>6.3} ms", at(0.5), at(0.99));
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}
