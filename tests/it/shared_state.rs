//! The state API nodes share through Redis, seen from outside with two API processes: a Text2SQL conversation, a
//! rate limit and a logout started on one node hold on the other. And a Redis outage: answers in flight are still
//! stored, token checks fail closed, rate limits fail open, readiness tells, and everything recovers by itself.

use crate::support::databases::OwnRedis;
use crate::support::{Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const SQL: &str = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region";

fn answer() -> Reply {
    Reply::text(json!({"sql": SQL, "explanation": "Sales per region"}).to_string())
}

/// `POST {base}/sql/generate` with an API key; returns the status, the `Retry-After` header and the body.
async fn generate_at(app: &TestApp, base: &str, key: &str, body: &Value) -> (StatusCode, Option<u64>, Value) {
    let response = app
        .http
        .post(format!("{base}/sql/generate"))
        .header("X-API-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.expect("JSON body"))
}

fn sales_schema() -> Value {
    json!({"tables": [{"name": "sales", "columns": [{"name": "region"}, {"name": "amount", "type": "decimal"}]}]})
}

/// Logs `session`'s user in again: a new session with its own tokens.
async fn login_at(app: &TestApp, base: &str, session: &Session) -> (StatusCode, Value) {
    let body = json!({"email": session.email, "password": "correct horse battery"});
    app.request_at(base, Method::POST, "/auth/login", None, Some(body)).await
}

fn reason(body: &Value) -> &str {
    body["error"]["details"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_share_conversations_rate_limits_and_sessions() {
    let mut app = TestApp::distributed_with(&[("QUERYGPT_LIMITS__GENERATE_PER_KEY_PER_MINUTE", "3")]).await;
    let a = app.base.clone();
    let b = app.spawn_api().await;
    app.llm.set_default(answer());
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (status, created) = app.post("/api-keys", &session.access_token, json!({"name": "two nodes"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["data"]["key"].as_str().unwrap().to_owned();

    // A conversation started on A continues on B, which reuses the schema and database stored with it.
    let first = json!({"query": "sales per region", "schema": sales_schema(), "database": {"type": "sqlite"}});
    let (status, _, body) = generate_at(&app, &a, &key, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conversation_id = body["conversation_id"].as_str().unwrap().to_owned();
    let follow_up = json!({"query": "only the north", "conversation_id": conversation_id});
    let (status, _, body) = generate_at(&app, &b, &key, &follow_up).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conversation_id"], conversation_id.as_str());
    let prompt = app.llm.requests().last().unwrap().prompt_text();
    assert!(prompt.contains("sales per region") && prompt.contains(SQL), "B sent the earlier turn: {prompt}");

    // The key's limit of 3 a minute counts on both nodes together: A, B, then the fourth is refused on A.
    let (status, _, body) = generate_at(&app, &a, &key, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, retry_after, body) = generate_at(&app, &a, &key, &first).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED")), "{body}");
    assert!(retry_after.is_some_and(|secs| (1..=60).contains(&secs)), "{retry_after:?}");
    assert_eq!(body.as_object().unwrap().len(), 2, "the Text2SQL shape: {body}");
    let (status, _, _) = generate_at(&app, &b, &key, &first).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "B refuses too");

    // Logging out on A ends the session on B at once; the user's other session goes on.
    let (_, other) = login_at(&app, &b, &session).await;
    let other_access = other["data"]["access_token"].as_str().unwrap().to_owned();
    let (status, _) = app.request_at(&b, Method::GET, "/auth/me", Some(&session.access_token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        app.request_at(&a, Method::POST, "/auth/logout", Some(&session.access_token), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.request_at(&b, Method::GET, "/auth/me", Some(&session.access_token), None).await;
    assert_eq!((status, reason(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"), "{body}");
    let refresh = json!({"refresh_token": session.refresh_token});
    let (status, body) = app.request_at(&b, Method::POST, "/auth/refresh", None, Some(refresh)).await;
    assert_eq!((status, reason(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"), "{body}");
    let (status, _) = app.request_at(&a, Method::GET, "/auth/me", Some(&other_access), None).await;
    assert_eq!(status, StatusCode::OK);

    // A refresh token spent on B and presented again on A revokes its session everywhere.
    let stolen = json!({"refresh_token": other["data"]["refresh_token"]});
    let (status, renewed) = app.request_at(&b, Method::POST, "/auth/refresh", None, Some(stolen.clone())).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, body) = app.request_at(&a, Method::POST, "/auth/refresh", None, Some(stolen)).await;
    assert_eq!((status, reason(&body)), (StatusCode::UNAUTHORIZED, "refresh_token_reused"), "{body}");
    let renewed_access = renewed["data"]["access_token"].as_str().unwrap();
    let (status, body) = app.request_at(&b, Method::GET, "/auth/me", Some(renewed_access), None).await;
    assert_eq!((status, reason(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"), "{body}");
}

/// Polls `/health/ready` until it answers `expected`; returns its last body.
async fn readiness(app: &TestApp, expected: StatusCode) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = app.request(Method::GET, "/health/ready", None, None).await;
        if status == expected {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never became {expected}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_answer_and_heals_by_itself() {
    let mut redis = OwnRedis::start().await;
    let app = TestApp::distributed_with(&[("QUERYGPT_REDIS_URL", &redis.url())]).await;
    let body = readiness(&app, StatusCode::OK).await;
    assert_eq!(body["checks"]["shared_state"]["backend"], "redis", "{body}");
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;

    // A question in flight when Redis dies still gets its answer, and the answer is stored.
    app.llm.set_default(Reply::delayed(Duration::from_secs(2), answer()));
    let mut stream = app.ask(&session, &[("query", "sales per region"), ("connection_id", &connection_id)]).await;
    let conversation_id = stream.conversation_id_header.clone().expect("x-conversation-id");
    let first = stream.next().await.expect("a first event");
    assert_eq!(first.event, "progress");
    redis.kill().await;
    let events = stream.collect().await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    assert!(names.contains(&"result"), "{events:?}");

    // While it is down: readiness says so, token checks fail closed, login (whose limit fails open) still works.
    let body = readiness(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        (body["status"].as_str(), body["checks"]["shared_state"]["status"].as_str()),
        (Some("not_ready"), Some("down"))
    );
    assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");
    let (status, body) = app.get("/auth/me", &session.access_token).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!((body["error"]["code"].as_str(), reason(&body)), (Some("INTERNAL_ERROR"), "shared_state_unavailable"));
    let (status, body) = login_at(&app, &app.base, &session).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Redis comes back (empty): the nodes reconnect without a restart, and the stored answer is there.
    redis.restart().await;
    readiness(&app, StatusCode::OK).await;
    let (status, body) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let messages = body["data"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "the question and its one answer: {body}");
    assert_eq!(messages[1]["metadata"]["sql"], SQL, "{body}");
}
