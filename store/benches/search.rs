//! The conversation list and its search at scale: `cargo bench -p querygpt-store --bench search [-- sqlite|postgres]`.
//!
//! Seeds `QUERYGPT_BENCH_CONVERSATIONS` (default 100,000) conversations of one user, plus a tenth as many of other
//! users, with a question and an answer each, in mixed English and Chinese, into a SQLite temp file and into a
//! fresh PostgreSQL database (`QUERYGPT_TEST_PG_URL`; skipped if unreachable, dropped afterwards). The rows go in
//! by raw multi-row inserts in large transactions; the search index is the store's own (SQLite: the migration's
//! triggers fill FTS5; PostgreSQL: the GIN indexes), so it is exactly what the store would have written. Then each
//! case runs `Store::list_conversations` (a page of 50) `RUNS` times and the table shows p50/p99 and the hits.

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use querygpt_store::{ConversationQuery, SecretBox, Store, open};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection as _, PgConnection, PgPool, QueryBuilder, SqlitePool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const RUNS: usize = 50;
const PAGE: u32 = 50;
const OTHER_USERS: usize = 5;
/// Conversations per multi-row insert: 8 parameters each (4 per message), under both backends' limits.
const BATCH: usize = 2_000;
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Appears in the question of every `RARE_EVERY`th conversation.
const RARE: &str = "zebrafish";
const RARE_EVERY: usize = 7_919;

/// (name, search, favourites only).
const CASES: [(&str, Option<&str>, bool); 6] = [
    ("no search", None, false),
    ("English term `revenue`", Some("revenue"), false),
    ("rare term `zebrafish`", Some(RARE), false),
    ("Chinese 2 chars `销售`", Some("销售"), false),
    ("Chinese 4 chars `客户分布`", Some("客户分布"), false),
    ("favourites only", None, true),
];

const METRICS: [&str; 8] =
    ["Revenue", "Orders", "Active users", "Churn", "Average basket", "Refunds", "Signups", "Inventory"];
const DIMENSIONS: [&str; 6] = ["region", "product", "channel", "month", "store", "category"];
const PERIODS: [&str; 4] = ["last quarter", "in 2024", "this year", "last month"];
const TOPICS: [&str; 8] = [
    "每个品类的销售额",
    "上个月的订单数量",
    "各地区的客户分布",
    "利润最高的产品",
    "本季度的增长率",
    "活跃用户数趋势",
    "库存周转天数",
    "退货率最高的商品",
];
const FINDINGS: [&str; 4] = ["销售额最高的是华东", "北京的订单最多", "同比增长百分之十二", "共有五个地区"];

/// One conversation as seeded.
struct Seed {
    id: Uuid,
    user_id: Uuid,
    title: String,
    question: String,
    answer: String,
    is_favorite: bool,
    at: DateTime<Utc>,
}

/// The conversations of `user_id`, numbered from `first`, deterministic for a seed.
fn seeds(user_id: Uuid, first: usize, count: usize, rng: &mut StdRng) -> Vec<Seed> {
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    (first..first + count)
        .map(|n| {
            let (title, mut question, answer) = if rng.gen_bool(0.5) {
                let metric = METRICS[rng.gen_range(0..METRICS.len())];
                let dimension = DIMENSIONS[rng.gen_range(0..DIMENSIONS.len())];
                let period = PERIODS[rng.gen_range(0..PERIODS.len())];
                let other = METRICS[rng.gen_range(0..METRICS.len())].to_lowercase();
                (
                    format!("{metric} by {dimension} {period}"),
                    format!("Show the {} per {dimension} {period}", metric.to_lowercase()),
                    format!("The {dimension} north leads with {} and {other} follows", rng.gen_range(10..10_000)),
                )
            } else {
                let topic = TOPICS[rng.gen_range(0..TOPICS.len())];
                let finding = FINDINGS[rng.gen_range(0..FINDINGS.len())];
                (topic.to_owned(), format!("查询{topic}，按月汇总"), format!("根据查询结果，{finding}。"))
            };
            if n % RARE_EVERY == 0 {
                question.push_str(&format!(" ({RARE})"));
            }
            let at = base + Span::seconds(i64::try_from(n).unwrap());
            Seed { id: Uuid::now_v7(), user_id, title, question, answer, is_favorite: n % 10 == 0, at }
        })
        .collect()
}

/// Inserts `seeds` with their two messages each in one transaction on `$pool`; `message_count` is set as
/// `save_exchange` would.
macro_rules! insert {
    ($pool:expr, $seeds:expr) => {{
        let mut tx = $pool.begin().await?;
        for batch in $seeds.chunks(BATCH) {
            let mut conversations = QueryBuilder::new(
                "INSERT INTO conversations (id, user_id, title, model, is_favorite, created_at, updated_at, \
                 message_count) ",
            );
            conversations.push_values(batch, |mut row, seed| {
                row.push_bind(seed.id).push_bind(seed.user_id).push_bind(&seed.title).push_bind("gpt-4o");
                row.push_bind(seed.is_favorite).push_bind(seed.at).push_bind(seed.at).push_bind(2_i64);
            });
            conversations.build().execute(&mut *tx).await?;
            let mut messages =
                QueryBuilder::new("INSERT INTO messages (id, conversation_id, role, content, created_at) ");
            let turns = batch.iter().flat_map(|s| [(s, "user", &s.question), (s, "assistant", &s.answer)]);
            messages.push_values(turns, |mut row, (seed, role, content)| {
                row.push_bind(Uuid::now_v7()).push_bind(seed.id).push_bind(role).push_bind(content.as_str());
                row.push_bind(seed.at);
            });
            messages.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }};
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The user whose conversations are listed, and every seeded conversation.
async fn seed_users(store: &Arc<dyn Store>, conversations: usize) -> BenchResult<(Uuid, Vec<Seed>)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut all = Vec::new();
    let mut main_user = None;
    for n in 0..=OTHER_USERS {
        let user = store
            .create_user(querygpt_store::NewUser {
                email: format!("bench{n}@example.com"),
                display_name: format!("Bench {n}"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
                initial_connection: None,
            })
            .await?;
        let count = if n == 0 { conversations } else { conversations / 10 / OTHER_USERS };
        all.extend(seeds(user.id, all.len(), count, &mut rng));
        main_user.get_or_insert(user.id);
    }
    Ok((main_user.unwrap_or_default(), all))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value below which `share` of the sorted `samples` lie.
fn percentile(samples: &[Duration], share: f64) -> Duration {
    let rank = ((samples.len() as f64 * share).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

async fn measure(backend: &str, store: &Arc<dyn Store>, user_id: Uuid) -> BenchResult<()> {
    for (name, search, favorites_only) in CASES {
        let query = ConversationQuery { limit: PAGE, offset: 0, favorites_only, search: search.map(str::to_owned) };
        // Warms the caches and the prepared statements.
        let page = store.list_conversations(user_id, &query).await?;
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            store.list_conversations(user_id, &query).await?;
            samples.push(start.elapsed());
        }
        samples.sort();
        let (p50, p99) = (millis(percentile(&samples, 0.5)), millis(percentile(&samples, 0.99)));
        println!("{backend:<9} {name:<28} {:>8} {:>6} {p50:>9.2} {p99:>9.2}", page.total, page.items.len());
    }
    Ok(())
}

fn print_header() {
    println!("{:<9} {:<28} {:>8} {:>6} {:>9} {:>9}", "backend", "case", "hits", "page", "p50 ms", "p99 ms");
}

async fn sqlite(conversations: usize) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = open(&url, SecretBox::from_base64("bench", KEY)?, true).await?;
    let (user_id, seeds) = seed_users(&store, conversations).await?;
    let started = Instant::now();
    let pool = SqlitePool::connect(&url).await?;
    insert!(pool, seeds);
    eprintln!("sqlite: seeded {} conversations in {:.1} s", seeds.len(), started.elapsed().as_secs_f64());
    measure("sqlite", &store, user_id).await
}

async fn postgres(conversations: usize) -> BenchResult<()> {
    let base =
        std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    let mut admin = match PgConnection::connect(&base).await {
        Ok(admin) => admin,
        Err(e) => {
            eprintln!("postgres: skipped, cannot connect to QUERYGPT_TEST_PG_URL: {e}");
            return Ok(());
        }
    };
    let db = format!("qgpt_bench_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await?;
    let mut url = url::Url::parse(&base)?;
    url.set_path(&db);
    let outcome = postgres_in(url.as_str(), conversations).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&mut admin).await?;
    outcome
}

async fn postgres_in(url: &str, conversations: usize) -> BenchResult<()> {
    let store = open(url, SecretBox::from_base64("bench", KEY)?, true).await?;
    let (user_id, seeds) = seed_users(&store, conversations).await?;
    let started = Instant::now();
    let pool = PgPool::connect(url).await?;
    insert!(pool, seeds);
    // What autovacuum does soon after a bulk load (statistics for the planner, the visibility map for index-only
    // counts); done now so that it does not run during the measurements.
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    eprintln!("postgres: seeded {} conversations in {:.1} s", seeds.len(), started.elapsed().as_secs_f64());
    measure("postgres", &store, user_id).await
}

fn main() -> BenchResult<()> {
    // `cargo bench` passes `--bench`; test runners that list or run every target (nextest's `--list`) must find
    // no tests here, and must not seed 100,000 conversations.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let conversations = match std::env::var("QUERYGPT_BENCH_CONVERSATIONS") {
        Ok(n) => n.parse()?,
        Err(_) => 100_000,
    };
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|b| b == backend);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        print_header();
        if wanted("sqlite") {
            sqlite(conversations).await?;
        }
        if wanted("postgres") {
            postgres(conversations).await?;
        }
        Ok(())
    })
}
