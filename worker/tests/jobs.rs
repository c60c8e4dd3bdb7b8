//! A job's run on its own, without the job loop: `JobContext::answer` on a first delivery and on a redelivery
//! (which replays the stored answer instead of asking the model again), and `resend_stored`, which a worker uses
//! for a job the bus gave up on. A real SQLite store and target, the fake LLM, and the in-process bus for events.

use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_bus::{Bus, InProcessBus};
use querygpt_common::config::{SecretString, WorkerSettings};
use querygpt_common::messages::{ChatEvent, JobEvent, QueryJob, Question};
use querygpt_common::netguard::NetworkPolicy;
use querygpt_common::subjects::Subjects;
use querygpt_common::{Driver, Language, Provider};
use querygpt_llm::{LlmClient, LlmSettings};
use querygpt_store::{NewConnection, NewModel, NewUser, Role, SecretBox, Store};
use querygpt_targets::{TargetSettings, Targets};
use querygpt_testkit::{FakeLlm, Reply};
use querygpt_worker::events::EventSink;
use querygpt_worker::job::JobContext;
use querygpt_worker::schemas::Schemas;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const LOCAL: NetworkPolicy = NetworkPolicy { allow_loopback: true, allow_private: false };
const SQL: &str = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region";
const NODE: &str = "node-1";

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    llm: FakeLlm,
    context: JobContext,
    user_id: Uuid,
    model_id: Uuid,
    connection_id: Uuid,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store_url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
        let secrets = SecretBox::from_base64("test", SECRET_KEY).expect("key");
        let store = querygpt_store::open(&store_url, secrets, true).await.expect("store");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Subjects::new("qg")));
        let llm = FakeLlm::start().await;
        llm.set_default(Reply::text(serde_json::json!({"sql": SQL, "explanation": "per region"}).to_string()));

        let target = dir.path().join("sales.db");
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", target.display())).await.expect("target");
        for statement in [
            "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL)",
            "INSERT INTO sales VALUES (1, 'north', 10), (2, 'south', 20), (3, 'north', 5)",
        ] {
            sqlx::query(statement).execute(&mut conn).await.expect("target setup");
        }
        conn.close().await.expect("close");

        let user = store
            .create_user(NewUser {
                email: format!("user-{}@example.com", Uuid::new_v4().simple()),
                display_name: "tester".into(),
                password_hash: "not a real hash".into(),
                initial_connection: None,
            })
            .await
            .expect("user");
        let model = NewModel {
            name: "fake".into(),
            provider: Provider::Openai,
            model_id: "gpt-4o".into(),
            base_url: Some(llm.openai_base_url()),
            api_key: Some(SecretString::new("sk-test")),
            is_default: true,
            context_window: None,
        };
        let model_id = store.create_model(user.id, model).await.expect("model").id;
        let connection = NewConnection {
            name: "sales".into(),
            driver: Driver::Sqlite,
            host: None,
            port: None,
            username: None,
            password: None,
            database: target.display().to_string(),
            is_default: true,
        };
        let connection_id = store.create_connection(user.id, connection).await.expect("connection").id;

        let targets = Arc::new(Targets::new(TargetSettings {
            sqlite_root: Some(dir.path().to_path_buf()),
            network: LOCAL,
            ..TargetSettings::default()
        }));
        let cache = Arc::new(querygpt_cache::InProcessCache::default());
        let schemas = Schemas::new(targets.clone(), cache, Duration::from_secs(60));
        let llm_client = LlmClient::new(LlmSettings { network: LOCAL, ..LlmSettings::default() }).expect("client");
        let settings = WorkerSettings { sqlite_dir: Some(dir.path().to_path_buf()), ..WorkerSettings::default() };
        let context = JobContext::new(store.clone(), llm_client, targets, schemas, settings);
        Harness { _dir: dir, store, bus, llm, context, user_id: user.id, model_id, connection_id }
    }

    fn job(&self) -> QueryJob {
        let question = Question {
            user_id: self.user_id,
            conversation_id: None,
            text: "sales per region".into(),
            language: Language::En,
            model_id: self.model_id,
            connection_id: self.connection_id,
            context_rounds: None,
            prompts: Default::default(),
            view_mode: Default::default(),
        };
        QueryJob::accept(question, |job_id| self.bus.events_subject(NODE, job_id))
    }

    async fn events(&self) -> BoxStream<'static, JobEvent> {
        self.bus.subscribe_events(NODE).await.expect("events")
    }

    /// The events of one run, up to its terminal one.
    async fn run_events(events: &mut BoxStream<'static, JobEvent>) -> Vec<JobEvent> {
        let mut seen = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("an event within 10 s")
                .expect("the events go on");
            let terminal = event.event.is_terminal();
            seen.push(event);
            if terminal {
                return seen;
            }
        }
    }

    async fn stored_messages(&self, job: &QueryJob) -> Vec<querygpt_store::Message> {
        self.store.recent_messages(self.user_id, job.conversation_id, 100).await.expect("messages")
    }
}

fn names(events: &[JobEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.name()).collect()
}

#[tokio::test]
async fn a_first_delivery_asks_stores_then_publishes_and_a_redelivery_replays_without_the_model() {
    let h = Harness::start().await;
    let mut events = h.events().await;
    let job = h.job();
    let sink = EventSink::new(h.bus.clone(), &job);

    h.context.answer(&job, 1, &sink).await.expect("answered");
    let first = Harness::run_events(&mut events).await;
    assert_eq!(names(&first), ["progress", "progress", "progress", "result", "visualization", "done"], "{first:?}");
    assert_eq!(h.llm.request_count(), 1);
    let stored = h.stored_messages(&job).await;
    assert_eq!(stored.iter().map(|m| m.role).collect::<Vec<_>>(), [Role::User, Role::Assistant]);

    // The same job delivered again (its worker died after storing, before the ack): the stored answer is sent
    // again, with rows from its stored SQL, and nothing more is asked or stored.
    h.context.answer(&job, 2, &sink).await.expect("replayed");
    let second = Harness::run_events(&mut events).await;
    assert_eq!(h.llm.request_count(), 1, "the model is not asked twice");
    let result = second.iter().find_map(|e| match &e.event {
        ChatEvent::Result { sql, rows_count, .. } => Some((sql.clone(), *rows_count)),
        _ => None,
    });
    assert_eq!(result, Some((SQL.to_owned(), 2)), "{second:?}");
    assert!(matches!(second.last().map(|e| &e.event), Some(ChatEvent::Done { .. })));
    // Same sequence numbers: the API node drops what its client already has.
    let seqs = |events: &[JobEvent]| events.iter().filter(|e| e.seq >= 100).map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&first), seqs(&second));
    assert_eq!(h.stored_messages(&job).await.len(), 2, "stored once");
}

#[tokio::test]
async fn a_given_up_job_is_resent_only_when_its_answer_was_stored() {
    let h = Harness::start().await;
    let mut events = h.events().await;

    let unanswered = h.job();
    let sink = EventSink::new(h.bus.clone(), &unanswered);
    assert!(!h.context.resend_stored(&unanswered, &sink).await.expect("looked"), "nothing stored: nothing sent");

    let answered = h.job();
    let sink = EventSink::new(h.bus.clone(), &answered);
    h.context.answer(&answered, 1, &sink).await.expect("answered");
    Harness::run_events(&mut events).await;
    assert!(h.context.resend_stored(&answered, &sink).await.expect("looked"));
    let resent = Harness::run_events(&mut events).await;
    assert_eq!(resent.iter().map(|e| e.job_id).collect::<std::collections::HashSet<_>>().len(), 1);
    assert!(matches!(resent.last().map(|e| &e.event), Some(ChatEvent::Done { .. })), "{resent:?}");
    assert_eq!(h.llm.request_count(), 1);
}
