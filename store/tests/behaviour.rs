//! Behaviour of the `Store` trait, every case run on SQLite (a temp file) and on PostgreSQL (a fresh database per
//! test, created from `QUERYGPT_TEST_PG_URL` and dropped afterwards).

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::FutureExt;
use querygpt_common::{Driver, Provider};
use querygpt_store::{
    Exchange, Message, NewConnection, NewModel, NewUser, Role, SecretBox, SecretString, Store, StoreError, User, open,
};
use serde_json::json;
use sqlx::{Connection as _, PgConnection, PgPool, SqlitePool};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use uuid::Uuid;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A store under test, plus a second pool on the same database to look at raw columns.
struct Harness {
    store: Arc<dyn Store>,
    raw: Raw,
    url: String,
}

enum Raw {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$raw` holds (the query types differ per database).
macro_rules! on_pool {
    ($raw:expr, |$pool:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite($pool) => $body,
            Raw::Pg($pool) => $body,
        }
    };
}

impl Raw {
    /// One optional text column of the row with id `$1`.
    async fn text(&self, sql: &'static str, id: Uuid) -> Option<String> {
        on_pool!(self, |pool| sqlx::query_scalar(sql).bind(id).fetch_one(pool).await).unwrap()
    }

    /// Runs `sql` with `$1` text and `$2` id.
    async fn exec(&self, sql: &'static str, text: Option<String>, id: Uuid) {
        on_pool!(self, |pool| sqlx::query(sql).bind(text).bind(id).execute(pool).await.map(drop)).unwrap();
    }

    async fn count(&self, sql: &'static str) -> i64 {
        on_pool!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await).unwrap()
    }
}

fn secrets() -> SecretBox {
    SecretBox::from_base64("test", KEY).unwrap()
}

async fn run_sqlite<F: Future<Output = ()>>(case: impl FnOnce(Harness) -> F) {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: `open` creates it.
    let path = dir.path().join("nested/data/store.db");
    let url = format!("sqlite://{}", path.display());
    let store = open(&url, secrets(), true).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let raw = Raw::Sqlite(SqlitePool::connect(&url).await.unwrap());
    case(Harness { store, raw, url }).await;
}

async fn run_postgres<F: Future<Output = ()>>(case: impl FnOnce(Harness) -> F) {
    let base =
        std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    let db = format!("qgpt_store_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&db);
    let url = url.to_string();

    let outcome = AssertUnwindSafe(async {
        let store = open(&url, secrets(), true).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        let raw = Raw::Pg(PgPool::connect(&url).await.unwrap());
        case(Harness { store, raw, url: url.clone() }).await;
    })
    .catch_unwind()
    .await;
    // FORCE ends the pools' connections that are still closing.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&mut admin).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each case once and runs it on both backends.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::run_sqlite(super::$case).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() { super::run_postgres(super::$case).await })*
        }
    };
}

cases!(
    user_create_and_lookup,
    duplicate_email_conflicts_case_insensitively,
    initial_connection_is_created_with_the_user,
    failed_user_creation_stores_nothing,
    model_defaults,
    connection_defaults_and_fields,
    concurrent_first_models_make_one_default,
    models_and_connections_are_scoped_by_user,
    owned_rows_need_an_existing_user,
    secrets_are_encrypted_at_rest,
    save_exchange_creates_conversation_and_is_idempotent,
    save_exchange_appends_in_order_and_bumps_updated_at,
    concurrent_redelivery_saves_once,
    save_exchange_refuses_another_users_conversation,
    save_exchange_is_atomic,
    save_exchange_drops_a_foreign_connection,
    conversations_and_messages_are_scoped_by_user,
    recent_messages_limit_and_order,
    migrations_are_idempotent,
);

// ---------------------------------------------------------------- helpers

fn new_user(email: &str, initial_connection: Option<NewConnection>) -> NewUser {
    NewUser {
        email: email.to_owned(),
        display_name: "Tester".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        initial_connection,
    }
}

async fn user(store: &Arc<dyn Store>, email: &str) -> User {
    store.create_user(new_user(email, None)).await.unwrap()
}

fn new_model(name: &str, is_default: bool) -> NewModel {
    NewModel {
        name: name.to_owned(),
        provider: Provider::Openai,
        model_id: format!("{name}-id"),
        base_url: Some("http://127.0.0.1:9/v1".to_owned()),
        api_key: Some(SecretString::new(format!("sk-{name}-plaintext"))),
        is_default,
    }
}

fn new_connection(name: &str, is_default: bool) -> NewConnection {
    NewConnection {
        name: name.to_owned(),
        driver: Driver::Mysql,
        host: Some("db.internal".to_owned()),
        port: Some(3306),
        username: Some("reader".to_owned()),
        password: Some(SecretString::new(format!("pw-{name}-plaintext"))),
        database: "sales".to_owned(),
        is_default,
    }
}

fn at(micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::microseconds(micros)
}

fn message(conversation_id: Uuid, role: Role, content: &str, created_at: DateTime<Utc>) -> Message {
    let metadata = (role == Role::Assistant).then(
        || json!({"sql": "SELECT 1", "execution_time": 0.5, "rows_count": 1, "visualization": {"type": "table"}}),
    );
    Message { id: Uuid::now_v7(), conversation_id, role, content: content.to_owned(), metadata, created_at }
}

/// Question `n` and its answer; both written at `created_at`.
fn exchange(user_id: Uuid, conversation_id: Uuid, connection_id: Uuid, n: u32, created_at: DateTime<Utc>) -> Exchange {
    Exchange {
        user_id,
        conversation_id,
        title: format!("question {n}"),
        model: "gpt-4o".to_owned(),
        connection_id,
        user_message: message(conversation_id, Role::User, &format!("question {n}"), created_at),
        assistant_message: message(conversation_id, Role::Assistant, &format!("answer {n}"), created_at),
    }
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

// ---------------------------------------------------------------- cases

async fn user_create_and_lookup(h: Harness) {
    let created = user(&h.store, "  Alice@Example.COM ").await;
    assert_eq!(created.email, "alice@example.com");
    assert_eq!(created.role, "user");
    assert_eq!(h.store.user_by_id(created.id).await.unwrap(), Some(created.clone()));
    let creds = h.store.user_by_email("ALICE@example.com").await.unwrap().unwrap();
    assert_eq!(creds.user, created);
    assert!(creds.password_hash.expose().starts_with("$argon2id$"));
    assert!(h.store.user_by_email("bob@example.com").await.unwrap().is_none());
    assert!(h.store.user_by_id(Uuid::now_v7()).await.unwrap().is_none());
}

async fn duplicate_email_conflicts_case_insensitively(h: Harness) {
    user(&h.store, "carol@example.com").await;
    let again = h.store.create_user(new_user("Carol@EXAMPLE.com", None)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM users").await, 1);
}

async fn initial_connection_is_created_with_the_user(h: Harness) {
    let mut demo = new_connection("demo", false);
    demo.driver = Driver::Sqlite;
    demo.host = None;
    demo.port = None;
    demo.username = None;
    demo.password = None;
    demo.database = "/data/demo.db".to_owned();
    let created = h.store.create_user(new_user("dave@example.com", Some(demo))).await.unwrap();
    let connections = h.store.list_connections(created.id).await.unwrap();
    assert_eq!(connections.len(), 1);
    let conn = &connections[0];
    assert!(conn.is_default, "the first connection becomes the default");
    assert_eq!((conn.driver, conn.database.as_str()), (Driver::Sqlite, "/data/demo.db"));
    assert!(conn.host.is_none() && conn.port.is_none() && conn.password.is_none());
    assert_eq!(h.store.default_connection(created.id).await.unwrap().unwrap().id, conn.id);
}

async fn failed_user_creation_stores_nothing(h: Harness) {
    user(&h.store, "erin@example.com").await;
    let again = h.store.create_user(new_user("ERIN@example.com", Some(new_connection("demo", true)))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM connections").await, 0);
}

async fn model_defaults(h: Harness) {
    let u = user(&h.store, "frank@example.com").await;
    assert!(h.store.default_model(u.id).await.unwrap().is_none());
    let first = h.store.create_model(u.id, new_model("first", false)).await.unwrap();
    assert!(first.is_default, "the first model becomes the default");
    let second = h.store.create_model(u.id, new_model("second", false)).await.unwrap();
    assert!(!second.is_default);
    assert_eq!(h.store.default_model(u.id).await.unwrap().unwrap().id, first.id);
    let third = h.store.create_model(u.id, new_model("third", true)).await.unwrap();
    assert!(third.is_default);

    let models = h.store.list_models(u.id).await.unwrap();
    let flags: Vec<_> = models.iter().map(|m| (m.name.as_str(), m.is_default)).collect();
    assert_eq!(flags, [("first", false), ("second", false), ("third", true)]);
    let default = h.store.default_model(u.id).await.unwrap().unwrap();
    assert_eq!(default.id, third.id);
    assert_eq!(default.provider, Provider::Openai);
    assert_eq!(default.model_id, "third-id");
    assert_eq!(default.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
    assert_eq!(default.api_key.unwrap().expose(), "sk-third-plaintext");
    assert_eq!(default.created_at, third.created_at);
    let fetched = h.store.model(u.id, second.id).await.unwrap().unwrap();
    assert_eq!((fetched.name.as_str(), fetched.is_default), ("second", false));
}

async fn connection_defaults_and_fields(h: Harness) {
    let u = user(&h.store, "grace@example.com").await;
    let first = h.store.create_connection(u.id, new_connection("first", false)).await.unwrap();
    assert!(first.is_default);
    let second = h.store.create_connection(u.id, new_connection("second", true)).await.unwrap();
    assert!(second.is_default);
    assert!(!h.store.connection(u.id, first.id).await.unwrap().unwrap().is_default);

    let got = h.store.default_connection(u.id).await.unwrap().unwrap();
    assert_eq!(got.id, second.id);
    assert_eq!(got.user_id, u.id);
    assert_eq!(got.driver, Driver::Mysql);
    assert_eq!(got.host.as_deref(), Some("db.internal"));
    assert_eq!(got.port, Some(3306));
    assert_eq!(got.username.as_deref(), Some("reader"));
    assert_eq!(got.password.unwrap().expose(), "pw-second-plaintext");
    assert_eq!(got.database, "sales");
    assert_eq!(got.created_at, second.created_at);
    let names: Vec<_> = h.store.list_connections(u.id).await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["first", "second"]);
}

async fn concurrent_first_models_make_one_default(h: Harness) {
    let user_id = user(&h.store, "heidi@example.com").await.id;
    let creations = (0..6).map(|i| {
        let store = h.store.clone();
        tokio::spawn(async move { store.create_model(user_id, new_model(&format!("m{i}"), false)).await })
    });
    let created = futures::future::join_all(creations).await;
    let defaults = created.into_iter().filter(|r| r.as_ref().unwrap().as_ref().unwrap().is_default).count();
    assert_eq!(defaults, 1);
    let models = h.store.list_models(user_id).await.unwrap();
    assert_eq!(models.len(), 6);
    assert_eq!(models.iter().filter(|m| m.is_default).count(), 1);
}

async fn models_and_connections_are_scoped_by_user(h: Harness) {
    let owner = user(&h.store, "ivan@example.com").await;
    let other = user(&h.store, "judy@example.com").await;
    let model = h.store.create_model(owner.id, new_model("mine", false)).await.unwrap();
    let conn = h.store.create_connection(owner.id, new_connection("mine", false)).await.unwrap();

    assert!(h.store.model(other.id, model.id).await.unwrap().is_none());
    assert!(h.store.connection(other.id, conn.id).await.unwrap().is_none());
    assert!(h.store.list_models(other.id).await.unwrap().is_empty());
    assert!(h.store.list_connections(other.id).await.unwrap().is_empty());
    assert!(h.store.default_model(other.id).await.unwrap().is_none());
    assert!(h.store.default_connection(other.id).await.unwrap().is_none());

    // The other user's first rows are its own defaults, leaving the owner's untouched.
    assert!(h.store.create_model(other.id, new_model("theirs", false)).await.unwrap().is_default);
    assert!(h.store.create_connection(other.id, new_connection("theirs", true)).await.unwrap().is_default);
    assert_eq!(h.store.default_model(owner.id).await.unwrap().unwrap().id, model.id);
    assert_eq!(h.store.default_connection(owner.id).await.unwrap().unwrap().id, conn.id);
}

async fn owned_rows_need_an_existing_user(h: Harness) {
    let ghost = Uuid::now_v7();
    let model = h.store.create_model(ghost, new_model("m", false)).await;
    assert!(matches!(model, Err(StoreError::NotFound(_))), "{model:?}");
    let conn = h.store.create_connection(ghost, new_connection("c", false)).await;
    assert!(matches!(conn, Err(StoreError::NotFound(_))), "{conn:?}");
    let saved = h.store.save_exchange(exchange(ghost, Uuid::now_v7(), Uuid::now_v7(), 1, at(0))).await;
    assert!(matches!(saved, Err(StoreError::NotFound(_))), "{saved:?}");
}

async fn secrets_are_encrypted_at_rest(h: Harness) {
    let u = user(&h.store, "ken@example.com").await;
    let a = h.store.create_model(u.id, new_model("a", false)).await.unwrap();
    let b = h.store.create_model(u.id, new_model("b", false)).await.unwrap();
    let conn = h.store.create_connection(u.id, new_connection("c", false)).await.unwrap();

    let raw_key = h.raw.text("SELECT api_key_enc FROM models WHERE id = $1", a.id).await.unwrap();
    assert!(raw_key.starts_with("v1:test:"), "{raw_key}");
    assert!(!raw_key.contains("plaintext"), "{raw_key}");
    let raw_password = h.raw.text("SELECT password_enc FROM connections WHERE id = $1", conn.id).await.unwrap();
    assert!(raw_password.starts_with("v1:test:") && !raw_password.contains("plaintext"), "{raw_password}");
    assert_eq!(h.store.connection(u.id, conn.id).await.unwrap().unwrap().password.unwrap().expose(), "pw-c-plaintext");

    // A ciphertext copied into another row does not decrypt there.
    h.raw.exec("UPDATE models SET api_key_enc = $1 WHERE id = $2", Some(raw_key), b.id).await;
    let moved = h.store.model(u.id, b.id).await;
    assert!(matches!(moved, Err(StoreError::Crypto(_))), "{moved:?}");

    // A store opened with another key cannot read the secrets either.
    let other_key = SecretBox::from_base64("test", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=").unwrap();
    let reopened = open(&h.url, other_key, false).await.unwrap();
    assert!(matches!(reopened.model(u.id, a.id).await, Err(StoreError::Crypto(_))));
}

async fn save_exchange_creates_conversation_and_is_idempotent(h: Harness) {
    let u = user(&h.store, "leo@example.com").await;
    let conn = h.store.create_connection(u.id, new_connection("c", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    let ex = exchange(u.id, conversation_id, conn.id, 1, at(0));
    assert!(h.store.save_exchange(ex.clone()).await.unwrap());
    let detail = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(detail.conversation.user_id, u.id);
    assert_eq!(detail.conversation.title, "question 1");
    assert_eq!(detail.conversation.model.as_deref(), Some("gpt-4o"));
    assert_eq!(detail.conversation.connection_id, Some(conn.id));
    assert!(!detail.conversation.is_favorite);
    assert_eq!(detail.messages, [ex.user_message.clone(), ex.assistant_message.clone()]);

    // A redelivered job saves the same exchange again: nothing changes.
    assert!(!h.store.save_exchange(ex.clone()).await.unwrap());
    assert_eq!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap(), detail);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(h.store.message(u.id, ex.assistant_message.id).await.unwrap(), Some(ex.assistant_message));
}

async fn save_exchange_appends_in_order_and_bumps_updated_at(h: Harness) {
    let u = user(&h.store, "mia@example.com").await;
    let conversation_id = Uuid::now_v7();
    // Every message has the same timestamp: the order of insertion decides.
    let first = exchange(u.id, conversation_id, Uuid::now_v7(), 1, at(0));
    assert!(h.store.save_exchange(first).await.unwrap());
    let before = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = exchange(u.id, conversation_id, Uuid::now_v7(), 2, at(0));
    assert!(h.store.save_exchange(second).await.unwrap());
    let after = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(contents(&after.messages), ["question 1", "answer 1", "question 2", "answer 2"]);
    assert_eq!(after.conversation.title, "question 1", "the title is set when the conversation is created");
    assert_eq!(after.conversation.created_at, before.conversation.created_at);
    assert!(
        after.conversation.updated_at > before.conversation.updated_at,
        "{:?} > {:?}",
        after.conversation.updated_at,
        before.conversation.updated_at
    );
}

async fn concurrent_redelivery_saves_once(h: Harness) {
    let u = user(&h.store, "nina@example.com").await;
    let conversation_id = Uuid::now_v7();
    let ex = exchange(u.id, conversation_id, Uuid::now_v7(), 1, at(0));
    let saves = (0..4).map(|_| {
        let (store, ex) = (h.store.clone(), ex.clone());
        tokio::spawn(async move { store.save_exchange(ex).await })
    });
    let results: Vec<bool> = futures::future::join_all(saves).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(results.iter().filter(|saved| **saved).count(), 1, "{results:?}");
    assert_eq!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap().messages.len(), 2);
}

async fn save_exchange_refuses_another_users_conversation(h: Harness) {
    let owner = user(&h.store, "olga@example.com").await;
    let intruder = user(&h.store, "pete@example.com").await;
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(owner.id, conversation_id, Uuid::now_v7(), 1, at(0))).await.unwrap();
    let foreign = exchange(intruder.id, conversation_id, Uuid::now_v7(), 2, at(1));
    let result = h.store.save_exchange(foreign.clone()).await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    assert!(h.store.message(owner.id, foreign.user_message.id).await.unwrap().is_none());
    assert!(h.store.message(intruder.id, foreign.user_message.id).await.unwrap().is_none());
    assert_eq!(h.store.conversation_detail(owner.id, conversation_id).await.unwrap().unwrap().messages.len(), 2);
}

async fn save_exchange_is_atomic(h: Harness) {
    let u = user(&h.store, "quinn@example.com").await;
    let taken = exchange(u.id, Uuid::now_v7(), Uuid::now_v7(), 1, at(0));
    h.store.save_exchange(taken.clone()).await.unwrap();

    // The assistant message's id is already used in another conversation: the whole exchange is refused, and
    // neither the new conversation nor its user message is left behind.
    let conversation_id = Uuid::now_v7();
    let mut clash = exchange(u.id, conversation_id, Uuid::now_v7(), 2, at(1));
    clash.assistant_message.id = taken.assistant_message.id;
    let result = h.store.save_exchange(clash.clone()).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().is_none());
    assert!(h.store.message(u.id, clash.user_message.id).await.unwrap().is_none());
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM conversations").await, 1);
}

async fn save_exchange_drops_a_foreign_connection(h: Harness) {
    let u = user(&h.store, "rita@example.com").await;
    let other = user(&h.store, "sam@example.com").await;
    let theirs = h.store.create_connection(other.id, new_connection("theirs", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(u.id, conversation_id, theirs.id, 1, at(0))).await.unwrap();
    let detail = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(detail.conversation.connection_id, None);
}

async fn conversations_and_messages_are_scoped_by_user(h: Harness) {
    let owner = user(&h.store, "tina@example.com").await;
    let other = user(&h.store, "umar@example.com").await;
    let conversation_id = Uuid::now_v7();
    let ex = exchange(owner.id, conversation_id, Uuid::now_v7(), 1, at(0));
    h.store.save_exchange(ex.clone()).await.unwrap();
    assert!(h.store.conversation_detail(other.id, conversation_id).await.unwrap().is_none());
    assert!(h.store.recent_messages(other.id, conversation_id, 10).await.unwrap().is_empty());
    assert!(h.store.message(other.id, ex.user_message.id).await.unwrap().is_none());
    assert!(h.store.conversation_detail(owner.id, Uuid::now_v7()).await.unwrap().is_none());
    let own = h.store.message(owner.id, ex.user_message.id).await.unwrap().unwrap();
    assert_eq!((own.role, own.metadata), (Role::User, None));
}

async fn recent_messages_limit_and_order(h: Harness) {
    let u = user(&h.store, "vera@example.com").await;
    let conversation_id = Uuid::now_v7();
    for n in 1..=3 {
        let ex = exchange(u.id, conversation_id, Uuid::now_v7(), n, at(i64::from(n) * 1_000_000));
        h.store.save_exchange(ex).await.unwrap();
    }
    let last3 = h.store.recent_messages(u.id, conversation_id, 3).await.unwrap();
    assert_eq!(contents(&last3), ["answer 2", "question 3", "answer 3"]);
    let all = h.store.recent_messages(u.id, conversation_id, 100).await.unwrap();
    assert_eq!(contents(&all), ["question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3"]);
    assert_eq!(all[5].metadata.as_ref().unwrap()["visualization"]["type"], "table");
    assert_eq!(all[4].created_at, at(3_000_000));
    assert!(h.store.recent_messages(u.id, conversation_id, 0).await.unwrap().is_empty());
    assert!(h.store.recent_messages(u.id, Uuid::now_v7(), 5).await.unwrap().is_empty());
}

async fn migrations_are_idempotent(h: Harness) {
    let u = user(&h.store, "walt@example.com").await;
    let again = open(&h.url, secrets(), true).await.unwrap();
    let third = open(&h.url, secrets(), true).await.unwrap();
    assert_eq!(again.user_by_id(u.id).await.unwrap().unwrap(), u);
    assert!(third.user_by_email("walt@example.com").await.unwrap().is_some());
}

#[tokio::test]
async fn unsupported_url_does_not_echo_credentials() {
    let err = open("mysql://root:hunter2@127.0.0.1/db", secrets(), true).await.err().unwrap();
    assert!(matches!(&err, StoreError::UnsupportedUrl(scheme) if scheme == "mysql"), "{err:?}");
    assert!(!err.to_string().contains("hunter2"));
}
