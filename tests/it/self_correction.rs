//! Self-correction: a statement the database rejects or the validator refuses goes back to the model with its
//! error; every attempt shows in the stream; a final failure lists what was tried.

use crate::in_both_modes;
use crate::support::sse::SseEvent;
use crate::support::{Mode, Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

in_both_modes!(
    a_wrong_column_is_corrected_on_the_second_attempt,
    a_delete_corrected_to_a_select_runs,
    a_model_that_is_always_wrong_uses_every_attempt,
    a_repeated_refusal_stops_early,
);

const GOOD: &str = "```sql\nSELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region\n```";

async fn ask(app: &TestApp, session: &Session, connection_id: &str) -> Vec<SseEvent> {
    app.ask(session, &[("query", "sales per region"), ("connection_id", connection_id)]).await.collect().await
}

/// `(event, stage, attempt)` of every event, and their ids.
fn shape(events: &[SseEvent]) -> (Vec<(String, Value, Value)>, Vec<u32>) {
    let shape = events.iter().map(|e| (e.event.clone(), e.data["stage"].clone(), e.data["attempt"].clone())).collect();
    let ids = events.iter().map(|e| e.seq()).collect();
    (shape, ids)
}

fn step(event: &str, stage: &str, attempt: Value) -> (String, Value, Value) {
    (event.to_owned(), if stage.is_empty() { Value::Null } else { json!(stage) }, attempt)
}

async fn a_wrong_column_is_corrected_on_the_second_attempt(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    app.llm.reply(Reply::text("```sql\nSELECT regoin, SUM(amount) AS total FROM sales GROUP BY regoin\n```"));
    app.llm.reply(Reply::text(GOOD));

    let events = ask(&app, &session, &connection_id).await;
    let (shape, ids) = shape(&events);
    assert_eq!(
        shape,
        [
            step("progress", "analyzing", Value::Null),
            step("progress", "generating_sql", json!(1)),
            step("progress", "executing", json!(1)),
            step("progress", "generating_sql", json!(2)),
            step("progress", "executing", json!(2)),
            step("result", "", Value::Null),
            step("visualization", "", Value::Null),
            step("done", "", Value::Null),
        ],
        "{events:?}"
    );
    assert_eq!(ids, [1, 11, 12, 21, 22, 100, 101, 102]);
    assert!(events[3].data["message"].as_str().unwrap().contains('2'), "the correction says so: {:?}", events[3]);
    let result = &events[5].data;
    assert_eq!(result["rows_count"], 3, "{result}");
    assert_eq!(result["tables"], json!(["sales"]));
    assert!(!result["sql"].as_str().unwrap().contains("1001"), "the row cap stays out of the model's SQL: {result}");

    // The second request carried the failed statement and the database's own message.
    let requests = app.llm.requests();
    assert_eq!(requests.len(), 2);
    let prompt = requests[1].prompt_text();
    assert!(prompt.contains("SELECT regoin"), "{prompt}");
    assert!(prompt.contains("regoin") && prompt.to_lowercase().contains("no such column"), "{prompt}");

    let conversation_id = events[7].data["conversation_id"].as_str().unwrap();
    let (_, conversation) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    let metadata = &conversation["data"]["messages"][1]["metadata"];
    assert_eq!(metadata["attempts"], 2, "{conversation}");
    assert_eq!(metadata["sql"], result["sql"]);
    assert!(metadata["executed_sql"].as_str().unwrap().contains("1001"), "{metadata}");
    app.stop().await;
}

async fn a_delete_corrected_to_a_select_runs(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    let (status, _) = app
        .request(reqwest::Method::PUT, "/config", Some(&session.access_token), Some(json!({"view_mode": "developer"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.llm.reply(Reply::text("```sql\nDELETE FROM sales WHERE amount < 50\n```"));
    app.llm.reply(Reply::text(GOOD));

    let events = ask(&app, &session, &connection_id).await;
    let (shape, _) = shape(&events);
    // The refused statement never reached the database: no `executing` for attempt 1.
    assert_eq!(
        shape[1..4],
        [
            step("progress", "generating_sql", json!(1)),
            step("progress", "generating_sql", json!(2)),
            step("progress", "executing", json!(2)),
        ],
        "{events:?}"
    );
    let result = events.iter().find(|e| e.event == "result").expect("a result").data.clone();
    assert_eq!(result["rows_count"], 3);
    let developer = &result["developer"];
    assert_eq!(developer["attempts"], 2, "{result}");
    assert!(developer["executed_sql"].as_str().unwrap().contains("LIMIT"), "{developer}");
    assert!(developer["stage_ms"]["generating_sql"].is_u64(), "{developer}");
    assert!(developer["prompt_tokens"].is_u64(), "usage reported by the provider: {developer}");
    let prompt = app.llm.requests()[1].prompt_text();
    assert!(prompt.contains("DELETE FROM sales"), "the refused statement went back: {prompt}");
    app.stop().await;
}

async fn a_model_that_is_always_wrong_uses_every_attempt(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    for column in ["a1", "a2", "a3", "a4"] {
        app.llm.reply(Reply::text(format!("```sql\nSELECT {column} FROM sales\n```")));
    }
    let events = ask(&app, &session, &connection_id).await;
    let error = &events.last().unwrap().data;
    assert_eq!(error["code"], "DATABASE_ERROR", "{events:?}");
    assert_eq!(error["details"]["sql"], "SELECT a3 FROM sales", "the failing statement is shown: {error}");
    assert!(error["details"]["error"].as_str().unwrap().contains("a3"), "{error}");
    let attempts = error["details"]["attempts"].as_array().expect("what was tried");
    let tried: Vec<&str> = attempts.iter().map(|a| a["sql"].as_str().unwrap()).collect();
    assert_eq!(tried, ["SELECT a1 FROM sales", "SELECT a2 FROM sales", "SELECT a3 FROM sales"]);
    assert!(attempts.iter().all(|a| a["stage"] == "execution"));
    assert_eq!(app.llm.request_count(), 3, "worker.max_attempts is 3");
    let conversation_id = events[0].data["conversation_id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a failed question stores nothing");
    app.stop().await;
}

async fn a_repeated_refusal_stops_early(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    app.llm.set_default(Reply::text("```sql\nDROP TABLE sales\n```"));
    let events = ask(&app, &session, &connection_id).await;
    let error = &events.last().unwrap().data;
    assert_eq!(error["code"], "SQL_VALIDATION_FAILED", "{events:?}");
    assert_eq!(error["details"]["attempts"].as_array().map(Vec::len), Some(2), "{error}");
    assert_eq!(app.llm.request_count(), 2, "the same refused statement twice ends the question");
    // The user's language (zh by default) is the message's; the validator's English reason stays in details.
    assert_eq!(error["message"], "生成的 SQL 未通过只读校验：只允许查询（SELECT），不允许修改数据或结构", "{error}");
    assert!(error["details"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{error}");
    let english = app
        .ask(&session, &[("query", "sales per region"), ("connection_id", &connection_id), ("language", "en")])
        .await
        .collect()
        .await;
    let message = english.last().unwrap().data["message"].as_str().unwrap().to_owned();
    assert!(message.is_ascii() && !message.is_empty(), "an English question gets the English text: {message}");
    app.stop().await;
}
