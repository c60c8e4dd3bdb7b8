//! Stopping a question: `POST /chat/stop`, and a client that goes away.

use crate::in_both_modes;
use crate::support::{Mode, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

in_both_modes!(stop_ends_the_stream_and_abandons_the_job, a_departed_client_cancels_its_job);

async fn setup(app: &TestApp) -> (crate::support::Session, String) {
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    (session, connection_id)
}

async fn stop_ends_the_stream_and_abandons_the_job(mode: Mode) {
    let app = TestApp::start(mode).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_secs(30), Reply::text("SELECT 1")));

    let mut stream = app.ask(&session, &[("query", "slow question"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("first progress event");
    let conversation_id = first.data["conversation_id"].as_str().unwrap().to_string();
    // Wait until the job is inside the LLM call.
    app.until_the_llm_is_asked().await;

    let started = Instant::now();
    let (status, body) =
        app.post("/chat/stop", &session.access_token, json!({"conversation_id": conversation_id})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let rest = stream.collect().await;
    assert!(started.elapsed() < Duration::from_secs(5), "the stop took {:?}", started.elapsed());
    let last = rest.last().expect("a terminal event");
    assert_eq!(last.event, "error", "{rest:?}");
    assert_eq!(last.data["code"], "CANCELLED");

    let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stopped question is not stored");
    // And the worker really gave up: the model's request was dropped, long before its 30 s reply.
    app.until_the_llm_request_is_abandoned().await;

    // Stopping with a malformed id is a validation error; the next question runs normally.
    let (status, body) = app.post("/chat/stop", &session.access_token, json!({"conversation_id": "nope"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.llm.set_default(Reply::text("SELECT 1 AS one"));
    let events = app.ask(&session, &[("query", "fast"), ("connection_id", &connection_id)]).await.collect().await;
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    app.stop().await;
}

async fn a_departed_client_cancels_its_job(mode: Mode) {
    let app = TestApp::start(mode).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_secs(2), Reply::text("SELECT 1 AS one")));

    let mut stream = app.ask(&session, &[("query", "going away"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("first progress event");
    let conversation_id = first.data["conversation_id"].as_str().unwrap().to_string();
    app.until_the_llm_is_asked().await;
    drop(stream);

    // The worker drops the model's request once the grace for resuming is over (1 s in the tests)...
    app.until_the_llm_request_is_abandoned().await;
    // ...and nothing is stored: had the job gone on, its answer would be, once the LLM replied (2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the job of a departed client must be cancelled");
    app.stop().await;
}
