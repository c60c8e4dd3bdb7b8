//! Users, models and connections: creation, defaults, updates, deletes, test results and scoping by user.

use crate::{Harness, at, exchange, new_connection, new_model, new_user, user};

use querygpt_common::{Driver, Provider};
use querygpt_store::{
    Connection, DefaultChoice, Model, NewConnection, NewModel, SecretBox, SecretString, StoreError, UserSettings, open,
};
use uuid::Uuid;

fn default_names<'a>(rows: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<&'a str> {
    rows.into_iter().filter(|(_, is_default)| *is_default).map(|(name, _)| name).collect()
}

fn default_models(models: &[Model]) -> Vec<&str> {
    default_names(models.iter().map(|m| (m.name.as_str(), m.is_default)))
}

fn default_connections(connections: &[Connection]) -> Vec<&str> {
    default_names(connections.iter().map(|c| (c.name.as_str(), c.is_default)))
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

/// Waits past the current microsecond, so that a write after it gets a later timestamp.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}
pub(crate) async fn user_create_and_lookup(h: Harness) {
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

pub(crate) async fn duplicate_email_conflicts_case_insensitively(h: Harness) {
    user(&h.store, "carol@example.com").await;
    let again = h.store.create_user(new_user("Carol@EXAMPLE.com", None)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM users").await, 1);
}

pub(crate) async fn initial_connection_is_created_with_the_user(h: Harness) {
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

pub(crate) async fn failed_user_creation_stores_nothing(h: Harness) {
    user(&h.store, "erin@example.com").await;
    let again = h.store.create_user(new_user("ERIN@example.com", Some(new_connection("demo", true)))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM connections").await, 0);
}

pub(crate) async fn model_defaults(h: Harness) {
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

pub(crate) async fn connection_defaults_and_fields(h: Harness) {
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

pub(crate) async fn concurrent_first_models_make_one_default(h: Harness) {
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

pub(crate) async fn models_and_connections_are_scoped_by_user(h: Harness) {
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

pub(crate) async fn owned_rows_need_an_existing_user(h: Harness) {
    let ghost = Uuid::now_v7();
    let model = h.store.create_model(ghost, new_model("m", false)).await;
    assert!(matches!(model, Err(StoreError::NotFound(_))), "{model:?}");
    let conn = h.store.create_connection(ghost, new_connection("c", false)).await;
    assert!(matches!(conn, Err(StoreError::NotFound(_))), "{conn:?}");
    let saved = h.store.save_exchange(exchange(ghost, Uuid::now_v7(), Uuid::now_v7(), 1, at(0))).await;
    assert!(matches!(saved, Err(StoreError::NotFound(_))), "{saved:?}");
}

pub(crate) async fn secrets_are_encrypted_at_rest(h: Harness) {
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

pub(crate) async fn update_model_replaces_its_fields(h: Harness) {
    let u = user(&h.store, "xena@example.com").await;
    let model = h.store.create_model(u.id, new_model("m", false)).await.unwrap();
    assert_eq!(model.is_available, None, "never tested");
    h.store.set_model_available(u.id, model.id, true).await.unwrap();
    assert_eq!(h.store.model(u.id, model.id).await.unwrap().unwrap().is_available, Some(true));

    tick().await;
    // Another name says nothing about the endpoint: the test result stays.
    let mut values = NewModel { name: "renamed".to_owned(), ..new_model("m", false) };
    let renamed = h.store.update_model(u.id, model.id, values.clone()).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.is_available), ("renamed", Some(true)));
    assert!(renamed.is_default, "`is_default: false` leaves the flag as it is");
    assert_eq!((renamed.id, renamed.created_at), (model.id, model.created_at));
    assert_eq!(model.context_window, Some(8192));
    let window = NewModel { context_window: Some(32_768), ..values.clone() };
    let widened = h.store.update_model(u.id, model.id, window).await.unwrap();
    assert_eq!((widened.context_window, widened.is_available), (Some(32_768), Some(true)), "a window is no retest");
    let stored = h.store.model(u.id, model.id).await.unwrap().unwrap();
    assert_eq!(stored.context_window, Some(32_768));
    h.store.update_model(u.id, model.id, values.clone()).await.unwrap();
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM models WHERE updated_at > created_at").await, 1);

    let changes: [fn(&mut NewModel); 5] = [
        |m| m.provider = Provider::Anthropic,
        |m| m.model_id = "claude".to_owned(),
        |m| m.base_url = None,
        |m| m.api_key = Some(SecretString::new("sk-rotated")),
        |m| m.api_key = None,
    ];
    for change in changes {
        h.store.set_model_available(u.id, model.id, false).await.unwrap();
        change(&mut values);
        let updated = h.store.update_model(u.id, model.id, values.clone()).await.unwrap();
        assert_eq!(updated.is_available, None, "{values:?}");
    }
    h.store.set_model_available(u.id, model.id, false).await.unwrap();
    let stored = h.store.model(u.id, model.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.provider, stored.model_id.as_str()),
        ("renamed", Provider::Anthropic, "claude")
    );
    assert!(stored.base_url.is_none() && stored.api_key.is_none());
    assert_eq!(stored.is_available, Some(false));
}

pub(crate) async fn update_connection_replaces_its_fields(h: Harness) {
    let u = user(&h.store, "yuri@example.com").await;
    let conn = h.store.create_connection(u.id, new_connection("c", false)).await.unwrap();
    assert_eq!(conn.is_connected, None, "never tested");
    h.store.set_connection_connected(u.id, conn.id, true).await.unwrap();

    tick().await;
    let mut values = NewConnection { name: "renamed".to_owned(), ..new_connection("c", false) };
    let renamed = h.store.update_connection(u.id, conn.id, values.clone()).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.is_connected, renamed.is_default), ("renamed", Some(true), true));
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM connections WHERE updated_at > created_at").await, 1);

    let changes: [fn(&mut NewConnection); 6] = [
        |c| c.driver = Driver::Postgresql,
        |c| c.host = Some("replica.internal".to_owned()),
        |c| c.port = Some(5433),
        |c| c.username = None,
        |c| c.password = Some(SecretString::new("pw-rotated")),
        |c| c.database = "analytics".to_owned(),
    ];
    for change in changes {
        h.store.set_connection_connected(u.id, conn.id, true).await.unwrap();
        change(&mut values);
        let updated = h.store.update_connection(u.id, conn.id, values.clone()).await.unwrap();
        assert_eq!(updated.is_connected, None, "{values:?}");
    }
    let stored = h.store.connection(u.id, conn.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.driver, stored.host.as_deref(), stored.port),
        (Driver::Postgresql, Some("replica.internal"), Some(5433))
    );
    assert_eq!((stored.username, stored.database.as_str()), (None, "analytics"));
    assert_eq!(stored.password.unwrap().expose(), "pw-rotated");
}

pub(crate) async fn updates_move_the_default(h: Harness) {
    let u = user(&h.store, "zoe@example.com").await;
    let a = h.store.create_model(u.id, new_model("a", false)).await.unwrap();
    let b = h.store.create_model(u.id, new_model("b", false)).await.unwrap();
    assert!(h.store.update_model(u.id, b.id, new_model("b", true)).await.unwrap().is_default);
    assert_eq!(default_models(&h.store.list_models(u.id).await.unwrap()), ["b"]);
    // `false` neither takes the flag away nor gives it.
    assert!(h.store.update_model(u.id, b.id, new_model("b", false)).await.unwrap().is_default);
    assert!(!h.store.update_model(u.id, a.id, new_model("a", false)).await.unwrap().is_default);
    assert_eq!(default_models(&h.store.list_models(u.id).await.unwrap()), ["b"]);

    let x = h.store.create_connection(u.id, new_connection("x", false)).await.unwrap();
    let y = h.store.create_connection(u.id, new_connection("y", false)).await.unwrap();
    assert!(h.store.update_connection(u.id, y.id, new_connection("y", true)).await.unwrap().is_default);
    assert!(!h.store.update_connection(u.id, x.id, new_connection("x", false)).await.unwrap().is_default);
    assert_eq!(default_connections(&h.store.list_connections(u.id).await.unwrap()), ["y"]);
}

pub(crate) async fn deleting_the_default_promotes_the_newest(h: Harness) {
    let u = user(&h.store, "abe@example.com").await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        ids.push(h.store.create_model(u.id, new_model(name, name == "b")).await.unwrap().id);
    }
    let [a, b, c, d] = ids[..] else { unreachable!() };
    // Not the default: the default stays.
    h.store.delete_model(u.id, c).await.unwrap();
    assert_eq!(default_models(&h.store.list_models(u.id).await.unwrap()), ["b"]);
    // The default: the most recently created remaining one takes over.
    h.store.delete_model(u.id, b).await.unwrap();
    assert_eq!(default_models(&h.store.list_models(u.id).await.unwrap()), ["d"]);
    h.store.delete_model(u.id, d).await.unwrap();
    assert_eq!(default_models(&h.store.list_models(u.id).await.unwrap()), ["a"]);
    h.store.delete_model(u.id, a).await.unwrap();
    assert!(h.store.list_models(u.id).await.unwrap().is_empty());
    assert!(h.store.default_model(u.id).await.unwrap().is_none());
    not_found(h.store.delete_model(u.id, a).await);

    let x = h.store.create_connection(u.id, new_connection("x", false)).await.unwrap();
    let y = h.store.create_connection(u.id, new_connection("y", false)).await.unwrap();
    h.store.create_connection(u.id, new_connection("z", false)).await.unwrap();
    h.store.delete_connection(u.id, x.id).await.unwrap();
    assert_eq!(default_connections(&h.store.list_connections(u.id).await.unwrap()), ["z"]);
    h.store.delete_connection(u.id, y.id).await.unwrap();
    assert_eq!(default_connections(&h.store.list_connections(u.id).await.unwrap()), ["z"]);
    // A new first row after the last one went is the default again.
    let z = h.store.default_connection(u.id).await.unwrap().unwrap();
    h.store.delete_connection(u.id, z.id).await.unwrap();
    assert!(h.store.default_connection(u.id).await.unwrap().is_none());
    assert!(h.store.create_connection(u.id, new_connection("w", false)).await.unwrap().is_default);
}

pub(crate) async fn deleted_rows_leave_conversations(h: Harness) {
    let u = user(&h.store, "bea@example.com").await;
    let model = h.store.create_model(u.id, new_model("gpt-4o", false)).await.unwrap();
    let conn = h.store.create_connection(u.id, new_connection("c", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(u.id, conversation_id, conn.id, 1, at(0))).await.unwrap();
    h.store.delete_model(u.id, model.id).await.unwrap();
    h.store.delete_connection(u.id, conn.id).await.unwrap();
    let detail = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!((detail.conversation.model.as_deref(), detail.conversation.connection_id), (Some("gpt-4o"), None));
    assert_eq!(detail.messages.len(), 2);
}

/// Every method that takes the id of a user's row answers `NotFound` for another user's row and leaves it as it is.
pub(crate) async fn another_users_rows_are_not_found(h: Harness) {
    let owner = user(&h.store, "cleo@example.com").await;
    let other = user(&h.store, "dina@example.com").await;
    let model = h.store.create_model(owner.id, new_model("mine", false)).await.unwrap();
    let conn = h.store.create_connection(owner.id, new_connection("mine", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(owner.id, conversation_id, conn.id, 1, at(0))).await.unwrap();
    let their_model = h.store.create_model(other.id, new_model("theirs", false)).await.unwrap();
    let their_conn = h.store.create_connection(other.id, new_connection("theirs", false)).await.unwrap();

    let (s, o) = (&h.store, other.id);
    not_found(s.update_model(o, model.id, new_model("stolen", true)).await);
    not_found(s.set_model_available(o, model.id, true).await);
    not_found(s.delete_model(o, model.id).await);
    not_found(s.update_connection(o, conn.id, new_connection("stolen", true)).await);
    not_found(s.set_connection_connected(o, conn.id, true).await);
    not_found(s.delete_connection(o, conn.id).await);
    not_found(s.delete_conversation(o, conversation_id).await);
    not_found(s.toggle_favorite(o, conversation_id).await);
    let choice = DefaultChoice { model_id: Some(model.id), connection_id: None };
    not_found(s.save_user_settings(o, &UserSettings::default(), choice).await);
    // Ids that exist nowhere are not found either.
    not_found(s.update_model(owner.id, Uuid::now_v7(), new_model("x", false)).await);
    not_found(s.set_connection_connected(owner.id, Uuid::now_v7(), true).await);
    not_found(s.toggle_favorite(owner.id, Uuid::now_v7()).await);

    let mine = s.model(owner.id, model.id).await.unwrap().unwrap();
    assert_eq!((mine.name.as_str(), mine.is_default, mine.is_available), ("mine", true, None));
    let mine = s.connection(owner.id, conn.id).await.unwrap().unwrap();
    assert_eq!((mine.name.as_str(), mine.is_default, mine.is_connected), ("mine", true, None));
    let conversation = s.conversation(owner.id, conversation_id).await.unwrap().unwrap();
    assert!(!conversation.is_favorite);
    // The other user's own defaults survived the refused attempts to take them over.
    assert_eq!(s.default_model(o).await.unwrap().unwrap().id, their_model.id);
    assert_eq!(s.default_connection(o).await.unwrap().unwrap().id, their_conn.id);
}
