//! Bad input and failing dependencies: each gives the documented error, and nothing is stored half-way.

use crate::in_both_modes;
use crate::support::sse::SseEvent;
use crate::support::{Mode, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

in_both_modes!(bad_requests_are_refused_before_a_job_exists, failed_jobs_end_with_an_error_event_and_store_nothing);

async fn bad_requests_are_refused_before_a_job_exists(mode: Mode) {
    let app = TestApp::start(mode).await;
    let alice = app.register().await;
    let bob = app.register().await;
    app.add_openai_model(&alice, true).await;
    let (alice_connection, _) = app.sqlite_connection(&alice).await;
    let (bob_connection, _) = app.sqlite_connection(&bob).await;
    let token = alice.access_token.as_str();

    // (query parameters, expected status, expected code)
    type Case<'a> = (Vec<(&'a str, String)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (vec![("query", "   ".into())], StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (vec![("query", "q".into()), ("model", Uuid::new_v4().to_string())], StatusCode::NOT_FOUND, "NOT_FOUND"),
        (vec![("query", "q".into()), ("model", "no-such-model".into())], StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            vec![("query", "q".into()), ("connection_id", Uuid::new_v4().to_string())],
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (vec![("query", "q".into()), ("connection_id", bob_connection.clone())], StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            vec![("query", "q".into()), ("connection_id", "not-a-uuid".into())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (
            vec![("query", "q".into()), ("conversation_id", Uuid::new_v4().to_string())],
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (vec![("query", "q".into()), ("language", "fr".into())], StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
    ];
    for (params, status, code) in cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, body) = app.ask_expecting_error(token, &params).await;
        assert_eq!(got, status, "{params:?}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], code, "{params:?}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }

    // Bob has no model: asking without one names the missing setting.
    let (status, body) = app.ask_expecting_error(&bob.access_token, &[("query", "q")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for token in ["not.a.jwt", &forged_token(token), &expired_token()] {
        let (status, body) =
            app.ask_expecting_error(token, &[("query", "q"), ("connection_id", &alice_connection)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    }
    // A refresh token is not an access token.
    let (status, _) = app.ask_expecting_error(&alice.refresh_token, &[("query", "q")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.llm.request_count(), 0, "no job may reach the LLM");
    app.stop().await;
}

/// The same token with its signature's last characters changed.
fn forged_token(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped: String = signature.chars().rev().collect();
    format!("{head}.{flipped}")
}

/// A syntactically valid HS256 token, expired long ago, signed with a key the server does not have.
fn expired_token() -> String {
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLCJleHAiOjEwMDAwMDAwMDAsInR5cCI6ImFjY2VzcyJ9.c2lnbmF0dXJl".into()
}

fn terminal_error(events: &[SseEvent]) -> &serde_json::Value {
    let last = events.last().expect("some events");
    assert_eq!(last.event, "error", "expected an error event: {events:?}");
    &last.data
}

async fn failed_jobs_end_with_an_error_event_and_store_nothing(mode: Mode) {
    let app = TestApp::start(mode).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, sqlite_path) = app.sqlite_connection(&session).await;
    let unreachable = json!({"name": "down", "driver": "postgresql", "host": "127.0.0.1", "port": 1, "username": "u", "password": "p", "database": "d"});
    let (_, created) = app.post("/connections", &session.access_token, unreachable).await;
    let unreachable_id = created["data"]["id"].as_str().unwrap().to_string();

    let cases = [
        ("no sql", Reply::text("I'm sorry, I cannot help with that."), &connection_id, "LLM_ERROR"),
        ("delete", Reply::text("```sql\nDELETE FROM sales\n```"), &connection_id, "SQL_VALIDATION_FAILED"),
        ("stacked", Reply::text("SELECT 1; DROP TABLE sales"), &connection_id, "SQL_VALIDATION_FAILED"),
        ("llm down", Reply::error(500, "upstream exploded"), &connection_id, "LLM_ERROR"),
        ("db down", Reply::text("SELECT 1"), &unreachable_id, "DATABASE_ERROR"),
        // What llama-cpp-python does: a reply cut short with no finish reason (every retry too) is never run.
        ("cut short", Reply::interrupted("SELECT * FROM sales"), &connection_id, "LLM_ERROR"),
        ("length stop", Reply::length_limit("SELECT region, SUM(amount"), &connection_id, "LLM_ERROR"),
        ("empty 200", Reply::empty_stream(), &connection_id, "LLM_ERROR"),
        ("overflow", Reply::context_length_exceeded(2048), &connection_id, "LLM_ERROR"),
    ];
    for (label, reply, connection, code) in cases {
        app.llm.set_default(reply);
        let mut stream = app.ask(&session, &[("query", label), ("connection_id", connection)]).await;
        let events = stream.collect().await;
        let error = terminal_error(&events);
        assert_eq!(error["code"], code, "{label}: {events:?}");
        assert!(!error["message"].as_str().unwrap().is_empty());
        if code == "SQL_VALIDATION_FAILED" {
            assert!(error["details"]["rule"].is_string(), "{label}: the rule that fired is named: {error}");
        }
        let message = error["message"].as_str().unwrap().to_lowercase();
        match label {
            "cut short" => assert!(!events.iter().any(|e| e.event == "result"), "a cut reply never runs: {events:?}"),
            "length stop" => assert!(message.contains("token"), "{label}: {message}"),
            "empty 200" | "overflow" => assert!(message.contains("context"), "{label}: {message}"),
            _ => {}
        }
        let conversation_id = events[0].data["conversation_id"].as_str().unwrap();
        let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{label}: a failed question must not be stored");
    }

    // The DELETE never ran: the target still holds every row.
    let rows: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{sqlite_path}")).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM sales").fetch_one(&mut conn).await.unwrap()
    };
    assert_eq!(rows, 12);
    app.stop().await;
}
