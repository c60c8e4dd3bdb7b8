//! Configuration: built-in defaults, then an optional TOML file, then `QUERYGPT_...` environment variables
//! (nested keys joined with `__`, e.g. `QUERYGPT_WORKER__CONCURRENCY=512`).
//!
//! With no settings at all the defaults describe the embedded mode: SQLite under `data/`, the in-process bus, a
//! demo database. Setting `nats_url` and a `postgres://` `database_url` is all the distributed mode needs.

use crate::netguard::NetworkPolicy;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A string that never shows in logs or `Debug` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Every setting of the service. See the README for the list with defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Directory for the embedded store, the generated secrets and the demo database.
    pub data_dir: PathBuf,
    /// The service's own database: `sqlite://...` or `postgres://...`. Default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// NATS server. Unset: jobs and events use the in-process bus (embedded mode, one process only).
    pub nats_url: Option<String>,
    /// Redis for the state API nodes and workers share (schema cache, ...). Default: an in-process store, which is
    /// only shared inside one process (embedded mode).
    pub redis_url: Option<String>,
    /// Prefix of every NATS subject and of the JetStream stream name.
    pub subject_prefix: String,
    /// Name of this node in event subjects. Default: random per start.
    pub node_id: Option<String>,
    /// Base64 of 32 bytes that encrypt stored passwords and API keys. Default (embedded only): generated once
    /// into `data_dir/secret.key`.
    pub secret_key: Option<SecretString>,
    pub auth: AuthSettings,
    pub jobs: JobSettings,
    pub worker: WorkerSettings,
    pub demo: DemoSettings,
    pub text2sql: Text2SqlSettings,
    pub limits: LimitSettings,
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub telemetry: TelemetrySettings,
    /// Which destinations users' connections and models may point at (the SSRF guard).
    pub network: NetworkPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HMAC secret of the JWTs. Default (embedded only): generated once into `data_dir/jwt.secret`.
    pub jwt_secret: Option<SecretString>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// How many argon2 hashes may run at once (each takes ~19 MiB and tens of milliseconds of one core).
    pub password_hash_concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// JetStream AckWait: how long a silent worker keeps a job before it is redelivered to another.
    pub ack_wait_secs: u64,
    /// Deliveries before a job is moved to the dead-letter subject; -1 (or 0) for no limit, as in NATS.
    pub max_deliver: i64,
    /// How long an SSE stream waits for its job's answer before it ends with an error.
    pub stream_timeout_secs: u64,
    /// A client whose stream breaks has this long to resume it (`Last-Event-ID`) before its job is cancelled.
    pub resume_grace_secs: u64,
    /// Jobs queued at most, over the whole deployment (NATS: waiting or running; in-process: waiting); beyond,
    /// questions are refused with 429 at once. -1 for no limit (NATS only).
    pub max_pending: i64,
    /// Open question streams one user may have on one API node; 0 for no limit.
    pub max_streams_per_user: usize,
    /// Copies a NATS cluster keeps of the jobs, events and dead-letter streams (3 in a three-node cluster).
    pub stream_replicas: usize,
    /// How long an API node waits for a worker to answer a request (model test, connection test, schema).
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// Jobs a worker runs at once (they are async: thousands are fine).
    pub concurrency: usize,
    /// Timeout of one LLM request.
    pub llm_timeout_secs: u64,
    /// Retries of an LLM request on 429, 5xx and transport errors.
    pub llm_max_retries: usize,
    /// Statement timeout on the target database.
    pub query_timeout_secs: u64,
    /// Rows returned at most; more are reported as `truncated`.
    pub row_cap: usize,
    /// Bytes of result data returned at most.
    pub max_result_bytes: usize,
    /// Earlier question/SQL pairs of a conversation given to the LLM.
    pub context_rounds: usize,
    /// SQLite connections may only open files inside this directory (symlinks resolved). Default: `data_dir`.
    pub sqlite_dir: Option<PathBuf>,
    /// Bytes of schema text a prompt may carry (about 4 bytes a token). A larger schema is cut down to the tables
    /// and columns most relevant to the question.
    pub schema_budget: usize,
    /// Attempts at a question: a statement the validator refuses or the database rejects goes back to the model
    /// with its error, up to this many tries in all.
    pub max_attempts: u32,
    /// Time limit of a model test (`POST /models/{id}/test`), one LLM round trip.
    pub test_timeout_secs: u64,
    /// How long a connection's schema is reused (shared by every worker) before it is read again; 0 reads it for
    /// every question.
    pub schema_cache_ttl_secs: u64,
    /// Keys a Redis connection's schema sample (a bounded `SCAN`) looks at most.
    pub redis_sample_keys: usize,
    /// Milliseconds a Redis schema sample may take; the keys seen by then make the schema.
    pub redis_sample_ms: u64,
    /// LLM requests to one model (base URL and model name) a worker has in flight at once; more wait their turn.
    /// 0 for no limit.
    pub max_llm_calls_per_model: usize,
    /// Address of the worker's own small HTTP listener (`GET /metrics` for Prometheus, `GET /health` for probes),
    /// e.g. `0.0.0.0:9100`. Unset: none (`serve` shows its worker's metrics on the API's `/api/v1/metrics`).
    pub metrics_listen: Option<String>,
}

/// The Text2SQL API (`POST /sql/generate`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Text2SqlSettings {
    /// A conversation is forgotten after this long without a request (the document says 24 hours); each request
    /// renews it.
    pub conversation_ttl_secs: u64,
    /// Earlier turns a conversation keeps and sends to the model with the next question.
    pub conversation_turns: usize,
    /// How long an API node waits for a worker to write the statement (LLM retries and one correction included).
    pub request_timeout_secs: u64,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Most tables a schema may describe.
    pub max_tables: usize,
    /// Most columns one table may have.
    pub max_columns_per_table: usize,
}

/// The connection pool of the service's own PostgreSQL database (the embedded SQLite store has its own).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    /// Connections per process. Every API node and worker has its own pool: their sum must stay under the
    /// server's `max_connections`.
    pub max_connections: u32,
    /// A request waiting this long for a connection fails (`INTERNAL_ERROR`) instead of hanging; also how long
    /// requests wait while the database is down.
    pub acquire_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { max_connections: 32, acquire_timeout_ms: 3000 }
    }
}

/// The HTTP server of an API node.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// A client must send a request's headers within this time (idle keep-alive connections close after it too).
    pub header_read_timeout_secs: u64,
    /// Serve the web console (HTML, CSS and JavaScript built into the binary) at `/` and `/console/...`. Off: `/`
    /// is the JSON 404 of any unknown path.
    pub console: bool,
    /// Requests worked on at once; the rest wait in arrival order (0: no bound). A streamed answer holds its turn
    /// only until its response head. Health, readiness and metrics never wait.
    pub max_concurrent_requests: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen_backlog: 4096, header_read_timeout_secs: 30, console: true, max_concurrent_requests: 256 }
    }
}

/// Metrics and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// Serve Prometheus metrics at `GET /api/v1/metrics` (and on `worker.metrics_listen`).
    pub metrics: bool,
    /// When set, `/metrics` asks for `Authorization: Bearer <this>`: the figures show traffic and model names.
    pub metrics_token: Option<SecretString>,
    /// OTLP/HTTP endpoint traces are exported to (e.g. `http://otel-collector:4318`). Unset: spans only go to the
    /// log, with their trace id.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings { metrics: true, metrics_token: None, otlp_endpoint: None, service_name: "querygpt".into() }
    }
}

/// Rate limits, counted in the shared state (Redis in the distributed mode, so every API node counts together) in
/// fixed windows of a minute. 0 turns a limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Questions (`/chat/stream`) one user may ask per minute.
    pub chat_per_minute: u64,
    /// `/sql/generate` requests per minute with one API key.
    pub generate_per_key_per_minute: u64,
    /// `/sql/generate` requests per minute of one user, all keys and access tokens together.
    pub generate_per_user_per_minute: u64,
    /// Login attempts per minute for one e-mail address (slows down password guessing).
    pub login_per_minute: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DemoSettings {
    /// Create the demo sales database and register it as every new user's default connection.
    pub enabled: bool,
    /// Default: `data_dir/demo.db`.
    pub path: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            nats_url: None,
            redis_url: None,
            subject_prefix: "querygpt".into(),
            node_id: None,
            secret_key: None,
            auth: AuthSettings::default(),
            jobs: JobSettings::default(),
            worker: WorkerSettings::default(),
            demo: DemoSettings::default(),
            text2sql: Text2SqlSettings::default(),
            limits: LimitSettings::default(),
            http: HttpSettings::default(),
            store: StoreSettings::default(),
            telemetry: TelemetrySettings::default(),
            network: NetworkPolicy::default(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: None,
            access_ttl_secs: 3600,
            refresh_ttl_secs: 7 * 24 * 3600,
            password_hash_concurrency: 2,
        }
    }
}

impl JobSettings {
    /// Whether delivery number `attempt` (1 for the first) of a job is its last: after it, the job is given up.
    pub fn is_last_delivery(&self, attempt: u64) -> bool {
        self.max_deliver > 0 && attempt >= self.max_deliver.unsigned_abs()
    }

    /// The delivery limit of the in-process bus: 0 for none.
    pub fn delivery_limit(&self) -> u64 {
        self.max_deliver.max(0).unsigned_abs()
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            ack_wait_secs: 30,
            max_deliver: 5,
            stream_timeout_secs: 300,
            resume_grace_secs: 10,
            max_pending: 100_000,
            max_streams_per_user: 64,
            stream_replicas: 1,
            request_timeout_secs: 20,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 1024,
            llm_timeout_secs: 120,
            llm_max_retries: 3,
            query_timeout_secs: 30,
            row_cap: 1000,
            max_result_bytes: 8 * 1024 * 1024,
            context_rounds: 3,
            sqlite_dir: None,
            schema_budget: 24 * 1024,
            max_attempts: 3,
            test_timeout_secs: 15,
            schema_cache_ttl_secs: 300,
            redis_sample_keys: 1000,
            redis_sample_ms: 2000,
            max_llm_calls_per_model: 256,
            metrics_listen: None,
        }
    }
}

impl Default for Text2SqlSettings {
    fn default() -> Self {
        Text2SqlSettings {
            conversation_ttl_secs: 24 * 3600,
            conversation_turns: 5,
            request_timeout_secs: 300,
            max_request_bytes: 2 * 1024 * 1024,
            max_tables: 2000,
            max_columns_per_table: 1000,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            chat_per_minute: 600,
            generate_per_key_per_minute: 600,
            generate_per_user_per_minute: 1200,
            login_per_minute: 20,
        }
    }
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings { enabled: true, path: None }
    }
}

/// Error loading the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Defaults, then `file` (if given, it must exist), then `QUERYGPT_...` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("QUERYGPT").prefix_separator("_").separator("__").try_parsing(true),
        );
        let settings: Settings =
            builder.build().and_then(|c| c.try_deserialize()).map_err(|e| ConfigError(e.to_string()))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.worker.concurrency == 0 {
            return Err(ConfigError("worker.concurrency must be at least 1".into()));
        }
        if self.worker.row_cap == 0 {
            return Err(ConfigError("worker.row_cap must be at least 1".into()));
        }
        if self.text2sql.conversation_ttl_secs == 0 {
            return Err(ConfigError("text2sql.conversation_ttl_secs must be at least 1".into()));
        }
        if self.subject_prefix.is_empty() || self.subject_prefix.contains([' ', '*', '>']) {
            return Err(ConfigError("subject_prefix must be a plain NATS token".into()));
        }
        Ok(())
    }

    /// The store URL, defaulting to SQLite inside `data_dir`.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("querygpt.db").display()))
    }

    /// The directory SQLite connections are confined to.
    pub fn sqlite_dir(&self) -> PathBuf {
        self.worker.sqlite_dir.clone().unwrap_or_else(|| self.data_dir.clone())
    }

    /// Where the demo database lives.
    pub fn demo_path(&self) -> PathBuf {
        self.demo.path.clone().unwrap_or_else(|| self.data_dir.join("demo.db"))
    }

    /// Whether this process runs without external infrastructure.
    pub fn is_embedded(&self) -> bool {
        self.nats_url.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_or_zero_delivery_limit_is_none() {
        for unlimited in [-1, 0] {
            let jobs = JobSettings { max_deliver: unlimited, ..JobSettings::default() };
            assert!(!jobs.is_last_delivery(1_000_000));
            assert_eq!(jobs.delivery_limit(), 0);
        }
        let jobs = JobSettings { max_deliver: 2, ..JobSettings::default() };
        assert_eq!((jobs.is_last_delivery(1), jobs.is_last_delivery(2), jobs.delivery_limit()), (false, true, 2));
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let settings = Settings { secret_key: Some(SecretString::new("hunter2")), ..Settings::default() };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn default_store_is_sqlite_in_data_dir() {
        assert_eq!(Settings::default().database_url(), "sqlite://data/querygpt.db?mode=rwc");
    }
}
