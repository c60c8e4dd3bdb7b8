//! Questions per second and the service's own latency, with a zero-latency fake LLM:
//! `cargo bench --bench pipeline [-- embedded|distributed]`.
//!
//! - embedded: `app::start(Serve)` in this process (SQLite store, in-process bus), the demo database as target.
//! - distributed: real `querygpt api` and `querygpt worker` processes, NATS and a fresh PostgreSQL store (needs the
//!   services of the test suite; `QUERYGPT_TEST_PG_URL`, `QUERYGPT_TEST_NATS_URL`), a SQLite target.
//!
//! Printed per mode: the p50/p95 latency of one question at a time, split into what the database reported
//! (`execution_time`) and the rest (the service's own share, the fake LLM's HTTP round trip included), then the
//! throughput of `CLIENTS` concurrent clients over `SECONDS`.

use querygpt::app::{self, Role};
use querygpt_common::config::Settings;
use querygpt_testkit::{FakeLlm, Reply};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The embedded mode runs in this process: measure it with the allocator the `querygpt` binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEQUENTIAL: usize = 300;
const CLIENTS: usize = 256;
const SECONDS: u64 = 10;
const SQL: &str = "SELECT c.name AS category, COUNT(*) AS products FROM products p \
                   JOIN categories c ON c.id = p.category_id GROUP BY c.name ORDER BY c.name";

/// A running service and a user who can ask it questions.
struct Target {
    base: String,
    token: String,
    http: reqwest::Client,
    children: Vec<tokio::process::Child>,
    /// The distributed mode's PostgreSQL store, dropped at the end.
    store_database: Option<String>,
    _data: tempfile::TempDir,
}

impl Target {
    async fn shut_down(mut self) {
        use sqlx::Connection;
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        if let Some(name) = self.store_database {
            let mut admin = sqlx::PgConnection::connect(&pg_url()).await.expect("PostgreSQL");
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await.expect("drop the store");
        }
    }
}

fn pg_url() -> String {
    std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

fn main() {
    // `cargo test --all-targets` and nextest's `--list` must not run the benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let modes: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let llm = FakeLlm::start().await;
        llm.set_recording(false);
        llm.set_default(Reply::text(format!("```sql\n{SQL}\n```")));
        for mode in ["embedded", "distributed"] {
            if !modes.is_empty() && !modes.iter().any(|m| m == mode) {
                continue;
            }
            let target = match mode {
                "embedded" => embedded(&llm).await,
                _ => distributed(&llm).await,
            };
            let target = Arc::new(target);
            sequential(mode, &target).await;
            concurrent(mode, &target).await;
            if let Ok(target) = Arc::try_unwrap(target) {
                target.shut_down().await;
            }
        }
    });
}

async fn embedded(llm: &FakeLlm) -> Target {
    let data = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings { data_dir: data.path().to_path_buf(), ..Settings::default() };
    settings.network.allow_loopback = true;
    // One user asks everything: the per-user limits would measure themselves.
    settings.limits.chat_per_minute = 0;
    settings.jobs.max_streams_per_user = 0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = app::start(settings, Role::Serve, Some(listener)).await.expect("start");
    let base = format!("http://{}/api/v1", running.addr.expect("address"));
    // The service runs for the rest of the process.
    std::mem::forget(running);
    signed_up(base, llm, None, Vec::new(), data).await
}

async fn distributed(llm: &FakeLlm) -> Target {
    use sqlx::Connection;
    let data = tempfile::tempdir().expect("temp dir");
    let pg = pg_url();
    let nats = std::env::var("QUERYGPT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let name = format!("qgbench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&pg).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
    let mut store = url::Url::parse(&pg).expect("URL");
    store.set_path(&format!("/{name}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let env = [
        ("QUERYGPT_LISTEN", format!("127.0.0.1:{port}")),
        ("QUERYGPT_DATA_DIR", data.path().display().to_string()),
        ("QUERYGPT_DATABASE_URL", store.to_string()),
        ("QUERYGPT_NATS_URL", nats),
        ("QUERYGPT_SUBJECT_PREFIX", format!("qgbench{}", uuid::Uuid::new_v4().simple())),
        ("QUERYGPT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
        ("QUERYGPT_AUTH__JWT_SECRET", format!("bench-{}", uuid::Uuid::new_v4())),
        ("QUERYGPT_NETWORK__ALLOW_LOOPBACK", "true".into()),
        ("QUERYGPT_LOG", "warn".into()),
        ("QUERYGPT_LIMITS__CHAT_PER_MINUTE", "0".into()),
        ("QUERYGPT_JOBS__MAX_STREAMS_PER_USER", "0".into()),
    ];
    let command = |role: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_querygpt"));
        command.arg(role).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).kill_on_drop(true);
        command
    };
    assert!(command("migrate").status().await.expect("migrate").success());
    let children = vec![command("api").spawn().expect("api"), command("worker").spawn().expect("worker")];
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connection = data.path().join("bench.db");
    querygpt_targets::demo::ensure_demo_database(&connection).await.expect("demo database as target");
    let connection = connection.display().to_string();
    let mut target = signed_up(base, llm, Some(connection), children, data).await;
    target.store_database = Some(name);
    target
}

/// Registers a user, adds the fake model and (if given) a SQLite connection made the default.
async fn signed_up(
    base: String,
    llm: &FakeLlm,
    sqlite: Option<String>,
    children: Vec<tokio::process::Child>,
    data: tempfile::TempDir,
) -> Target {
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("client");
    let body = json!({"email": "bench@example.com", "password": "correct horse battery", "display_name": "b"});
    let registered: Value =
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().json().await.unwrap();
    let token = registered["data"]["access_token"].as_str().expect("token").to_string();
    let model = json!({"name": "fake", "provider": "openai", "model_id": "gpt-4o", "base_url": llm.openai_base_url(), "is_default": true});
    http.post(format!("{base}/models")).bearer_auth(&token).json(&model).send().await.unwrap();
    if let Some(path) = sqlite {
        let connection = json!({"name": "bench", "driver": "sqlite", "database": path, "is_default": true});
        http.post(format!("{base}/connections")).bearer_auth(&token).json(&connection).send().await.unwrap();
    }
    Target { base, token, http, children, store_database: None, _data: data }
}

/// Asks one question; returns (total time, database time) if it was answered.
async fn ask(target: &Target) -> Option<(Duration, Duration)> {
    let started = Instant::now();
    let url =
        url::Url::parse_with_params(&format!("{}/chat/stream", target.base), [("query", "products per category")]);
    let response = target.http.get(url.ok()?).bearer_auth(&target.token).send().await.ok()?;
    let body = response.text().await.ok()?;
    let elapsed = started.elapsed();
    if !body.contains("event: done") {
        return None;
    }
    let execution = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find_map(|event| event["execution_time"].as_f64())?;
    Some((elapsed, Duration::from_secs_f64(execution)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn sequential(mode: &str, target: &Target) {
    for _ in 0..20 {
        ask(target).await.expect("warm-up question answered");
    }
    let mut totals = Vec::with_capacity(SEQUENTIAL);
    let mut own = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let (total, database) = ask(target).await.expect("question answered");
        totals.push(total);
        own.push(total.saturating_sub(database));
    }
    totals.sort_unstable();
    own.sort_unstable();
    println!(
        "{mode:<11} one at a time ({SEQUENTIAL} questions): total p50 {:.2} ms, p95 {:.2} ms; \
         service share (total - execution_time) p50 {:.2} ms, p95 {:.2} ms",
        ms(percentile(&totals, 0.5)),
        ms(percentile(&totals, 0.95)),
        ms(percentile(&own, 0.5)),
        ms(percentile(&own, 0.95)),
    );
}

async fn concurrent(mode: &str, target: &Arc<Target>) {
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (target, answered, failed) = (Arc::clone(target), Arc::clone(&answered), Arc::clone(&failed));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match ask(&target).await {
                        Some(_) => answered.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let started = Instant::now();
    let busy_before = machine_busy_secs();
    for client in clients {
        client.await.expect("client task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let busy = machine_busy_secs() - busy_before;
    let answered = answered.load(Ordering::Relaxed);
    println!(
        "{mode:<11} {CLIENTS} concurrent clients for {SECONDS} s: {answered} answered ({:.0} questions/s), {} failed; \
         machine CPU {:.2} ms per question (every process, the load generator and the fake LLM included)",
        answered as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        busy * 1e3 / answered.max(1) as f64,
    );
}

/// CPU seconds the whole machine has spent busy since boot (`/proc/stat`, in USER_HZ = 100 ticks per second):
/// every process's share of a phase, whichever process it is (API node, worker, NATS, PostgreSQL).
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: f64 = ticks.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).take(6).map(|(_, t)| t).sum();
    busy / 100.0
}
