//! Test support: `TestApp` starts the whole service (embedded in-process, or distributed as real `api` and
//! `worker` processes over NATS and PostgreSQL) next to a fake LLM, and talks to it over HTTP.

pub mod databases;
pub mod sse;

use querygpt::app::{self, Role, RunningApp};
use querygpt_common::config::Settings;
use querygpt_testkit::FakeLlm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sse::SseStream;
use std::time::Duration;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// How the service under test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One process (this test's), SQLite store, in-process bus.
    Embedded,
    /// A real `querygpt api` and `querygpt worker` processes, NATS, a fresh PostgreSQL store.
    Distributed,
}

/// The service under test.
pub struct TestApp {
    pub mode: Mode,
    /// `http://127.0.0.1:PORT/api/v1`
    pub base: String,
    pub http: reqwest::Client,
    pub llm: FakeLlm,
    pub data_dir: tempfile::TempDir,
    embedded: Option<RunningApp>,
    env: Vec<(String, String)>,
    /// The API processes: the first serves `base`, more come from [`TestApp::spawn_api`].
    apis: Vec<Child>,
    workers: Vec<Child>,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client")
}

impl TestApp {
    pub async fn start(mode: Mode) -> TestApp {
        match mode {
            Mode::Embedded => Self::embedded().await,
            Mode::Distributed => Self::distributed().await,
        }
    }

    /// The embedded mode in this process, with a temp data dir and the demo database.
    pub async fn embedded() -> TestApp {
        Self::embedded_with(|_| {}).await
    }

    /// [`TestApp::embedded`] with settings changed by `configure` (e.g. a short TTL).
    pub async fn embedded_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let llm = FakeLlm::start().await;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings { data_dir: data_dir.path().to_path_buf(), ..Settings::default() };
        // The fake LLM and the test databases live on this machine.
        settings.network.allow_loopback = true;
        settings.jobs.stream_timeout_secs = 60;
        settings.jobs.resume_grace_secs = 1;
        settings.worker.llm_timeout_secs = 20;
        settings.worker.llm_max_retries = 2;
        configure(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = app::start(settings, Role::Serve, Some(listener)).await.expect("embedded app starts");
        let base = format!("http://{}/api/v1", running.addr.expect("serves HTTP"));
        TestApp {
            mode: Mode::Embedded,
            base,
            http: http_client(),
            llm,
            data_dir,
            embedded: Some(running),
            env: Vec::new(),
            apis: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// The distributed mode: migrate, one API process and one worker process, against NATS and a fresh
    /// PostgreSQL database. Jobs are redelivered after 3 s of silence.
    pub async fn distributed() -> TestApp {
        Self::distributed_with(&[]).await
    }

    /// [`TestApp::distributed`] with more environment variables for every process (they win over the defaults),
    /// e.g. `("QUERYGPT_LIMITS__CHAT_PER_MINUTE", "3")`.
    pub async fn distributed_with(extra_env: &[(&str, &str)]) -> TestApp {
        let llm = FakeLlm::start().await;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let store_url = databases::fresh_postgres_database().await;
        let env = vec![
            ("QUERYGPT_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("QUERYGPT_DATABASE_URL".into(), store_url),
            ("QUERYGPT_NATS_URL".into(), databases::nats_url()),
            ("QUERYGPT_REDIS_URL".into(), databases::redis_url()),
            ("QUERYGPT_SUBJECT_PREFIX".into(), format!("qgt{}", Uuid::new_v4().simple())),
            ("QUERYGPT_SECRET_KEY".into(), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
            ("QUERYGPT_AUTH__JWT_SECRET".into(), format!("jwt-{}", Uuid::new_v4())),
            ("QUERYGPT_JOBS__ACK_WAIT_SECS".into(), "3".into()),
            ("QUERYGPT_NETWORK__ALLOW_LOOPBACK".into(), "true".into()),
            ("QUERYGPT_JOBS__STREAM_TIMEOUT_SECS".into(), "60".into()),
            // A departed client's job is cancelled 1 s after it left, unless its stream is resumed.
            ("QUERYGPT_JOBS__RESUME_GRACE_SECS".into(), "1".into()),
            ("QUERYGPT_WORKER__LLM_TIMEOUT_SECS".into(), "20".into()),
            ("QUERYGPT_WORKER__LLM_MAX_RETRIES".into(), "2".into()),
            ("QUERYGPT_LOG".into(), "info".into()),
        ];
        let mut env = env;
        env.extend(extra_env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        let mut app = TestApp {
            mode: Mode::Distributed,
            base: String::new(),
            http: http_client(),
            llm,
            data_dir,
            embedded: None,
            env,
            apis: Vec::new(),
            workers: Vec::new(),
        };
        let status = app.command("migrate").0.status().await.expect("run migrate");
        assert!(status.success(), "querygpt migrate failed");
        app.base = app.spawn_api().await;
        app.spawn_worker().await;
        app
    }

    /// The command of a `querygpt` process in `role`, and the file its output goes to (none with
    /// `QUERYGPT_TEST_LOGS`, which leaves the output on the terminal).
    fn command(&self, role: &str) -> (Command, Option<std::path::PathBuf>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_querygpt"));
        command.arg(role).envs(self.env.iter().cloned()).kill_on_drop(true);
        let log = self.data_dir.path().join(format!("{role}-{}.log", Uuid::new_v4().simple()));
        if std::env::var_os("QUERYGPT_TEST_LOGS").is_some() {
            return (command, None);
        }
        let file = std::fs::File::create(&log).expect("log file");
        command.stdout(file.try_clone().expect("log file")).stderr(file);
        (command, Some(log))
    }

    /// Starts one more worker process and waits until it listens for jobs and requests (a request sent before
    /// would find no worker); returns its index for [`TestApp::kill_worker`].
    pub async fn spawn_worker(&mut self) -> usize {
        let (mut command, log) = self.command("worker");
        self.workers.push(command.spawn().expect("spawn worker"));
        for _ in 0..600 {
            let started = match &log {
                Some(log) => std::fs::read_to_string(log).is_ok_and(|text| text.contains("worker started")),
                // Output on the terminal: nothing to watch, give it a moment.
                None => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    true
                }
            };
            if started {
                return self.workers.len() - 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the worker did not start; logs in {}", self.data_dir.path().display());
    }

    /// `kill -9` of worker `index`: no graceful shutdown, no ack, no goodbye.
    pub async fn kill_worker(&mut self, index: usize) {
        let worker = &mut self.workers[index];
        worker.start_kill().expect("SIGKILL the worker");
        worker.wait().await.expect("worker reaped");
    }

    /// Starts an API process (the first one, or one more sharing everything else with the others); returns its
    /// base URL (`http://127.0.0.1:PORT/api/v1`) once it answers. It binds port 0 and the port is read from its
    /// log, so no other process can take the port in between; with `QUERYGPT_TEST_LOGS` (no log file) a free port
    /// is chosen beforehand instead.
    pub async fn spawn_api(&mut self) -> String {
        assert_eq!(self.mode, Mode::Distributed, "only the distributed mode has API processes");
        let (mut command, log) = self.command("api");
        let chosen = log.is_none().then(free_port);
        command.env("QUERYGPT_LISTEN", format!("127.0.0.1:{}", chosen.unwrap_or(0)));
        self.apis.push(command.spawn().expect("spawn api"));
        let port = match (chosen, log) {
            (Some(port), _) => port,
            (None, Some(log)) => listening_port(&log).await,
            (None, None) => unreachable!("a port is chosen when there is no log"),
        };
        let base = format!("http://127.0.0.1:{port}/api/v1");
        self.wait_until_healthy(&base).await;
        base
    }

    /// `kill -9` of API process `index` (0 serves `base`; the others come from [`TestApp::spawn_api`]).
    pub async fn kill_api(&mut self, index: usize) {
        let api = &mut self.apis[index];
        api.start_kill().expect("SIGKILL the API node");
        api.wait().await.expect("API node reaped");
    }

    async fn wait_until_healthy(&self, base: &str) {
        for _ in 0..300 {
            if let Ok(response) = self.http.get(format!("{base}/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the API did not become healthy; logs in {}", self.data_dir.path().display());
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.embedded.take() {
            running.stop().await.expect("graceful stop");
        }
    }

    // --- HTTP helpers ---

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request_at(&self.base, method, path, token, body).await
    }

    /// [`TestApp::request`] to the API node at `base` (see [`TestApp::spawn_api`]).
    pub async fn request_at(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// Registers a fresh user and returns its session.
    pub async fn register(&self) -> Session {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery", "display_name": "测试用户"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        Session {
            user_id: body["data"]["user"]["id"].as_str().expect("user id").to_string(),
            email,
            access_token: body["data"]["access_token"].as_str().expect("access token").to_string(),
            refresh_token: body["data"]["refresh_token"].as_str().expect("refresh token").to_string(),
        }
    }

    /// Adds an OpenAI-compatible model pointing at the fake LLM; returns its id.
    pub async fn add_openai_model(&self, session: &Session, is_default: bool) -> String {
        let (status, body) = self
            .post(
                "/models",
                &session.access_token,
                json!({"name": "Fake GPT", "provider": "openai", "model_id": "gpt-4o", "base_url": self.llm.openai_base_url(), "api_key": "sk-test-secret-123", "is_default": is_default}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "add model: {body}");
        body["data"]["id"].as_str().expect("model id").to_string()
    }

    /// Adds a connection to a fresh SQLite target (the sales table) in the data dir; returns `(id, file path)`.
    pub async fn sqlite_connection(&self, session: &Session) -> (String, String) {
        let path = databases::sqlite_target(self.data_dir.path()).await;
        let (status, created) = self
            .post("/connections", &session.access_token, json!({"name": "t", "driver": "sqlite", "database": path}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "add connection: {created}");
        (created["data"]["id"].as_str().expect("connection id").to_string(), path)
    }

    fn chat_url(&self, params: &[(&str, &str)]) -> url::Url {
        url::Url::parse_with_params(&format!("{}/chat/stream", self.base), params).expect("chat URL")
    }

    /// Opens `/chat/stream` with the given query parameters.
    pub async fn ask(&self, session: &Session, params: &[(&str, &str)]) -> SseStream {
        let response = self
            .http
            .get(self.chat_url(params))
            .bearer_auth(&session.access_token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK, "chat/stream status");
        SseStream::new(response)
    }

    /// Waits until the fake LLM has received a request (so a question is being answered), for at most 30 s.
    pub async fn until_the_llm_is_asked(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.llm.request_count() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the LLM was not asked within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the fake LLM has seen a request abandoned by its client (the worker cancelled the call), for at
    /// most 15 s.
    pub async fn until_the_llm_request_is_abandoned(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.llm.abandoned_count() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no LLM request was abandoned within 15 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resumes a stream at the API node `base` after the event `last_event_id` (`Last-Event-ID`).
    pub async fn resume_at(&self, base: &str, session: &Session, last_event_id: &str) -> reqwest::Response {
        self.http
            .get(format!("{base}/chat/stream"))
            .bearer_auth(&session.access_token)
            .header("accept", "text/event-stream")
            .header("last-event-id", last_event_id)
            .send()
            .await
            .expect("resume request sent")
    }

    /// Opens `/chat/stream` expecting a JSON error instead of a stream.
    pub async fn ask_expecting_error(&self, token: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self.http.get(self.chat_url(params)).bearer_auth(token).send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.expect("JSON error body"))
    }
}

/// The port in the `API listening addr=127.0.0.1:PORT` line of an API process's log, within 30 s.
async fn listening_port(log: &std::path::Path) -> u16 {
    for _ in 0..600 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let plain = strip_ansi(&text);
        let port = plain.lines().filter(|line| line.contains("API listening")).find_map(|line| {
            let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
            addr.rsplit(':').next()?.parse().ok()
        });
        if let Some(port) = port {
            return port;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the API process did not log its address; see {}", log.display());
}

/// `text` without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
