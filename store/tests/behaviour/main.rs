//! Behaviour of the `Store` trait, every case run on SQLite (a temp file) and on PostgreSQL (a fresh database per
//! test, created from `QUERYGPT_TEST_PG_URL` and dropped afterwards).

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::FutureExt;
use querygpt_common::{Driver, Provider};
use querygpt_store::{
    AnswerMetadata, Exchange, Message, NewConnection, NewModel, NewUser, Role, SecretBox, SecretString, Store,
    StoreError, User, open,
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

    /// Runs `sql`, which takes no parameters.
    async fn run(&self, sql: &'static str) {
        on_pool!(self, |pool| sqlx::query(sql).execute(pool).await.map(drop)).unwrap();
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
    store.ping().await.expect("a fresh SQLite store answers a ping");
    let raw = Raw::Sqlite(SqlitePool::connect(&url).await.unwrap());
    case(Harness { store, raw, url }).await;
}

async fn run_postgres<F: Future<Output = ()>>(case: impl FnOnce(Harness) -> F) {
    with_pg_database(|url| async move {
        let store = open(&url, secrets(), true).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        store.ping().await.expect("a fresh PostgreSQL store answers a ping");
        let raw = Raw::Pg(PgPool::connect(&url).await.unwrap());
        case(Harness { store, raw, url }).await;
    })
    .await;
}

/// Runs `case` with the URL of a new, empty PostgreSQL database, dropped afterwards.
async fn with_pg_database<F: Future<Output = ()>>(case: impl FnOnce(String) -> F) {
    let base =
        std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    let db = format!("qgpt_store_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&db);
    let url = url.to_string();

    let outcome = AssertUnwindSafe(case(url)).catch_unwind().await;
    // FORCE ends the pools' connections that are still closing.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&mut admin).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each case (a `pub(crate)` async fn of the named module) once and runs it on both backends.
macro_rules! cases {
    ($($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $(mod $module {
                $(#[tokio::test] async fn $case() { crate::run_sqlite(crate::$module::$case).await })*
            })*
        }
        mod postgres {
            $(mod $module {
                $(#[tokio::test] async fn $case() { crate::run_postgres(crate::$module::$case).await })*
            })*
        }
    };
}

mod accounts;
mod api_keys;
mod conversations;
mod migrations;
mod settings;

cases!(
    accounts: [
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
        update_model_replaces_its_fields,
        update_connection_replaces_its_fields,
        updates_move_the_default,
        deleting_the_default_promotes_the_newest,
        deleted_rows_leave_conversations,
        another_users_rows_are_not_found,
    ],
    api_keys: [
        api_keys_create_list_find_and_revoke,
        api_key_use_is_recorded_at_most_once_a_minute,
        api_keys_are_limited_per_user,
    ],
    conversations: [
        save_exchange_creates_conversation_and_is_idempotent,
        save_exchange_appends_in_order_and_bumps_updated_at,
        concurrent_redelivery_saves_once,
        save_exchange_refuses_another_users_conversation,
        save_exchange_is_atomic,
        save_exchange_of_an_unknown_user_is_not_found,
        save_exchange_drops_a_foreign_connection,
        conversations_and_messages_are_scoped_by_user,
        recent_messages_limit_and_order,
        list_order_paging_and_total,
        list_favorites_only,
        search_english_is_case_insensitive,
        search_chinese_substrings,
        search_is_literal,
        search_is_scoped_by_user,
        delete_conversation_removes_messages_and_hits,
        toggle_favorite_flips,
    ],
    migrations: [migrations_are_idempotent],
    settings: [
        settings_default_and_round_trip,
        save_settings_is_atomic,
        unknown_settings_text_is_an_error,
        question_context_reads_what_a_question_needs,
    ],
);

/// The SQLite search index addresses titles by their conversation's rowid: VACUUM must not renumber them.
#[tokio::test]
async fn sqlite_search_survives_vacuum() {
    run_sqlite(conversations::search_survives_vacuum).await;
}

// ---------------------------------------------------------------- helpers shared by the cases

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
        context_window: Some(8192),
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
    let metadata = (role == Role::Assistant).then(|| AnswerMetadata {
        sql: "SELECT 1".to_owned(),
        execution_time: 0.5,
        rows_count: 1,
        visualization: Some(json!({"type": "table"})),
        ..AnswerMetadata::default()
    });
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

#[tokio::test]
async fn unsupported_url_does_not_echo_credentials() {
    let err = open("mysql://root:hunter2@127.0.0.1/db", secrets(), true).await.err().unwrap();
    assert!(matches!(&err, StoreError::UnsupportedUrl(scheme) if scheme == "mysql"), "{err:?}");
    assert!(!err.to_string().contains("hunter2"));
}
