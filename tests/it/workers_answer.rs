//! The endpoints a worker answers over the bus (model and connection tests, schemas), and the user's config and
//! prompts as the chat uses them.

use crate::in_both_modes;
use crate::support::databases::{self, connection_body};
use crate::support::{Mode, Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

in_both_modes!(
    model_tests_make_a_real_round_trip,
    connection_tests_and_schemas_on_every_database,
    config_values_are_used_by_the_chat,
    prompts_are_what_the_worker_sends,
    an_edited_model_or_connection_serves_the_next_question,
);

const ANSWER: &str = r#"{"sql": "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region", "explanation": "per region"}"#;

/// Customers and their orders, with a foreign key, in every dialect (table-level syntax: MySQL ignores inline
/// `REFERENCES`).
const SHOP_SETUP: &[&str] = &[
    "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2), \
     FOREIGN KEY (customer_id) REFERENCES customers (id))",
];

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::PUT, path, Some(token), Some(body)).await
}

async fn add_model(app: &TestApp, session: &Session, body: Value) -> String {
    let (status, created) = app.post("/models", &session.access_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["data"]["id"].as_str().unwrap().to_owned()
}

fn model_available(models: &Value, id: &str) -> Value {
    let models = models["data"]["models"].as_array().unwrap();
    models.iter().find(|m| m["id"] == id).expect("model listed")["is_available"].clone()
}

async fn model_tests_make_a_real_round_trip(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let token = &session.access_token;
    app.llm.require_api_key("sk-right");
    app.llm.set_default(Reply::text("OK"));
    let base_url = app.llm.openai_base_url();
    let good = add_model(&app, &session, json!({"name": "good", "provider": "openai", "model_id": "gpt-4o", "base_url": base_url, "api_key": "sk-right"})).await;
    let wrong_key = add_model(&app, &session, json!({"name": "bad key", "provider": "openai", "model_id": "gpt-4o", "base_url": base_url, "api_key": "sk-wrong"})).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = add_model(&app, &session, json!({"name": "nowhere", "provider": "openai", "model_id": "gpt-4o", "base_url": format!("http://127.0.0.1:{closed}/v1")})).await;

    let (_, models) = app.get("/models", token).await;
    assert_eq!(model_available(&models, &good), Value::Null, "untested models are neither available nor not");

    let (status, tested) = app.post(&format!("/models/{good}/test"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["available"], true, "{tested}");
    assert_eq!(tested["data"]["reply"], "OK");
    assert!(tested["data"]["latency_ms"].is_u64());
    let request = app.llm.requests().pop().expect("the provider was called");
    assert_eq!(request.header("authorization"), Some("Bearer sk-right"));

    let (status, tested) = app.post(&format!("/models/{wrong_key}/test"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["available"], false);
    assert_eq!(tested["data"]["error"]["kind"], "unauthorized", "{tested}");
    assert_eq!(tested["data"]["error"]["status"], 401);

    let started = Instant::now();
    let (status, tested) = app.post(&format!("/models/{nowhere}/test"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["available"], false);
    assert_eq!(tested["data"]["error"]["kind"], "unreachable", "{tested}");
    assert!(started.elapsed() < Duration::from_secs(10), "a closed port is reported at once");

    let (_, models) = app.get("/models", token).await;
    assert_eq!(model_available(&models, &good), true);
    assert_eq!(model_available(&models, &wrong_key), false);
    assert_eq!(model_available(&models, &nowhere), false);

    // Fixing the key makes the model untested again; the next test passes.
    let (status, updated) = put(&app, &format!("/models/{wrong_key}"), token, json!({"api_key": "sk-right"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["is_available"], Value::Null);
    let (_, tested) = app.post(&format!("/models/{wrong_key}/test"), token, json!({})).await;
    assert_eq!(tested["data"]["available"], true, "{tested}");

    let other = app.register().await;
    let (status, body) = app.post(&format!("/models/{good}/test"), &other.access_token, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}

/// `(connection body, table to add later, expected version prefix)` of a fresh target of each kind.
async fn shop_targets(app: &TestApp) -> Vec<(Value, &'static str)> {
    use sqlx::Connection;
    let sqlite_path = app.data_dir.path().join("shop.db");
    let sqlite_url = format!("sqlite://{}?mode=rwc", sqlite_path.display());
    let pg = databases::fresh_postgres_database().await;
    let mysql = databases::fresh_mysql_database().await;
    let mut conn = sqlx::SqliteConnection::connect(&sqlite_url).await.unwrap();
    for statement in SHOP_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.unwrap();
    }
    let mut conn = sqlx::PgConnection::connect(&pg).await.unwrap();
    for statement in SHOP_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.unwrap();
    }
    sqlx::query("COMMENT ON COLUMN customers.name IS '客户名称'").execute(&mut conn).await.unwrap();
    let mut conn = sqlx::MySqlConnection::connect(&mysql).await.unwrap();
    for statement in SHOP_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.unwrap();
    }
    sqlx::query("ALTER TABLE customers MODIFY name VARCHAR(50) NOT NULL COMMENT '客户名称'")
        .execute(&mut conn)
        .await
        .unwrap();
    vec![
        (json!({"name": "shop sqlite", "driver": "sqlite", "database": sqlite_path.display().to_string()}), "SQLite"),
        (connection_body("shop pg", "postgresql", &pg), "PostgreSQL"),
        (connection_body("shop maria", "mysql", &mysql), "MariaDB"),
    ]
}

async fn connection_tests_and_schemas_on_every_database(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let token = &session.access_token;
    for (body, product) in shop_targets(&app).await {
        let (status, created) = app.post("/connections", token, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created["data"]["is_connected"], Value::Null);

        let (status, tested) = app.post(&format!("/connections/{id}/test"), token, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{product}: {tested}");
        let data = &tested["data"];
        assert_eq!(data["connected"], true, "{product}: {tested}");
        assert!(data["version"].as_str().unwrap().starts_with(product), "{product}: {tested}");
        assert_eq!(data["tables_count"], 2, "{product}: {tested}");
        assert!(data["latency_ms"].is_u64() && data["warnings"].is_array(), "{tested}");
        if product != "SQLite" {
            // The test logins are superusers: layer 2 says so.
            assert!(!data["warnings"].as_array().unwrap().is_empty(), "{product}: {tested}");
        }
        let (_, listed) = app.get("/connections", token).await;
        let listed = listed["data"]["connections"].as_array().unwrap().clone();
        assert_eq!(listed.iter().find(|c| c["id"] == id.as_str()).unwrap()["is_connected"], true);

        let (status, schema) = app.get(&format!("/connections/{id}/schema"), token).await;
        assert_eq!(status, StatusCode::OK, "{product}: {schema}");
        let tables = schema["data"]["tables"].as_array().unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["customers", "orders"], "{product}");
        let orders = &tables[1];
        let id_column = &orders["columns"][0];
        assert_eq!((id_column["name"].as_str(), id_column["primary"].as_bool()), (Some("id"), Some(true)));
        assert_eq!(orders["columns"][1]["nullable"], false, "{product}: {orders}");
        assert_eq!(
            orders["foreign_keys"],
            json!([{"columns": ["customer_id"], "referenced_table": "customers", "referenced_columns": ["id"]}]),
            "{product}"
        );
        if product != "SQLite" {
            assert_eq!(tables[0]["columns"][1]["comment"], "客户名称", "{product}: {}", tables[0]);
        }
    }

    // A wrong password is a failed test, not a failed request, and is remembered.
    let mut broken = connection_body("broken", "postgresql", &databases::pg_url());
    broken["username"] = json!("no_such_user_qg");
    broken["password"] = json!("wrong");
    let (_, created) = app.post("/connections", token, broken).await;
    let id = created["data"]["id"].as_str().unwrap();
    let (status, tested) = app.post(&format!("/connections/{id}/test"), token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["connected"], false, "{tested}");
    assert!(!tested["data"]["message"].as_str().unwrap().is_empty());
    assert!(!tested.to_string().contains("\"wrong\""), "the password must not be echoed: {tested}");
    // Its schema cannot be read: the database's error, not an internal one.
    let (status, schema) = app.get(&format!("/connections/{id}/schema"), token).await;
    assert_eq!(status, StatusCode::FAILED_DEPENDENCY, "{schema}");
    assert_eq!(schema["error"]["code"], "DATABASE_ERROR", "{schema}");
    app.stop().await;
}

/// A schema is cached; `refresh=true` reads the catalog again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_cached_until_refreshed() {
    use sqlx::Connection;
    let app = TestApp::embedded().await;
    let session = app.register().await;
    let (id, path) = app.sqlite_connection(&session).await;
    let table_count = |schema: &Value| schema["data"]["tables"].as_array().unwrap().len();
    let (_, first) = app.get(&format!("/connections/{id}/schema"), &session.access_token).await;
    assert_eq!(table_count(&first), 1, "{first}");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.unwrap();
    sqlx::query("CREATE TABLE returns (id INTEGER PRIMARY KEY)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let (_, cached) = app.get(&format!("/connections/{id}/schema"), &session.access_token).await;
    assert_eq!(table_count(&cached), 1, "served from the cache: {cached}");
    let (_, fresh) = app.get(&format!("/connections/{id}/schema?refresh=true"), &session.access_token).await;
    assert_eq!(table_count(&fresh), 2, "{fresh}");
    app.stop().await;
}

/// Without a worker the API node says so at once instead of waiting out its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worker_is_reported_at_once() {
    let mut app = TestApp::distributed().await;
    let session = app.register().await;
    let (id, _) = app.sqlite_connection(&session).await;
    app.kill_worker(0).await;
    let started = Instant::now();
    let (status, body) = app.post(&format!("/connections/{id}/test"), &session.access_token, json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert_eq!(body["error"]["details"]["reason"], "no_worker", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("worker"));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    app.stop().await;
}

async fn config_values_are_used_by_the_chat(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let token = &session.access_token;
    app.add_openai_model(&session, true).await;
    let mini = add_model(
        &app,
        &session,
        json!({"name": "mini", "provider": "openai", "model_id": "gpt-4o-mini", "base_url": app.llm.openai_base_url()}),
    )
    .await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    app.llm.set_default(Reply::text(ANSWER));

    let (status, config) = app.get("/config", token).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["data"]["language"], "zh");
    assert_eq!(config["data"]["context_rounds"], 3);
    let (status, config) = put(
        &app,
        "/config",
        token,
        json!({"language": "en", "context_rounds": 0, "default_model_id": mini, "default_connection_id": connection_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["data"]["default_model_id"], mini.as_str());

    // No language, model or connection in the request: the config decides.
    let events = app.ask(&session, &[("query", "sales by region")]).await.collect().await;
    assert_eq!(events[0].data["message"], "Analyzing the question...", "{events:?}");
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let conversation_id = events[0].data["conversation_id"].as_str().unwrap().to_owned();
    let request = app.llm.requests().pop().unwrap();
    assert_eq!(request.body["model"], "gpt-4o-mini");
    assert!(request.prompt_text().contains("sales by region"));

    // context_rounds 0: a follow-up does not show the model the earlier SQL; 1 does.
    for (rounds, sees_history) in [(0, false), (1, true)] {
        put(&app, "/config", token, json!({"context_rounds": rounds})).await;
        app.llm.clear_requests();
        let events =
            app.ask(&session, &[("query", "only north"), ("conversation_id", &conversation_id)]).await.collect().await;
        assert_eq!(events.last().unwrap().event, "done", "{events:?}");
        let prompt = app.llm.requests().pop().unwrap().prompt_text();
        assert_eq!(prompt.contains("GROUP BY region"), sees_history, "rounds {rounds}: {prompt}");
    }
    app.stop().await;
}

/// A worker keeps the model and connection of a question for the next ones of the same revision: an edit must reach
/// the very next question all the same.
async fn an_edited_model_or_connection_serves_the_next_question(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let token = &session.access_token;
    let model = app.add_openai_model(&session, true).await;
    let (connection, _) = app.sqlite_connection(&session).await;
    app.llm.set_default(Reply::text(ANSWER));
    let ask = || async {
        app.llm.clear_requests();
        let params = [("query", "sales by region"), ("connection_id", connection.as_str())];
        let events = app.ask(&session, &params).await.collect().await;
        let last = events.last().unwrap();
        (last.event.clone(), last.data.clone(), app.llm.requests().pop().map(|r| r.body["model"].clone()))
    };
    let (event, _, model_name) = ask().await;
    assert_eq!((event.as_str(), model_name), ("done", Some(json!("gpt-4o"))));
    let (event, _, model_name) = ask().await;
    assert_eq!((event.as_str(), model_name), ("done", Some(json!("gpt-4o"))), "the kept records serve again");

    let (status, body) = put(&app, &format!("/models/{model}"), token, json!({"model_id": "gpt-4o-mini"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (event, _, model_name) = ask().await;
    assert_eq!((event.as_str(), model_name), ("done", Some(json!("gpt-4o-mini"))), "the edited model");

    // The connection now names a database without the sales table: the question fails on it, not on the old one.
    let empty = app.data_dir.path().join("empty.db");
    std::fs::File::create(&empty).unwrap();
    let edit = json!({"database": empty.display().to_string()});
    let (status, body) = put(&app, &format!("/connections/{connection}"), token, edit).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (event, data, _) = ask().await;
    assert_eq!(event, "error", "the edited connection: {data}");
    app.stop().await;
}

async fn prompts_are_what_the_worker_sends(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let token = &session.access_token;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    app.llm.set_default(Reply::text(ANSWER));

    let custom = json!({
        "system_prompt": "CUSTOM SYSTEM for {dialect}",
        "sql_generation": "CUSTOM ASK {question} OVER {schema}",
        "explanation": "Return JSON {{\"sql\": \"...\"}} in {language}.",
    });
    let (status, prompts) = put(&app, "/prompts", token, custom).await;
    assert_eq!(status, StatusCode::OK, "{prompts}");
    assert_eq!(prompts["data"]["customized"], json!(["system_prompt", "sql_generation", "explanation"]));

    let events = app.ask(&session, &[("query", "总销售额"), ("connection_id", &connection_id)]).await.collect().await;
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let request = app.llm.requests().pop().unwrap();
    let prompt = request.prompt_text();
    assert!(prompt.contains("CUSTOM SYSTEM for SQLite"), "{prompt}");
    assert!(prompt.contains("Return JSON {\"sql\": \"...\"} in Chinese."), "{prompt}");
    assert!(prompt.contains("CUSTOM ASK 总销售额 OVER TABLE sales ("), "{prompt}");

    let (status, reset) = app.post("/prompts/reset", token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["data"]["customized"], json!([]));
    app.llm.clear_requests();
    let events = app.ask(&session, &[("query", "总销售额"), ("connection_id", &connection_id)]).await.collect().await;
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let prompt = app.llm.requests().pop().unwrap().prompt_text();
    assert!(!prompt.contains("CUSTOM"), "{prompt}");
    assert!(prompt.contains(reset["data"]["system_prompt"].as_str().unwrap().replace("{dialect}", "SQLite").as_str()));
    app.stop().await;
}
