//! Scale and memory, with real processes: `cargo bench --bench scale [-- SCENARIO...] [--streams N]`.
//!
//! - `memory`: RSS of `querygpt serve` idle and after 100 registrations (one argon2id hash each).
//! - `streams`: one `querygpt api` and one `querygpt worker` (NATS, a fresh PostgreSQL store), the fake LLM in a
//!   process of its own answering after 20 s, and N (default 10,000) question streams opened at once by a
//!   load-generator process. Printed: the time until all were open, time to the response head and to the first
//!   event (p50, p99), the api's and the worker's RSS with every stream open and every LLM call in flight, bytes per
//!   stream and per in-flight job, the kernel's listen overflows, and how many were answered.
//! - `scaling`: a 500 ms LLM and `worker.concurrency` 32: questions/s of 128 clients with one worker, then two; and
//!   N/2 streams held by one API node, then N/2 on each of two.
//!
//! The fake LLM and the load generator are this same binary started again with `--fake-llm` or `--open-streams`:
//! each process has its own open-file limit, and 10,000 streams need 10,000 sockets on every side.

#[path = "../tests/it/support/databases.rs"]
#[allow(dead_code)]
mod databases;

use futures::StreamExt;
use querygpt_testkit::{FakeLlm, Reply};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const SQL: &str = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region";
const STREAMS: usize = 10_000;
const SLOW_LLM: Duration = Duration::from_secs(20);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("--fake-llm") => return runtime.block_on(fake_llm(Duration::from_millis(args[2].parse().expect("ms")))),
        Some("--open-streams") => {
            return runtime.block_on(open_streams(&args[2], &args[3], args[4].parse().expect("count")));
        }
        _ => {}
    }
    // `cargo test --all-targets` and nextest's `--list` must not run the benchmark.
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let streams = args.iter().position(|a| a == "--streams").map_or(STREAMS, |i| args[i + 1].parse().expect("N"));
    let picked: Vec<&str> =
        args[1..].iter().map(String::as_str).filter(|a| ["memory", "streams", "scaling"].contains(a)).collect();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    runtime.block_on(async {
        for scenario in ["memory", "streams", "scaling"] {
            if !picked.is_empty() && !picked.contains(&scenario) {
                continue;
            }
            match scenario {
                "memory" => memory().await,
                "streams" => streams_on_one_node(streams).await,
                _ => scaling(streams / 2).await,
            }
        }
    });
}

// ---- the helper processes ----

/// The fake LLM, answering every request with `SQL` after `delay`; prints its base URL, then serves until killed.
async fn fake_llm(delay: Duration) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let llm = FakeLlm::start().await;
    llm.set_recording(false);
    llm.set_default(Reply::delayed(delay, Reply::text(format!("```sql\n{SQL}\n```"))));
    println!("{}", llm.openai_base_url());
    std::future::pending::<()>().await;
}

/// Opens `count` question streams at `base` at once and follows each to its end. Prints `open` when every stream
/// has its first event, then one JSON line of figures.
async fn open_streams(base: &str, token: &str, count: usize) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // Long enough for the last of 10,000 answers: they all leave the LLM at once and queue for the worker's
    // execution and the store after it.
    let http = reqwest::Client::builder().timeout(SLOW_LLM * 8).build().expect("client");
    let started = Instant::now();
    // Streams that have their first event, or have failed: `open` is printed when every stream is one or the other.
    let settled = Arc::new(AtomicU64::new(0));
    let failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let (http, settled, failure) = (http.clone(), settled.clone(), failure.clone());
            let url = url::Url::parse_with_params(&format!("{base}/chat/stream"), [("query", format!("sales {n}"))])
                .expect("url");
            let token = token.to_owned();
            tokio::spawn(async move {
                let asked = Instant::now();
                let failed = |why: String| {
                    settled.fetch_add(1, Ordering::Relaxed);
                    failure.lock().expect("lock").get_or_insert(why);
                };
                let response = match http.get(url).bearer_auth(token).send().await {
                    Ok(response) if response.status().is_success() => response,
                    Ok(response) => {
                        let status = response.status();
                        failed(format!("{status}: {}", response.text().await.unwrap_or_default()));
                        return None;
                    }
                    Err(e) => {
                        failed(format!("{e:?}"));
                        return None;
                    }
                };
                let head = asked.elapsed();
                let mut body = response.bytes_stream();
                let (mut text, mut first) = (String::new(), None);
                while let Some(Ok(chunk)) = body.next().await {
                    text.push_str(&String::from_utf8_lossy(&chunk));
                    if first.is_none() && text.contains("event: progress") {
                        first = Some(asked.elapsed());
                        settled.fetch_add(1, Ordering::Relaxed);
                    }
                    if text.contains("event: done") || text.contains("event: error") {
                        break;
                    }
                }
                if first.is_none() {
                    failed(format!("no progress event in: {text}"));
                } else if !text.contains("event: done") {
                    failure.lock().expect("lock").get_or_insert(format!("not answered: {text}"));
                }
                Some((head, first?, text.contains("event: done")))
            })
        })
        .collect();
    let watcher = {
        let settled = settled.clone();
        tokio::spawn(async move {
            while (settled.load(Ordering::Relaxed) as usize) < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            println!("open {:.2}", started.elapsed().as_secs_f64());
        })
    };
    let (mut heads, mut firsts, mut done) = (Vec::new(), Vec::new(), 0);
    for task in tasks {
        if let Ok(Some((head, first, answered))) = task.await {
            heads.push(head);
            firsts.push(first);
            done += usize::from(answered);
        }
    }
    watcher.abort();
    heads.sort_unstable();
    firsts.sort_unstable();
    let figures = json!({
        "streams": count, "opened": heads.len(), "answered": done,
        "head_p50_ms": ms(percentile(&heads, 0.5)), "head_p99_ms": ms(percentile(&heads, 0.99)),
        "first_p50_ms": ms(percentile(&firsts, 0.5)), "first_p99_ms": ms(percentile(&firsts, 0.99)),
        "first_failure": failure.lock().expect("lock").take(),
    });
    println!("{figures}");
}

// ---- a deployment of real processes ----

struct Deployment {
    env: Vec<(String, String)>,
    apis: Vec<(String, Child)>,
    workers: Vec<Child>,
    fake_llm: Child,
    llm_url: String,
    http: reqwest::Client,
    data: tempfile::TempDir,
}

impl Deployment {
    /// NATS and PostgreSQL of the test suite, the fake LLM answering after `llm_delay`, `extra` settings.
    async fn start(llm_delay: Duration, extra: &[(&str, String)]) -> Deployment {
        let data = tempfile::tempdir().expect("temp dir");
        let mut fake_llm = Command::new(std::env::current_exe().expect("this binary"))
            .args(["--fake-llm", &llm_delay.as_millis().to_string()])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("fake LLM");
        let llm_url = next_line(fake_llm.stdout.as_mut().expect("stdout")).await;
        let mut env: Vec<(String, String)> = [
            ("QUERYGPT_DATA_DIR", data.path().display().to_string()),
            ("QUERYGPT_DATABASE_URL", databases::fresh_postgres_database().await),
            ("QUERYGPT_NATS_URL", databases::nats_url()),
            ("QUERYGPT_REDIS_URL", databases::redis_url()),
            ("QUERYGPT_SUBJECT_PREFIX", format!("qgscale{}", uuid::Uuid::new_v4().simple())),
            ("QUERYGPT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
            ("QUERYGPT_AUTH__JWT_SECRET", format!("scale-{}", uuid::Uuid::new_v4())),
            ("QUERYGPT_NETWORK__ALLOW_LOOPBACK", "true".into()),
            ("QUERYGPT_LIMITS__CHAT_PER_MINUTE", "0".into()),
            ("QUERYGPT_JOBS__MAX_STREAMS_PER_USER", "0".into()),
            ("QUERYGPT_JOBS__STREAM_TIMEOUT_SECS", "300".into()),
            ("QUERYGPT_LOG", "error".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let mut deployment = Deployment { env, apis: Vec::new(), workers: Vec::new(), fake_llm, llm_url, http, data };
        assert!(deployment.command("migrate").status().await.expect("migrate").success());
        deployment.add_api().await;
        deployment.add_worker().await;
        deployment
    }

    fn command(&self, role: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_querygpt"));
        command.arg(role).envs(self.env.iter().cloned()).kill_on_drop(true);
        command
    }

    async fn add_api(&mut self) -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let base = format!("http://127.0.0.1:{port}/api/v1");
        let child = self.command("api").env("QUERYGPT_LISTEN", format!("127.0.0.1:{port}")).spawn().expect("api");
        for _ in 0..400 {
            if self.http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.apis.push((base.clone(), child));
        base
    }

    async fn add_worker(&mut self) {
        self.workers.push(self.command("worker").spawn().expect("worker"));
        tokio::time::sleep(Duration::from_millis(800)).await;
    }

    /// Registers a user with the fake model and a SQLite target as defaults; returns its access token.
    async fn user(&self) -> String {
        let base = &self.apis[0].0;
        let body =
            json!({"email": format!("{}@example.com", uuid::Uuid::new_v4()), "password": "correct horse battery"});
        let registered: Value = self.post(base, "/auth/register", None, body).await;
        let token = registered["data"]["access_token"].as_str().expect("token").to_owned();
        let model = json!({"name": "fake", "provider": "openai", "model_id": "gpt-4o", "base_url": self.llm_url, "is_default": true});
        self.post(base, "/models", Some(&token), model).await;
        let target = databases::sqlite_target(self.data.path()).await;
        let connection = json!({"name": "sales", "driver": "sqlite", "database": target, "is_default": true});
        self.post(base, "/connections", Some(&token), connection).await;
        token
    }

    async fn post(&self, base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request").json().await.expect("JSON")
    }

    async fn shut_down(mut self) {
        for (_, child) in &mut self.apis {
            let _ = child.kill().await;
        }
        for child in self.workers.iter_mut().chain([&mut self.fake_llm]) {
            let _ = child.kill().await;
        }
    }
}

async fn next_line(out: &mut ChildStdout) -> String {
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).await.expect("a line from the helper");
    line.trim().to_owned()
}

/// A load generator opening `count` streams at `base`; its stdout gives `open <s>` then the figures.
fn load_generator(base: &str, token: &str, count: usize) -> Child {
    Command::new(std::env::current_exe().expect("this binary"))
        .args(["--open-streams", base, token, &count.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("load generator")
}

/// Resident set size of process `pid`, in MB.
fn rss_mb(pid: Option<u32>) -> f64 {
    let status = pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok()).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The kernel's count of connections dropped because a listen queue was full (all sockets of the machine).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

// ---- the scenarios ----

async fn memory() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_querygpt"))
        .arg("serve")
        .envs([
            ("QUERYGPT_DATA_DIR", data.path().display().to_string()),
            ("QUERYGPT_LISTEN", format!("127.0.0.1:{port}")),
            ("QUERYGPT_LIMITS__LOGIN_PER_MINUTE", "0".into()),
            ("QUERYGPT_LOG", "error".into()),
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("serve");
    let http = reqwest::Client::new();
    while !http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = rss_mb(serve.id());
    for n in 0..100 {
        let body = json!({"email": format!("user{n}@example.com"), "password": "correct horse battery"});
        let response = http.post(format!("{base}/auth/register")).json(&body).send().await.expect("register");
        assert!(response.status().is_success(), "registration {n}: {}", response.status());
    }
    println!("memory      serve: RSS idle {idle:.0} MB, after 100 registrations {:.0} MB", rss_mb(serve.id()));
    let _ = serve.kill().await;
}

/// What one stream-holding run measured.
struct Held {
    figures: Value,
    open_secs: f64,
    api_mb: Vec<f64>,
    worker_mb: f64,
}

/// Opens `per_node` streams on every API node at once and samples the processes' RSS while all are open.
async fn hold_streams(deployment: &Deployment, token: &str, per_node: usize) -> Held {
    let mut generators: Vec<Child> =
        deployment.apis.iter().map(|(base, _)| load_generator(base, token, per_node)).collect();
    let mut outputs: Vec<_> =
        generators.iter_mut().map(|g| BufReader::new(g.stdout.take().expect("stdout")).lines()).collect();
    let mut open_secs: f64 = 0.0;
    for output in &mut outputs {
        let line = output.next_line().await.expect("read").expect("open line");
        open_secs = open_secs.max(line.trim_start_matches("open ").parse().unwrap_or(f64::NAN));
    }
    // Every stream is open and every LLM call waits: the peak of both processes.
    let api_mb = deployment.apis.iter().map(|(_, child)| rss_mb(child.id())).collect();
    let worker_mb = deployment.workers.iter().map(|w| rss_mb(w.id())).fold(0.0, f64::max);
    let mut figures = Vec::new();
    for output in &mut outputs {
        let line = output.next_line().await.expect("read").expect("figures line");
        figures.push(serde_json::from_str::<Value>(&line).expect("figures"));
    }
    let total = |key: &str| figures.iter().map(|f| f[key].as_u64().unwrap_or(0)).sum::<u64>();
    let (answered, opened) = (total("answered"), total("opened"));
    let mut merged = figures.swap_remove(0);
    merged["answered"] = answered.into();
    merged["opened"] = opened.into();
    Held { figures: merged, open_secs, api_mb, worker_mb }
}

async fn streams_on_one_node(count: usize) {
    let extra = [
        ("QUERYGPT_WORKER__CONCURRENCY", (count + 64).to_string()),
        ("QUERYGPT_WORKER__MAX_LLM_CALLS_PER_MODEL", "0".into()),
        ("QUERYGPT_WORKER__LLM_TIMEOUT_SECS", "120".into()),
    ];
    let deployment = Deployment::start(SLOW_LLM, &extra).await;
    let token = deployment.user().await;
    let (api_before, worker_before) = (rss_mb(deployment.apis[0].1.id()), rss_mb(deployment.workers[0].id()));
    let overflows = listen_overflows();
    let held = hold_streams(&deployment, &token, count).await;
    let overflows = listen_overflows() - overflows;
    let f = &held.figures;
    println!(
        "streams     {count} at once on one API node (LLM answers after {} s): all open (first event) in {:.2} s; \
         response head p50 {} ms, p99 {} ms; first event p50 {} ms, p99 {} ms; {} of {count} answered; \
         listen overflows {overflows}",
        SLOW_LLM.as_secs(),
        held.open_secs,
        f["head_p50_ms"],
        f["head_p99_ms"],
        f["first_p50_ms"],
        f["first_p99_ms"],
        f["answered"],
    );
    let per = |after: f64, before: f64| (after - before) * 1024.0 * 1024.0 / count as f64;
    println!(
        "streams     RSS with all open: api {:.0} MB (idle {api_before:.0} MB, {:.0} bytes per stream), worker {:.0} MB \
         with {count} LLM calls in flight (idle {worker_before:.0} MB, {:.0} bytes per job)",
        held.api_mb[0],
        per(held.api_mb[0], api_before),
        held.worker_mb,
        per(held.worker_mb, worker_before),
    );
    if let Some(failure) = f["first_failure"].as_str() {
        println!("streams     the first stream that failed: {}", failure.replace('\n', "\\n"));
    }
    deployment.shut_down().await;
}

/// Questions per second of `clients` closed-loop clients over `seconds`.
async fn throughput(base: &str, token: &str, clients: usize, seconds: u64) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client");
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            let (http, answered, token) = (http.clone(), answered.clone(), token.to_owned());
            let url = url::Url::parse_with_params(&format!("{base}/chat/stream"), [("query", format!("q {n}"))])
                .expect("url");
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let Ok(response) = http.get(url.clone()).bearer_auth(&token).send().await else { continue };
                    if response.text().await.is_ok_and(|body| body.contains("event: done")) {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    answered.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn scaling(per_node: usize) {
    const CONCURRENCY: usize = 32;
    const CLIENTS: usize = 128;
    let extra = [("QUERYGPT_WORKER__CONCURRENCY", CONCURRENCY.to_string())];
    let mut deployment = Deployment::start(Duration::from_millis(500), &extra).await;
    let token = deployment.user().await;
    let base = deployment.apis[0].0.clone();
    let one = throughput(&base, &token, CLIENTS, 10).await;
    deployment.add_worker().await;
    let two = throughput(&base, &token, CLIENTS, 10).await;
    println!(
        "scaling     500 ms LLM, worker.concurrency {CONCURRENCY}, {CLIENTS} clients: 1 worker {one:.1} questions/s, \
         2 workers {two:.1} questions/s ({:.2}x)",
        two / one
    );
    deployment.shut_down().await;

    let extra = [
        ("QUERYGPT_WORKER__CONCURRENCY", (2 * per_node + 64).to_string()),
        ("QUERYGPT_WORKER__MAX_LLM_CALLS_PER_MODEL", "0".into()),
    ];
    let mut deployment = Deployment::start(SLOW_LLM, &extra).await;
    let token = deployment.user().await;
    let one = hold_streams(&deployment, &token, per_node).await;
    deployment.add_api().await;
    let two = hold_streams(&deployment, &token, per_node).await;
    println!(
        "scaling     {per_node} streams per API node: 1 node held {} (answered {}, RSS {:.0} MB); 2 nodes held {} \
         (answered {}, RSS {:.0} and {:.0} MB)",
        one.figures["opened"],
        one.figures["answered"],
        one.api_mb[0],
        two.figures["opened"],
        two.figures["answered"],
        two.api_mb[0],
        two.api_mb[1],
    );
    deployment.shut_down().await;
}
