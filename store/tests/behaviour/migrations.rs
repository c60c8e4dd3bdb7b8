//! Migrations: running them again changes nothing, and a database made by the first version keeps its data and
//! gets it counted and indexed by the second.

use crate::{Harness, Raw, secrets, user, with_pg_database};
use querygpt_store::{ConversationQuery, Role, open};
use serde_json::json;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::types::Json;
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use uuid::Uuid;

pub(crate) async fn migrations_are_idempotent(h: Harness) {
    let u = user(&h.store, "walt@example.com").await;
    let again = open(&h.url, secrets(), true).await.unwrap();
    let third = open(&h.url, secrets(), true).await.unwrap();
    assert_eq!(again.user_by_id(u.id).await.unwrap().unwrap(), u);
    assert!(third.user_by_email("walt@example.com").await.unwrap().is_some());
}

const V1_USER: &str = "INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at) \
    VALUES ($1, 'old@example.com', 'Old', 'hash', $2, $2)";
const V1_CONVERSATION: &str = "INSERT INTO conversations (id, user_id, title, is_favorite, created_at, updated_at) \
    VALUES ($1, $2, 'Quarterly REVENUE', FALSE, $3, $3)";
const V1_MESSAGE: &str = "INSERT INTO messages (id, conversation_id, role, content, metadata, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";

#[tokio::test]
async fn sqlite_upgrade_from_the_first_version() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
    let raw = Raw::Sqlite(SqlitePool::connect_with(options).await.unwrap());
    upgrade_from_the_first_version(url, raw, include_str!("../../../migrations/sqlite/0001_init.sql")).await;
}

#[tokio::test]
async fn postgres_upgrade_from_the_first_version() {
    with_pg_database(|url| async move {
        let raw = Raw::Pg(PgPool::connect(&url).await.unwrap());
        upgrade_from_the_first_version(url, raw, include_str!("../../../migrations/postgres/0001_init.sql")).await;
    })
    .await;
}

/// Writes a conversation as the first version did (`first_migration` only, the answer's metadata as free JSON),
/// then opens the store, which runs the later migrations.
async fn upgrade_from_the_first_version(url: String, raw: Raw, first_migration: &'static str) {
    let first = Migration::new(1, "init".into(), MigrationType::Simple, first_migration.into_sql_str(), false);
    let migrator = Migrator::with_migrations(vec![first]);
    on_pool!(&raw, |pool| migrator.run(pool).await).unwrap();
    let (user_id, conversation_id, now) = (Uuid::now_v7(), Uuid::now_v7(), chrono::Utc::now());
    let metadata = json!({"sql": "SELECT 1", "execution_time": 0.25, "rows_count": 1, "truncated": false,
        "columns": ["n"], "visualization": null, "explanation": null, "connection_id": null, "cost": 3});
    on_pool!(&raw, |pool| async {
        sqlx::query(V1_USER).bind(user_id).bind(now).execute(pool).await?;
        sqlx::query(V1_CONVERSATION).bind(conversation_id).bind(user_id).bind(now).execute(pool).await?;
        for (role, content, metadata) in
            [("user", "每个品类的销售额", None), ("assistant", "家电最高", Some(Json(&metadata)))]
        {
            let message = sqlx::query(V1_MESSAGE).bind(Uuid::now_v7()).bind(conversation_id).bind(role).bind(content);
            message.bind(metadata).bind(now).execute(pool).await?;
        }
        Ok::<_, sqlx::Error>(())
    }
    .await)
    .unwrap();

    let store = open(&url, secrets(), true).await.unwrap();
    let all = ConversationQuery { limit: 10, offset: 0, favorites_only: false, search: None };
    let page = store.list_conversations(user_id, &all).await.unwrap();
    assert_eq!((page.total, page.items[0].message_count), (1, 2));
    for text in ["revenue", "Quarterly", "销售额", "销售", "家电"] {
        let query = ConversationQuery { search: Some(text.to_owned()), ..all.clone() };
        assert_eq!(store.list_conversations(user_id, &query).await.unwrap().total, 1, "{text}");
    }
    let detail = store.conversation_detail(user_id, conversation_id).await.unwrap().unwrap();
    let answer = detail.messages.iter().find(|m| m.role == Role::Assistant).unwrap();
    let read = answer.metadata.as_ref().unwrap();
    assert_eq!(
        (read.sql.as_str(), read.columns.as_slice(), read.visualization.as_ref()),
        ("SELECT 1", &["n".to_owned()][..], None)
    );
    assert_eq!(read.extra.get("cost"), Some(&json!(3)), "fields of other versions are kept");
}
