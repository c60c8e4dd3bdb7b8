//! The chaos suite: real processes (a NATS server of its own, a fresh PostgreSQL store, two `querygpt api`, two
//! `querygpt worker`, the fake LLM with 300 ms per answer), questions from 30 clients at once, and a fault:
//! `cargo bench --bench chaos [-- SCENARIO...] [--questions N]`.
//!
//! Scenarios: `workers` (kill -9 a worker every 2 s, start a new one), `nats` (NATS stopped with SIGTERM and started
//! again on its store, twice), `api` (an API node killed with SIGKILL and started again; its clients resume on the
//! other node with `Last-Event-ID`), `postgres` (the store's own PostgreSQL stopped and started again, twice),
//! `exhausted` (`jobs.max_deliver` 1 and workers killed every second: some jobs run out of deliveries).
//!
//! For every question it checks from outside that it ended with exactly one `done` (or one `error`), and through
//! the API that the conversation holds exactly one answer (or none after an error). Printed per scenario: sent,
//! done, errors, lost (no end within 60 s), duplicated (more than one answer stored), told-error-but-stored, and the
//! slowest question.

#[path = "../tests/it/support/databases.rs"]
#[allow(dead_code)]
mod databases;

use futures::StreamExt;
use querygpt_testkit::{FakeLlm, Reply};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

const CLIENTS: usize = 30;
const LLM_DELAY: Duration = Duration::from_millis(300);
/// A question not ended within this is lost.
const PATIENCE: Duration = Duration::from_secs(60);
const SQL: &str = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region";

/// One deployment under test.
struct Deployment {
    env: Vec<(String, String)>,
    /// The store's own server, in the `postgres` scenario.
    postgres: Option<Mutex<databases::OwnPostgres>>,
    apis: Mutex<Vec<(String, Child)>>,
    workers: Mutex<Vec<Child>>,
    nats: Mutex<databases::OwnNats>,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Deployment {
    async fn start(max_deliver: u32, own_postgres: bool) -> Deployment {
        let data = tempfile::tempdir().expect("temp dir");
        let nats = databases::OwnNats::start().await;
        let postgres = match own_postgres {
            true => Some(databases::OwnPostgres::start().await),
            false => None,
        };
        let store = match &postgres {
            Some(postgres) => postgres.url(),
            None => databases::fresh_postgres_database().await,
        };
        let env: Vec<(String, String)> = [
            ("QUERYGPT_DATA_DIR", data.path().display().to_string()),
            ("QUERYGPT_DATABASE_URL", store),
            ("QUERYGPT_NATS_URL", nats.url()),
            ("QUERYGPT_REDIS_URL", databases::redis_url()),
            ("QUERYGPT_SUBJECT_PREFIX", format!("qgchaos{}", uuid::Uuid::new_v4().simple())),
            ("QUERYGPT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
            ("QUERYGPT_AUTH__JWT_SECRET", format!("chaos-{}", uuid::Uuid::new_v4())),
            ("QUERYGPT_JOBS__ACK_WAIT_SECS", "3".into()),
            ("QUERYGPT_JOBS__MAX_DELIVER", max_deliver.to_string()),
            ("QUERYGPT_NETWORK__ALLOW_LOOPBACK", "true".into()),
            ("QUERYGPT_LIMITS__CHAT_PER_MINUTE", "0".into()),
            ("QUERYGPT_JOBS__MAX_STREAMS_PER_USER", "0".into()),
            ("QUERYGPT_LOG", "error".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let deployment = Deployment {
            env,
            postgres: postgres.map(Mutex::new),
            apis: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
            nats: Mutex::new(nats),
            http: reqwest::Client::builder().timeout(PATIENCE).build().expect("client"),
            _data: data,
        };
        let migrated = deployment.command("migrate").status().await.expect("migrate");
        assert!(migrated.success());
        for _ in 0..2 {
            let base = format!("http://127.0.0.1:{}/api/v1", free_port());
            let api = deployment.spawn_api(&base).await;
            deployment.apis.lock().await.push((base, api));
            deployment.spawn_worker().await;
        }
        deployment
    }

    fn command(&self, role: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_querygpt"));
        command.arg(role).envs(self.env.iter().cloned()).kill_on_drop(true);
        command
    }

    async fn spawn_api(&self, base: &str) -> Child {
        let listen = base.trim_start_matches("http://").trim_end_matches("/api/v1").to_owned();
        let child = self.command("api").env("QUERYGPT_LISTEN", listen).spawn().expect("spawn api");
        for _ in 0..400 {
            if self.http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the API node at {base} did not start");
    }

    async fn spawn_worker(&self) {
        let worker = self.command("worker").spawn().expect("spawn worker");
        self.workers.lock().await.push(worker);
        // A worker listens within a second of starting (it connects, then subscribes).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    async fn kill_a_worker_and_replace_it(&self) {
        let mut workers = self.workers.lock().await;
        if !workers.is_empty() {
            let mut worker = workers.remove(0);
            let _ = worker.start_kill();
            let _ = worker.wait().await;
        }
        drop(workers);
        self.spawn_worker().await;
    }

    async fn bases(&self) -> Vec<String> {
        self.apis.lock().await.iter().map(|(base, _)| base.clone()).collect()
    }

    async fn post(&self, base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request").json().await.expect("JSON")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// How one question ended.
#[derive(Debug, Default)]
struct Outcome {
    done: bool,
    error: Option<String>,
    conversation_id: Option<String>,
    took: Duration,
}

/// Asks one question at `bases[first]` and follows it to its end, resuming on the other node whenever the stream
/// breaks.
async fn ask(
    http: &reqwest::Client,
    bases: &[String],
    first: usize,
    token: &str,
    connection: &str,
    n: usize,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut last_id: Option<String> = None;
    let mut node = first;
    while started.elapsed() < PATIENCE {
        let base = &bases[node % bases.len()];
        let query = format!("sales per region {n}");
        let url = url::Url::parse_with_params(
            &format!("{base}/chat/stream"),
            [("query", query.as_str()), ("connection_id", connection)],
        )
        .expect("chat URL");
        let mut request = http.get(url).bearer_auth(token);
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        if let Ok(response) = request.send().await
            && response.status().is_success()
        {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            'read: while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        frame.lines().find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
                    };
                    if let Some(id) = field("id:") {
                        last_id = Some(id);
                    }
                    let data: Value = field("data:").and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default();
                    if let Some(id) = data["conversation_id"].as_str() {
                        outcome.conversation_id = Some(id.to_owned());
                    }
                    match field("event:").as_deref() {
                        Some("done") => {
                            outcome.done = true;
                            break 'read;
                        }
                        Some("error") => {
                            outcome.error = Some(data["code"].as_str().unwrap_or("?").to_owned());
                            break 'read;
                        }
                        _ => {}
                    }
                }
            }
            if outcome.done || outcome.error.is_some() {
                outcome.took = started.elapsed();
                return outcome;
            }
        }
        // Broken before its end (or refused while a node is down): resume on the other node, or ask again there
        // when the question was never accepted.
        node += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    outcome.took = started.elapsed();
    outcome
}

/// The tally of one scenario.
#[derive(Debug, Default)]
struct Tally {
    /// Faults injected: processes killed, servers restarted.
    faults: usize,
    sent: usize,
    done: usize,
    errors: usize,
    lost: usize,
    duplicated: usize,
    told_error_but_stored: usize,
    slowest: Duration,
}

async fn run(scenario: &str, llm: &FakeLlm, questions: usize) -> Tally {
    let deployment =
        Arc::new(Deployment::start(if scenario == "exhausted" { 1 } else { 5 }, scenario == "postgres").await);
    let bases = deployment.bases().await;
    let email = format!("chaos-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = deployment
        .post(&bases[0], "/auth/register", None, json!({"email": email, "password": "correct horse battery"}))
        .await;
    let token = registered["data"]["access_token"].as_str().expect("token").to_owned();
    let model = json!({"name": "fake", "provider": "openai", "model_id": "gpt-4o", "base_url": llm.openai_base_url(),
        "api_key": "sk-chaos", "is_default": true});
    deployment.post(&bases[0], "/models", Some(&token), model).await;
    let path = databases::sqlite_target(deployment._data.path()).await;
    let created = deployment
        .post(&bases[0], "/connections", Some(&token), json!({"name": "sales", "driver": "sqlite", "database": path}))
        .await;
    let connection = created["data"]["id"].as_str().expect("connection id").to_owned();

    let next = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, bases, token, connection) =
                (deployment.http.clone(), bases.clone(), token.clone(), connection.clone());
            let (next, finished) = (next.clone(), finished.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= questions {
                        return outcomes;
                    }
                    outcomes.push(ask(&http, &bases, client + n, &token, &connection, n).await);
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let chaos = {
        let (deployment, finished, scenario) = (deployment.clone(), finished.clone(), scenario.to_owned());
        tokio::spawn(async move {
            let mut restarts = 0;
            while finished.load(Ordering::Relaxed) < questions {
                match scenario.as_str() {
                    "workers" => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        deployment.kill_a_worker_and_replace_it().await;
                        restarts += 1;
                    }
                    "exhausted" => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        deployment.kill_a_worker_and_replace_it().await;
                        restarts += 1;
                    }
                    "nats" if restarts < 2 && finished.load(Ordering::Relaxed) >= questions * (restarts + 1) / 3 => {
                        let mut nats = deployment.nats.lock().await;
                        nats.stop().await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        nats.restart().await;
                        restarts += 1;
                    }
                    "postgres"
                        if restarts < 2 && finished.load(Ordering::Relaxed) >= questions * (restarts + 1) / 3 =>
                    {
                        if let Some(postgres) = &deployment.postgres {
                            let mut postgres = postgres.lock().await;
                            postgres.stop().await;
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            postgres.restart().await;
                        }
                        restarts += 1;
                    }
                    "api" if restarts < 1 && finished.load(Ordering::Relaxed) >= questions / 3 => {
                        let mut apis = deployment.apis.lock().await;
                        let (base, mut api) = apis.remove(0);
                        let _ = api.start_kill();
                        let _ = api.wait().await;
                        drop(apis);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        let api = deployment.spawn_api(&base).await;
                        deployment.apis.lock().await.insert(0, (base, api));
                        restarts += 1;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            restarts
        })
    };

    let mut tally = Tally { sent: questions, ..Tally::default() };
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("client task"));
    }
    // Every question has ended, so the fault loop ends too.
    tally.faults = chaos.await.expect("fault task");
    for outcome in &outcomes {
        tally.slowest = tally.slowest.max(outcome.took);
        let stored = match &outcome.conversation_id {
            Some(id) => {
                let base = &bases[1];
                let response = deployment
                    .http
                    .get(format!("{base}/conversations/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("conversation");
                let body: Value = response.json().await.unwrap_or_default();
                body["data"]["messages"].as_array().map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count())
            }
            None => 0,
        };
        match (outcome.done, &outcome.error) {
            (true, _) => {
                tally.done += 1;
                if stored > 1 {
                    tally.duplicated += 1;
                }
            }
            (false, Some(_)) => {
                tally.errors += 1;
                if stored > 0 {
                    tally.told_error_but_stored += 1;
                }
            }
            (false, None) => tally.lost += 1,
        }
    }
    // Stops every process of the deployment.
    drop(deployment);
    tally
}

fn main() {
    // `cargo test --all-targets` must not run the suite.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let questions = args
        .iter()
        .position(|a| a == "--questions")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let chosen: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| !a.starts_with("--") && a.parse::<usize>().is_err()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let llm = FakeLlm::start().await;
        llm.set_recording(false);
        llm.set_default(Reply::delayed(
            LLM_DELAY,
            Reply::text(json!({"sql": SQL, "explanation": "per region"}).to_string()),
        ));
        println!("| scenario | faults | sent | done | errors | lost | duplicated | told error but stored | slowest |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for scenario in ["workers", "nats", "api", "postgres", "exhausted"] {
            if !chosen.is_empty() && !chosen.contains(&scenario) {
                continue;
            }
            let t = run(scenario, &llm, questions).await;
            println!(
                "| {scenario} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
                t.faults,
                t.sent,
                t.done,
                t.errors,
                t.lost,
                t.duplicated,
                t.told_error_but_stored,
                t.slowest.as_secs_f64()
            );
        }
    });
}
