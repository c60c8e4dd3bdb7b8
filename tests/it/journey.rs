//! The first user journey: register, log in, add a model and a connection, ask, read the stored conversation,
//! continue it.

use crate::in_both_modes;
use crate::support::databases::{self, connection_body};
use crate::support::{Mode, Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

in_both_modes!(account_lifecycle, ask_and_continue_a_conversation, anthropic_models_answer_too);

const REGION_TOTALS: &str = r#"{"sql": "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region", "explanation": "Sales per region"}"#;

async fn account_lifecycle(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;

    let (status, login) = app
        .request(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": session.email.to_uppercase(), "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["success"], true);
    assert_eq!(login["data"]["token_type"], "bearer");
    assert!(login["data"]["expires_in"].as_u64().unwrap() > 0);

    let (status, refreshed) = app
        .request(reqwest::Method::POST, "/auth/refresh", None, Some(json!({"refresh_token": session.refresh_token})))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new_access = refreshed["data"]["access_token"].as_str().unwrap();

    let (status, me) = app.get("/auth/me", new_access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["data"]["id"], session.user_id.as_str());
    assert_eq!(me["data"]["email"], session.email.as_str());
    assert_eq!(me["data"]["display_name"], "测试用户");
    assert_eq!(me["data"]["role"], "user");
    assert!(me["data"].get("password_hash").is_none());

    let (status, wrong) = app
        .request(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": session.email, "password": "wrong password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["error"]["code"], "UNAUTHORIZED");
    app.stop().await;
}

/// Adds a target connection for the test's mode and returns `(connection id, driver)` pairs to ask on.
async fn add_targets(app: &TestApp, session: &Session) -> Vec<(String, &'static str)> {
    let sqlite_path = databases::sqlite_target(app.data_dir.path()).await;
    let mut bodies = vec![(json!({"name": "local sqlite", "driver": "sqlite", "database": sqlite_path}), "sqlite")];
    if app.mode == Mode::Distributed {
        let mut pg = connection_body("pg sales", "postgresql", &databases::postgres_target().await);
        pg["password"] = json!("pg-secret-password");
        bodies.push((pg, "postgresql"));
        bodies.push((connection_body("maria sales", "mysql", &databases::mysql_target().await), "mysql"));
    }
    let mut ids = Vec::new();
    for (body, driver) in bodies {
        let (status, created) = app.post("/connections", &session.access_token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push((created["data"]["id"].as_str().unwrap().to_string(), driver));
    }
    let (status, listed) = app.get("/connections", &session.access_token).await;
    assert_eq!(status, StatusCode::OK);
    let text = listed.to_string();
    assert!(!text.contains("pg-secret-password"), "a password leaked: {text}");
    assert!(!text.contains("\"password\""), "connections must not show passwords: {text}");
    ids
}

async fn ask_and_continue_a_conversation(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    let model_id = app.add_openai_model(&session, true).await;
    let (_, models) = app.get("/models", &session.access_token).await;
    assert_eq!(models["data"]["models"][0]["id"], model_id.as_str());
    assert_eq!(models["data"]["models"][0]["provider"], "openai");
    assert_eq!(models["data"]["models"][0]["is_default"], true);
    assert!(!models.to_string().contains("sk-test-secret-123"), "api key leaked: {models}");

    app.llm.set_default(Reply::text(format!("Here you go:\n```json\n{REGION_TOTALS}\n```")));
    for (connection_id, driver) in add_targets(&app, &session).await {
        let mut stream = app.ask(&session, &[("query", "各地区销售额"), ("connection_id", &connection_id)]).await;
        let events = stream.collect().await;
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names,
            ["progress", "progress", "progress", "result", "visualization", "done"],
            "{driver}: {events:?}"
        );
        let stages: Vec<&Value> = events[..3].iter().map(|e| &e.data["stage"]).collect();
        assert_eq!(stages, [&json!("analyzing"), &json!("generating_sql"), &json!("executing")]);
        let conversation_id = events[0].data["conversation_id"].as_str().expect("first event names the conversation");
        assert_eq!(stream.conversation_id_header.as_deref(), Some(conversation_id));

        let result = &events[3].data;
        assert_eq!(result["type"], "result");
        assert!(
            result["sql"].as_str().unwrap().starts_with("SELECT region, SUM(amount) AS total FROM sales"),
            "{driver}: {result}"
        );
        assert_eq!(result["rows_count"], 3, "{driver}: {result}");
        assert_eq!(result["data"][0]["region"], "north");
        assert_eq!(result["data"][0]["total"].as_f64(), Some(230.5), "{driver}: {result}");
        assert_eq!(events[4].data["chart"]["type"], "pie");
        let done = &events[5].data;
        assert_eq!(done["conversation_id"], conversation_id);
        let message_id = done["message_id"].as_str().unwrap();

        let (status, conversation) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
        assert_eq!(status, StatusCode::OK, "{conversation}");
        let data = &conversation["data"];
        assert_eq!(data["title"], "各地区销售额");
        assert_eq!(data["connection_id"], connection_id.as_str());
        let messages = data["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "user");
        assert_eq!(messages[0]["content"], "各地区销售额");
        assert_eq!(messages[1]["id"], message_id);
        assert_eq!(messages[1]["role"], "assistant");
        assert_eq!(messages[1]["metadata"]["sql"], result["sql"]);
        assert_eq!(messages[1]["metadata"]["rows_count"], 3);
        assert!(messages[1]["metadata"]["execution_time"].as_f64().unwrap() >= 0.0);
        assert_eq!(messages[1]["metadata"]["visualization"]["type"], "pie");

        // Continue the conversation: the earlier SQL reaches the LLM, and the answer is appended.
        app.llm.clear_requests();
        app.llm.reply(Reply::text(
            "```sql\nSELECT region, SUM(amount) AS total FROM sales WHERE region = 'north' GROUP BY region\n```",
        ));
        let mut stream =
            app.ask(&session, &[("query", "只看北区"), ("conversation_id", conversation_id), ("language", "en")]).await;
        let events = stream.collect().await;
        assert_eq!(events.last().unwrap().event, "done", "{driver}: {events:?}");
        assert_eq!(events[0].data["message"], "Analyzing the question...");
        assert_eq!(events[3].data["rows_count"], 1);
        let prompt = app.llm.requests()[0].prompt_text();
        assert!(prompt.contains("GROUP BY region ORDER BY region"), "history missing from prompt: {prompt}");
        assert!(prompt.contains("只看北区"));
        let (_, conversation) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
        assert_eq!(conversation["data"]["messages"].as_array().unwrap().len(), 4);
    }
    app.stop().await;
}

async fn anthropic_models_answer_too(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (status, created) = app
        .post(
            "/models",
            &session.access_token,
            json!({"name": "Claude", "provider": "anthropic", "model_id": "claude-3-5-sonnet-20241022", "base_url": app.llm.anthropic_base_url(), "api_key": "sk-ant-secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["data"]["is_default"], false);
    let (connection_id, _) = add_targets(&app, &session).await.remove(0);
    app.llm.set_default(Reply::text(REGION_TOTALS));

    let mut stream = app
        .ask(
            &session,
            &[("query", "sales by region"), ("model", "claude-3-5-sonnet-20241022"), ("connection_id", &connection_id)],
        )
        .await;
    let events = stream.collect().await;
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let request = &app.llm.requests()[0];
    assert!(request.path.ends_with("/v1/messages"), "{}", request.path);
    assert_eq!(request.header("x-api-key"), Some("sk-ant-secret"));
    app.stop().await;
}

/// Embedded mode only: every new user gets the demo sales database as its default connection, and a question with
/// neither model nor connection named runs on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_database_answers_a_new_user_s_first_question() {
    let app = TestApp::start(Mode::Embedded).await;
    let session = app.register().await;
    let (status, listed) = app.get("/connections", &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let connections = listed["data"]["connections"].as_array().expect("connection list");
    assert_eq!(connections.len(), 1, "{listed}");
    assert_eq!(connections[0]["driver"], "sqlite");
    assert_eq!(connections[0]["is_default"], true);

    app.add_openai_model(&session, true).await;
    app.llm.set_default(Reply::text(
        "```sql\nSELECT r.name AS region, COUNT(*) AS orders FROM orders o JOIN customers c ON c.id = o.customer_id \
         JOIN regions r ON r.id = c.region_id GROUP BY r.name ORDER BY r.name\n```",
    ));
    let mut stream = app.ask(&session, &[("query", "每个地区的订单数")]).await;
    let events = stream.collect().await;
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    let result = &events[3].data;
    assert!(result["rows_count"].as_u64().unwrap() >= 2, "{result}");
    let total: u64 = result["data"].as_array().unwrap().iter().map(|row| row["orders"].as_u64().unwrap()).sum();
    assert!(total >= 1000, "the demo database holds a few thousand orders: {result}");
    let prompt = app.llm.requests()[0].prompt_text();
    assert!(prompt.contains("order_items"), "the demo schema reaches the LLM: {prompt}");
    app.stop().await;
}
