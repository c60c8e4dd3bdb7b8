//! Per-user settings, saved together with the choice of default model and connection.

use crate::{Harness, at, exchange, new_connection, new_model, user};
use querygpt_common::prompts::PromptSet;
use querygpt_common::{Language, Theme, ViewMode};
use querygpt_store::{DefaultChoice, QuestionRefs, StoreError, UserSettings};
use uuid::Uuid;

fn custom_settings() -> UserSettings {
    UserSettings {
        language: Some(Language::En),
        theme: Some(Theme::Dark),
        view_mode: Some(ViewMode::Developer),
        context_rounds: Some(5),
        prompts: PromptSet {
            system: Some("你是一名 SQL 专家".to_owned()),
            sql_generation: Some("Schema: {schema}\nQuestion: {question}".to_owned()),
            ..PromptSet::default()
        },
    }
}

pub(crate) async fn settings_default_and_round_trip(h: Harness) {
    let u = user(&h.store, "pia@example.com").await;
    let other = user(&h.store, "quin@example.com").await;
    assert_eq!(h.store.user_settings(u.id).await.unwrap(), UserSettings::default());
    h.store.create_model(u.id, new_model("a", false)).await.unwrap();
    let b = h.store.create_model(u.id, new_model("b", false)).await.unwrap();
    h.store.create_connection(u.id, new_connection("x", false)).await.unwrap();
    let y = h.store.create_connection(u.id, new_connection("y", false)).await.unwrap();

    let choice = DefaultChoice { model_id: Some(b.id), connection_id: Some(y.id) };
    h.store.save_user_settings(u.id, &custom_settings(), choice).await.unwrap();
    assert_eq!(h.store.user_settings(u.id).await.unwrap(), custom_settings());
    assert_eq!(h.store.default_model(u.id).await.unwrap().unwrap().id, b.id);
    assert_eq!(h.store.default_connection(u.id).await.unwrap().unwrap().id, y.id);
    assert_eq!(h.store.list_models(u.id).await.unwrap().iter().filter(|m| m.is_default).count(), 1);
    assert_eq!(h.store.list_connections(u.id).await.unwrap().iter().filter(|c| c.is_default).count(), 1);
    assert_eq!(h.store.user_settings(other.id).await.unwrap(), UserSettings::default());

    // A save replaces every setting; naming no default leaves the defaults as they are.
    let only_theme = UserSettings { theme: Some(Theme::System), ..UserSettings::default() };
    h.store.save_user_settings(u.id, &only_theme, DefaultChoice::default()).await.unwrap();
    assert_eq!(h.store.user_settings(u.id).await.unwrap(), only_theme);
    assert_eq!(h.store.default_model(u.id).await.unwrap().unwrap().id, b.id);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM user_settings").await, 1);
}

pub(crate) async fn save_settings_is_atomic(h: Harness) {
    let u = user(&h.store, "ray@example.com").await;
    let other = user(&h.store, "sue@example.com").await;
    let a = h.store.create_model(u.id, new_model("a", false)).await.unwrap();
    let b = h.store.create_model(u.id, new_model("b", false)).await.unwrap();
    let x = h.store.create_connection(u.id, new_connection("x", false)).await.unwrap();
    let theirs = h.store.create_model(other.id, new_model("theirs", false)).await.unwrap();
    let saved = UserSettings { language: Some(Language::Zh), ..UserSettings::default() };
    h.store.save_user_settings(u.id, &saved, DefaultChoice::default()).await.unwrap();

    let refused = [
        (DefaultChoice { model_id: Some(theirs.id), connection_id: Some(x.id) }, "model"),
        // The model comes first and is valid: its change is rolled back with the rest.
        (DefaultChoice { model_id: Some(b.id), connection_id: Some(Uuid::now_v7()) }, "connection"),
    ];
    for (choice, what) in refused {
        let result = h.store.save_user_settings(u.id, &custom_settings(), choice).await;
        assert!(matches!(&result, Err(StoreError::NotFound(w)) if w == what), "{result:?}");
        assert_eq!(h.store.user_settings(u.id).await.unwrap(), saved);
        assert_eq!(h.store.default_model(u.id).await.unwrap().unwrap().id, a.id);
        assert_eq!(h.store.default_connection(u.id).await.unwrap().unwrap().id, x.id);
    }
    assert_eq!(h.store.default_model(other.id).await.unwrap().unwrap().id, theirs.id);
    let ghost = h.store.save_user_settings(Uuid::now_v7(), &saved, DefaultChoice::default()).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

pub(crate) async fn unknown_settings_text_is_an_error(h: Harness) {
    let u = user(&h.store, "tom@example.com").await;
    h.store.save_user_settings(u.id, &custom_settings(), DefaultChoice::default()).await.unwrap();
    h.raw.exec("UPDATE user_settings SET theme = $1 WHERE user_id = $2", Some("neon".to_owned()), u.id).await;
    let read = h.store.user_settings(u.id).await;
    assert!(matches!(&read, Err(StoreError::Database(e)) if e.to_string().contains("neon")), "{read:?}");
}

pub(crate) async fn question_context_reads_what_a_question_needs(h: Harness) {
    let u = user(&h.store, "rae@example.com").await;
    let other = user(&h.store, "sol@example.com").await;
    let nothing = h.store.question_context(u.id, QuestionRefs::default()).await.unwrap();
    assert_eq!(nothing.settings, UserSettings::default());
    assert!(nothing.model.is_none() && nothing.connection.is_none() && nothing.conversation.is_none());
    let nobody = h.store.question_context(Uuid::now_v7(), QuestionRefs::default()).await;
    assert!(matches!(nobody, Err(StoreError::NotFound(_))), "{nobody:?}");

    let a = h.store.create_model(u.id, new_model("a", true)).await.unwrap();
    let b = h.store.create_model(u.id, new_model("b", false)).await.unwrap();
    let x = h.store.create_connection(u.id, new_connection("x", true)).await.unwrap();
    let y = h.store.create_connection(u.id, new_connection("y", false)).await.unwrap();
    let theirs_model = h.store.create_model(other.id, new_model("t", true)).await.unwrap();
    let theirs_connection = h.store.create_connection(other.id, new_connection("t", true)).await.unwrap();
    h.store.save_user_settings(u.id, &custom_settings(), DefaultChoice::default()).await.unwrap();
    let ids =
        |c: &querygpt_store::QuestionContext| (c.model.as_ref().map(|m| m.id), c.connection.as_ref().map(|c| c.id));

    let defaults = h.store.question_context(u.id, QuestionRefs::default()).await.unwrap();
    assert_eq!(defaults.settings, custom_settings());
    assert_eq!(ids(&defaults), (Some(a.id), Some(x.id)));
    // The records as the other reads return them, secrets opened.
    let (model, connection) = (defaults.model.unwrap(), defaults.connection.unwrap());
    assert_eq!(format!("{model:?}"), format!("{:?}", h.store.model(u.id, a.id).await.unwrap().unwrap()));
    assert_eq!(format!("{connection:?}"), format!("{:?}", h.store.connection(u.id, x.id).await.unwrap().unwrap()));
    assert_eq!(
        model.api_key.as_ref().map(|k| k.expose().to_owned()),
        new_model("a", true).api_key.map(|k| k.expose().to_owned())
    );
    assert_eq!(connection.updated_at, x.updated_at);

    let named = QuestionRefs { model: Some(b.id), connection: Some(y.id), conversation: None };
    assert_eq!(ids(&h.store.question_context(u.id, named).await.unwrap()), (Some(b.id), Some(y.id)));
    let foreign =
        QuestionRefs { model: Some(theirs_model.id), connection: Some(theirs_connection.id), conversation: None };
    assert_eq!(ids(&h.store.question_context(u.id, foreign).await.unwrap()), (None, None), "another user's");

    // A conversation brings its connection, unless the question names one.
    let conversation = Uuid::now_v7();
    h.store.save_exchange(exchange(u.id, conversation, y.id, 1, at(0))).await.unwrap();
    let continued = QuestionRefs { conversation: Some(conversation), ..QuestionRefs::default() };
    let context = h.store.question_context(u.id, continued).await.unwrap();
    assert_eq!((context.conversation, ids(&context)), (Some(conversation), (Some(a.id), Some(y.id))));
    let elsewhere = QuestionRefs { connection: Some(x.id), ..continued };
    assert_eq!(ids(&h.store.question_context(u.id, elsewhere).await.unwrap()), (Some(a.id), Some(x.id)));
    let not_theirs = h.store.question_context(other.id, continued).await.unwrap();
    assert_eq!(not_theirs.conversation, None, "another user's conversation");
}
