//! Median validation time per query over the pass corpus (std::time only): `cargo bench --bench validate`.
//!
//! Every query is validated `ROUNDS` times; its time is the median of those rounds, and the figure printed is
//! the median (and 95th percentile) of the per-query times, per dialect and overall.

use std::hint::black_box;
use std::time::{Duration, Instant};

use querygpt_sqlsafe::corpus;
use querygpt_sqlsafe::{Dialect, LintTarget, Policy, validate};

const ROUNDS: usize = 101;

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo bench` passes `--bench`; test runners that list or run every target (`cargo nextest run
    // --all-targets` asks for `--list`) must find no tests here rather than a ten-second benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let policy = Policy { allowed_tables: None, row_limit: Some(1000) };
    let mut all = Vec::new();
    for dialect in Dialect::ALL {
        let path = corpus::passes_file(LintTarget::Sql(dialect));
        let text = std::fs::read_to_string(&path).expect("pass corpus");
        let queries: Vec<String> =
            corpus::parse(&text).expect("corpus format").into_iter().map(|e| e.statement).collect();
        let mut per_query = Vec::with_capacity(queries.len());
        for sql in &queries {
            // Warm-up, and a check that the corpus still passes.
            validate(sql, dialect, &policy).expect("pass corpus query rejected");
            let mut times: Vec<Duration> = (0..ROUNDS)
                .map(|_| {
                    let start = Instant::now();
                    let result = validate(black_box(sql), dialect, black_box(&policy));
                    let elapsed = start.elapsed();
                    black_box(result).expect("validated above");
                    elapsed
                })
                .collect();
            per_query.push(median(&mut times));
        }
        per_query.sort_unstable();
        println!(
            "{:<10} {:>3} queries: median {:.1} µs, p95 {:.1} µs, max {:.1} µs per query",
            dialect.to_string(),
            per_query.len(),
            micros(percentile(&per_query, 0.5)),
            micros(percentile(&per_query, 0.95)),
            micros(*per_query.last().expect("non-empty corpus")),
        );
        all.extend(per_query);
    }
    all.sort_unstable();
    println!(
        "all        {:>3} queries: median {:.1} µs, p95 {:.1} µs per query (target < 50 µs)",
        all.len(),
        micros(percentile(&all, 0.5)),
        micros(percentile(&all, 0.95)),
    );
}
