//! Worker requests end to end: a running [`Worker`] on the in-process bus, a real SQLite store, the fake LLM for
//! model tests and SQLite files for connection tests and schemas.

use querygpt_bus::{Bus, BusError, InProcessBus};
use querygpt_common::config::{JobSettings, SecretString, WorkerSettings};
use querygpt_common::messages::{
    ConnectionTestReport, ModelTestReport, ProviderFailureKind, WorkerOutcome, WorkerRequest, WorkerTask,
};
use querygpt_common::netguard::NetworkPolicy;
use querygpt_common::subjects::Subjects;
use querygpt_common::{Driver, ErrorCode, Provider};
use querygpt_llm::{LlmClient, LlmSettings};
use querygpt_store::{NewConnection, NewModel, NewUser, SecretBox, Store};
use querygpt_targets::{DbSchema, TargetSettings, Targets};
use querygpt_testkit::{FakeLlm, Reply};
use querygpt_worker::{Worker, WorkerDeps};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// `worker.test_timeout_secs` of these tests.
const TEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a test waits for a reply that must come.
const PATIENCE: Duration = Duration::from_secs(20);
/// The fake LLM and the SQLite files are on this machine.
const LOCAL: NetworkPolicy = NetworkPolicy { allow_loopback: true, allow_private: false };

/// A worker on its own store and bus, and one user.
struct Harness {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    user_id: Uuid,
    shutdown: CancellationToken,
    running: JoinHandle<Result<(), BusError>>,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store_url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
        let secrets = SecretBox::from_base64("test", SECRET_KEY).expect("key");
        let store = querygpt_store::open(&store_url, secrets, true).await.expect("store");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Subjects::new("qg")));
        let settings = WorkerSettings {
            test_timeout_secs: TEST_TIMEOUT.as_secs(),
            sqlite_dir: Some(dir.path().to_path_buf()),
            ..WorkerSettings::default()
        };
        let targets = Targets::new(TargetSettings {
            sqlite_root: Some(dir.path().to_path_buf()),
            network: LOCAL,
            ..TargetSettings::default()
        });
        let worker = Worker::new(WorkerDeps {
            store: store.clone(),
            bus: bus.clone(),
            llm: LlmClient::new(LlmSettings { network: LOCAL, ..LlmSettings::default() }).expect("LLM client"),
            targets,
            cache: std::sync::Arc::new(querygpt_cache::InProcessCache::default()),
            settings,
            jobs: JobSettings::default(),
        })
        .expect("worker");
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(worker.run(shutdown.clone()));
        let user = store
            .create_user(NewUser {
                email: format!("user-{}@example.com", Uuid::new_v4().simple()),
                display_name: "tester".into(),
                password_hash: "not a real hash".into(),
                initial_connection: None,
            })
            .await
            .expect("user");
        let harness = Harness { dir, store, bus, user_id: user.id, shutdown, running };
        harness.wait_until_listening().await;
        harness
    }

    /// `Worker::run` subscribes in its own task: until it has, requests find nobody.
    async fn wait_until_listening(&self) {
        let deadline = Instant::now() + PATIENCE;
        let probe = WorkerRequest::new(self.user_id, WorkerTask::TestModel { model_id: Uuid::new_v4() });
        while let Err(BusError::NoResponders) = self.bus.request_worker(&probe, PATIENCE).await {
            assert!(Instant::now() < deadline, "the worker never listened for requests");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn ask(&self, task: WorkerTask) -> WorkerOutcome {
        self.ask_as(self.user_id, task).await
    }

    async fn ask_as(&self, user_id: Uuid, task: WorkerTask) -> WorkerOutcome {
        let reply = self.bus.request_worker(&WorkerRequest::new(user_id, task), PATIENCE).await.expect("a reply");
        reply.outcome
    }

    async fn add_model(&self, provider: Provider, base_url: String, api_key: &str) -> Uuid {
        let new = NewModel {
            name: "test model".into(),
            provider,
            model_id: "gpt-4o".into(),
            base_url: Some(base_url),
            api_key: Some(SecretString::new(api_key)),
            is_default: false,
            context_window: None,
        };
        self.store.create_model(self.user_id, new).await.expect("model").id
    }

    async fn test_model(&self, model_id: Uuid) -> ModelTestReport {
        match self.ask(WorkerTask::TestModel { model_id }).await {
            WorkerOutcome::ModelTested(report) => report,
            other => panic!("not a model test report: {other:?}"),
        }
    }

    async fn add_connection(&self, database: &Path) -> Uuid {
        let new = NewConnection {
            name: "sqlite target".into(),
            driver: Driver::Sqlite,
            host: None,
            port: None,
            username: None,
            password: None,
            database: database.display().to_string(),
            is_default: false,
        };
        self.store.create_connection(self.user_id, new).await.expect("connection").id
    }

    async fn test_connection(&self, connection_id: Uuid) -> ConnectionTestReport {
        match self.ask(WorkerTask::TestConnection { connection_id }).await {
            WorkerOutcome::ConnectionTested(report) => report,
            other => panic!("not a connection test report: {other:?}"),
        }
    }

    async fn schema(&self, connection_id: Uuid, refresh: bool) -> DbSchema {
        match self.ask(WorkerTask::Schema { connection_id, refresh }).await {
            WorkerOutcome::Schema(schema) => schema,
            other => panic!("not a schema: {other:?}"),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.expect("worker task").expect("worker stopped cleanly");
    }
}

/// Runs `statements` on a SQLite file, creating it.
async fn sqlite_file(path: &Path, statements: &[&'static str]) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite file");
    for statement in statements {
        sqlx::query(*statement).execute(&mut conn).await.expect("set up SQLite file");
    }
    conn.close().await.expect("close SQLite file");
}

/// A SQLite target inside the worker's SQLite directory, with one table.
async fn sales_database(dir: &Path) -> PathBuf {
    let path = dir.join("sales.db");
    sqlite_file(&path, &["CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL)"]).await;
    path
}

fn assert_failed(outcome: WorkerOutcome, expected: ErrorCode) -> String {
    match outcome {
        WorkerOutcome::Failed { code, message } if code == expected => message,
        other => panic!("expected Failed {expected}, got {other:?}"),
    }
}

#[tokio::test]
async fn model_test_reports_the_reply_and_its_latency_on_both_protocols() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    for (provider, base_url) in
        [(Provider::Openai, llm.openai_base_url()), (Provider::Anthropic, llm.anthropic_base_url())]
    {
        llm.clear_requests();
        llm.reply(Reply::delayed(Duration::from_millis(50), Reply::text("OK")));
        let model = h.add_model(provider, base_url, "sk-test-123").await;

        let report = h.test_model(model).await;
        assert!(report.ok, "{provider:?}: {report:?}");
        assert_eq!(report.reply.as_deref(), Some("OK"));
        assert_eq!(report.error, None);
        assert!((50..TEST_TIMEOUT.as_millis() as u64).contains(&report.latency_ms), "latency {}", report.latency_ms);
        let requests = llm.requests();
        assert_eq!(requests.len(), 1, "one round trip");
        assert!(requests[0].prompt_text().contains("ping"), "{}", requests[0].prompt_text());
    }
    h.stop().await;
}

#[tokio::test]
async fn a_long_reply_is_cut() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text("OK ".repeat(500)));
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-test-123").await;
    let reply = h.test_model(model).await.reply.expect("reply text");
    assert!(reply.chars().count() <= 201, "{} characters", reply.chars().count());
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_at_once_and_never_shown() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    llm.require_api_key("sk-right-key");
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-wrong-key-456").await;

    let report = h.test_model(model).await;
    assert!(!report.ok);
    assert_eq!(report.reply, None);
    let error = report.error.expect("a provider failure");
    assert_eq!((error.kind, error.status), (ProviderFailureKind::Unauthorized, Some(401)));
    assert!(!error.message.contains("sk-wrong-key-456"), "{}", error.message);
    assert_eq!(llm.request_count(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_model_is_model_not_found() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    llm.reply(Reply::error(404, "The model `gpt-4o` does not exist or you do not have access to it."));
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-test-123").await;

    let error = h.test_model(model).await.error.expect("a provider failure");
    assert_eq!((error.kind, error.status), (ProviderFailureKind::ModelNotFound, Some(404)));
    assert!(error.message.contains("does not exist"), "{}", error.message);
    h.stop().await;
}

#[tokio::test]
async fn a_failing_provider_is_not_retried() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    // A job would retry a 503 and a 429; a test reports the first answer.
    llm.reply(Reply::error(503, "overloaded"));
    llm.reply(Reply::rate_limited(Duration::from_millis(10)));
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-test-123").await;

    let error = h.test_model(model).await.error.expect("a provider failure");
    assert_eq!((error.kind, error.status), (ProviderFailureKind::ProviderError, Some(503)));
    let error = h.test_model(model).await.error.expect("a provider failure");
    assert_eq!((error.kind, error.status), (ProviderFailureKind::RateLimited, Some(429)));
    assert_eq!(llm.request_count(), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable_fast() {
    let h = Harness::start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let model = h.add_model(Provider::Openai, format!("http://127.0.0.1:{port}/v1"), "sk-test-123").await;

    let started = Instant::now();
    let report = h.test_model(model).await;
    let error = report.error.expect("a provider failure");
    assert_eq!((error.kind, error.status), (ProviderFailureKind::Unreachable, None));
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(report.latency_ms < 1000);
    h.stop().await;
}

#[tokio::test]
async fn a_silent_provider_times_out_after_the_test_timeout() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    llm.reply(Reply::hang());
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-test-123").await;

    let report = h.test_model(model).await;
    assert_eq!(report.error.expect("a provider failure").kind, ProviderFailureKind::Timeout);
    let limit = TEST_TIMEOUT.as_millis() as u64;
    assert!((limit..limit + 2000).contains(&report.latency_ms), "latency {}", report.latency_ms);
    h.stop().await;
}

#[tokio::test]
async fn a_blocked_endpoint_is_reported_as_blocked() {
    let h = Harness::start().await;
    // Link-local (the cloud metadata address) is refused whatever the policy allows.
    let model = h.add_model(Provider::Openai, "http://169.254.169.254/v1".into(), "sk-test-123").await;
    let error = h.test_model(model).await.error.expect("a provider failure");
    assert_eq!(error.kind, ProviderFailureKind::Blocked, "{error:?}");
    h.stop().await;
}

#[tokio::test]
async fn rows_that_are_missing_or_another_users_are_not_found() {
    let h = Harness::start().await;
    let llm = FakeLlm::start().await;
    let database = sales_database(h.dir.path()).await;
    let model = h.add_model(Provider::Openai, llm.openai_base_url(), "sk-test-123").await;
    let connection = h.add_connection(&database).await;
    let stranger = Uuid::new_v4();

    for task in [
        WorkerTask::TestModel { model_id: Uuid::new_v4() },
        WorkerTask::TestConnection { connection_id: Uuid::new_v4() },
        WorkerTask::Schema { connection_id: Uuid::new_v4(), refresh: false },
    ] {
        assert_failed(h.ask(task).await, ErrorCode::NotFound);
    }
    for task in [
        WorkerTask::TestModel { model_id: model },
        WorkerTask::TestConnection { connection_id: connection },
        WorkerTask::Schema { connection_id: connection, refresh: true },
    ] {
        assert_failed(h.ask_as(stranger, task).await, ErrorCode::NotFound);
    }
    assert_eq!(llm.request_count(), 0, "nothing was called for another user");
    h.stop().await;
}

#[tokio::test]
async fn connection_test_describes_a_sqlite_file() {
    let h = Harness::start().await;
    let connection = h.add_connection(&sales_database(h.dir.path()).await).await;

    let report = h.test_connection(connection).await;
    assert!(report.connected, "{report:?}");
    assert!(report.version.as_deref().is_some_and(|v| v.starts_with("SQLite 3.")), "{report:?}");
    assert_eq!(report.tables_count, Some(1));
    assert_eq!(report.error, None);
    h.stop().await;
}

#[tokio::test]
async fn connection_test_of_a_file_it_may_not_open_is_not_connected() {
    let h = Harness::start().await;
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let outside = h.add_connection(&sales_database(elsewhere.path()).await).await;
    let missing = h.add_connection(&h.dir.path().join("missing.db")).await;

    let report = h.test_connection(outside).await;
    assert!(!report.connected);
    assert_eq!((report.version, report.tables_count), (None, None));
    assert!(report.error.as_deref().is_some_and(|e| e.contains("not allowed")), "{:?}", report.error);
    let report = h.test_connection(missing).await;
    assert!(!report.connected);
    assert!(report.error.as_deref().is_some_and(|e| e.contains("does not exist")), "{:?}", report.error);
    h.stop().await;
}

#[tokio::test]
async fn schema_is_reused_until_a_refresh_reads_it_again() {
    let h = Harness::start().await;
    let database = sales_database(h.dir.path()).await;
    let connection = h.add_connection(&database).await;

    let schema = h.schema(connection, false).await;
    assert_eq!(schema.tables.len(), 1);
    let sales = &schema.tables[0];
    assert_eq!(sales.name, "sales");
    let columns: Vec<&str> = sales.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "region", "amount"]);
    assert!(sales.columns[0].primary && !sales.columns[1].nullable);

    sqlite_file(&database, &["CREATE TABLE refunds (id INTEGER PRIMARY KEY, sale_id INTEGER)"]).await;
    assert_eq!(h.schema(connection, false).await, schema, "a cached schema is reused");
    let refreshed = h.schema(connection, true).await;
    let names: Vec<&str> = refreshed.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["refunds", "sales"]);
    h.stop().await;
}

#[tokio::test]
async fn schema_of_an_unreadable_database_is_a_database_error() {
    let h = Harness::start().await;
    let missing = h.add_connection(&h.dir.path().join("missing.db")).await;
    let message = assert_failed(
        h.ask(WorkerTask::Schema { connection_id: missing, refresh: false }).await,
        ErrorCode::DatabaseError,
    );
    assert!(message.contains("does not exist"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn a_stopped_worker_no_longer_listens() {
    let h = Harness::start().await;
    let bus = h.bus.clone();
    h.stop().await;
    let request = WorkerRequest::new(Uuid::new_v4(), WorkerTask::TestModel { model_id: Uuid::new_v4() });
    let result = bus.request_worker(&request, PATIENCE).await;
    assert!(matches!(result, Err(BusError::NoResponders)), "{result:?}");
}
