//! No answer lost, none late: streams that resume with `Last-Event-ID` (after a dropped connection, on another
//! node, after their node was killed), NATS restarted under questions in flight, and jobs that exhaust their
//! deliveries.

use crate::support::databases::{OwnNats, OwnPostgres};
use crate::support::sse::{SseEvent, SseStream};
use crate::support::{Mode, Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const SQL: &str = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region";

fn answer() -> Reply {
    Reply::text(json!({"sql": SQL, "explanation": "Sales per region"}).to_string())
}

async fn setup(app: &TestApp) -> (Session, String) {
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    (session, connection_id)
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

/// The stored conversation: exactly the question and one answer with the expected SQL.
async fn assert_stored_once(app: &TestApp, session: &Session, conversation_id: &str) {
    let (status, body) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let messages = body["data"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "one question, one answer: {body}");
    assert_eq!(messages[1]["metadata"]["sql"], SQL, "{body}");
}

/// Asks `count` questions and waits for each one's first event; returns their conversations and open streams.
async fn questions_in_flight(
    app: &TestApp,
    session: &Session,
    connection_id: &str,
    count: usize,
) -> Vec<(String, SseStream)> {
    let mut streams = Vec::new();
    for n in 0..count {
        let query = format!("sales per region {n}");
        let mut stream = app.ask(session, &[("query", &query), ("connection_id", connection_id)]).await;
        let first = stream.next().await.expect("a first event");
        streams.push((first.data["conversation_id"].as_str().unwrap().to_owned(), stream));
    }
    streams
}

/// Each stream ends with `done` within `limit`, and its conversation holds its one answer.
async fn each_answered_once(app: &TestApp, session: &Session, streams: Vec<(String, SseStream)>, limit: Duration) {
    for (conversation_id, mut stream) in streams {
        let events = finish(&mut stream, limit).await;
        assert_eq!(names(&events).last(), Some(&"done"), "{conversation_id}: {events:?}");
        assert_stored_once(app, session, &conversation_id).await;
    }
}

/// Reads `stream` to its end, within `limit`.
async fn finish(stream: &mut SseStream, limit: Duration) -> Vec<SseEvent> {
    tokio::time::timeout(limit, stream.collect()).await.expect("the stream ended in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resumes_on_another_node_and_after_its_node_died() {
    let mut app = TestApp::distributed().await;
    let a = app.base.clone();
    let b = app.spawn_api().await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_secs(2), answer()));

    // The client's connection to A breaks after the first event; it resumes on B and gets the rest.
    let mut stream = app.ask(&session, &[("query", "sales per region"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("a first event");
    let conversation_id = first.data["conversation_id"].as_str().unwrap().to_owned();
    let last_id = first.id.clone().expect("an id");
    drop(stream);
    let response = app.resume_at(&b, &session, &last_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-conversation-id"], conversation_id.as_str());
    let rest = finish(&mut SseStream::new(response), Duration::from_secs(30)).await;
    assert_eq!(names(&rest).last(), Some(&"done"), "{rest:?}");
    assert!(names(&rest).contains(&"result"), "{rest:?}");
    assert!(rest.iter().all(|e| e.seq() > first.seq()), "only what the client had not seen: {rest:?}");
    assert_stored_once(&app, &session, &conversation_id).await;

    // A finished stream can be read again from any point, while the bus keeps its events.
    let response = app.resume_at(&a, &session, &last_id).await;
    let again = finish(&mut SseStream::new(response), Duration::from_secs(10)).await;
    assert_eq!(names(&again), names(&rest));

    // Another user cannot read it, and a malformed id is a validation error.
    let other = app.register().await;
    let (status, body) =
        app.request_at(&b, reqwest::Method::GET, "/chat/stream?last_event_id=x", Some(&other.access_token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_ERROR")));
    let response = app.resume_at(&b, &other, &last_id).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Node A is killed in the middle of an answer: its client resumes on B and finishes.
    let mut stream = app.ask(&session, &[("query", "sales again"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("a first event");
    let conversation_id = first.data["conversation_id"].as_str().unwrap().to_owned();
    app.kill_api(0).await;
    assert!(finish(&mut stream, Duration::from_secs(10)).await.iter().all(|e| e.event != "done"), "A is dead");
    let response = app.resume_at(&b, &session, first.id.as_deref().unwrap()).await;
    let rest = finish(&mut SseStream::new(response), Duration::from_secs(30)).await;
    assert_eq!(names(&rest).last(), Some(&"done"), "{rest:?}");
    let (status, _) = app
        .request_at(
            &b,
            reqwest::Method::GET,
            &format!("/conversations/{conversation_id}"),
            Some(&session.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_stream_resumes_after_a_dropped_connection() {
    let app = TestApp::start(Mode::Embedded).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_millis(1500), answer()));
    let mut stream = app.ask(&session, &[("query", "sales per region"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("a first event");
    drop(stream);
    // Longer than the grace (1 s in the tests) would cancel it, had the client not come back in time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app.resume_at(&app.base, &session, first.id.as_deref().unwrap()).await;
    let rest = finish(&mut SseStream::new(response), Duration::from_secs(30)).await;
    assert_eq!(names(&rest).last(), Some(&"done"), "{rest:?}");
    assert_stored_once(&app, &session, first.data["conversation_id"].as_str().unwrap()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_under_questions_in_flight_loses_no_answer() {
    let mut nats = OwnNats::start().await;
    let app = TestApp::distributed_with(&[("QUERYGPT_NATS_URL", &nats.url())]).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_millis(1500), answer()));

    let streams = questions_in_flight(&app, &session, &connection_id, 8).await;
    // The answers come while NATS is down or just back.
    nats.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart().await;
    let back = std::time::Instant::now();
    each_answered_once(&app, &session, streams, Duration::from_secs(30)).await;
    let after = back.elapsed();
    assert!(after < Duration::from_secs(15), "the last answer came {after:?} after NATS was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_dies_on_its_last_delivery_tells_its_client() {
    let mut app = TestApp::distributed_with(&[("QUERYGPT_JOBS__MAX_DELIVER", "1")]).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_secs(60), answer()));
    let mut stream = app.ask(&session, &[("query", "never answered"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("a first event");
    app.until_the_llm_is_asked().await;
    app.kill_worker(0).await;
    // Another worker sees the server's max-deliveries advisory once the ack wait (3 s) is over.
    app.spawn_worker().await;
    let events = finish(&mut stream, Duration::from_secs(30)).await;
    let last: &Value = &events.last().unwrap_or_else(|| panic!("no event after {first:?}")).data;
    assert_eq!((last["type"].as_str(), last["code"].as_str()), (Some("error"), Some("INTERNAL_ERROR")), "{events:?}");
    assert_eq!(last["details"]["reason"], "deliveries_exhausted", "{last}");
    let conversation_id = first.data["conversation_id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a given-up question stores nothing");
}

/// Opens a question whose model never answers; returns its stream (kept open by the caller).
async fn hanging_question(app: &TestApp, session: &Session, connection_id: &str) -> SseStream {
    let mut stream = app.ask(session, &[("query", "slow"), ("connection_id", connection_id)]).await;
    stream.next().await.expect("a first event");
    stream
}

/// One more question is refused with 429 `RATE_LIMITED`.
async fn assert_refused_as_overload(app: &TestApp, session: &Session, connection_id: &str) {
    let params = [("query", "one more"), ("connection_id", connection_id)];
    let (status, body) = app.ask_expecting_error(&session.access_token, &params).await;
    let code = body["error"]["code"].as_str();
    assert_eq!((status, code), (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_at_once_not_queued() {
    // Per user, on one node: open streams.
    let app = TestApp::embedded_with(|settings| settings.jobs.max_streams_per_user = 1).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::Hang);
    let _open = hanging_question(&app, &session, &connection_id).await;
    assert_refused_as_overload(&app, &session, &connection_id).await;
    let other = app.register().await;
    app.add_openai_model(&other, true).await;
    let (other_connection, _) = app.sqlite_connection(&other).await;
    let _theirs = hanging_question(&app, &other, &other_connection).await;
    // Not stopped gracefully: that would wait out the hanging jobs.
    drop(app);

    // Over the whole deployment: jobs in the queue.
    let app = TestApp::distributed_with(&[("QUERYGPT_JOBS__MAX_PENDING", "1")]).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::Hang);
    let _open = hanging_question(&app, &session, &connection_id).await;
    let started = std::time::Instant::now();
    assert_refused_as_overload(&app, &session, &connection_id).await;
    assert!(started.elapsed() < Duration::from_secs(2), "refused at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::embedded_with(|settings| settings.http.header_read_timeout_secs = 1).await;
    let addr = app.base.trim_start_matches("http://").trim_end_matches("/api/v1").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n").await.expect("partial headers");
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the server still holds the socket after 10 s");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "cut after {waited:?}");
    // Meanwhile, and after, other clients are served.
    let (status, _) = app.request(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_loses_no_answer_and_fails_fast_meanwhile() {
    let mut pg = OwnPostgres::start().await;
    let app = TestApp::distributed_with(&[
        ("QUERYGPT_DATABASE_URL", &pg.url()),
        ("QUERYGPT_STORE__ACQUIRE_TIMEOUT_MS", "1000"),
    ])
    .await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_secs(2), answer()));
    let streams = questions_in_flight(&app, &session, &connection_id, 4).await;

    // The answers come while the store is down: they cannot be stored yet.
    pg.stop().await;
    let started = std::time::Instant::now();
    let (status, body) = app.get("/models", &session.access_token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("INTERNAL_ERROR")));
    assert!(started.elapsed() < Duration::from_secs(5), "failed fast: {:?}", started.elapsed());
    let (status, body) = app.request(reqwest::Method::GET, "/health/ready", None, None).await;
    assert_eq!((status, body["checks"]["store"]["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("down")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.restart().await;

    // Jobs are retried with backoff until the store is back: every question ends with its answer, stored once.
    each_answered_once(&app, &session, streams, Duration::from_secs(45)).await;
    let (status, _) = app.get("/models", &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "the nodes recovered without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shutting_down_ends_its_streams_with_a_marker_to_resume_from() {
    let app = TestApp::start(Mode::Embedded).await;
    let (session, connection_id) = setup(&app).await;
    app.llm.set_default(Reply::delayed(Duration::from_millis(1500), answer()));
    let mut stream = app.ask(&session, &[("query", "sales per region"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("a first event");
    app.until_the_llm_is_asked().await;
    let stopping = tokio::spawn(app.stop());
    let rest = finish(&mut stream, Duration::from_secs(10)).await;
    let last = rest.last().unwrap_or_else(|| panic!("nothing after {first:?}"));
    assert_eq!(last.event, "reconnect", "{rest:?}");
    assert!(last.id.is_none(), "the marker has no id: Last-Event-ID stays the last real event");
    assert_eq!(last.data["type"], "reconnect");
    assert!(rest.iter().all(|e| e.event != "error"), "no error is told for a question that goes on: {rest:?}");
    stopping.await.expect("graceful stop");
}
