//! A worker killed with SIGKILL in the middle of a job: another worker finishes it, and the client still gets one
//! complete, ordered answer.

use crate::support::{Mode, TestApp};
use querygpt_testkit::Reply;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_is_finished_by_another() {
    let mut app = TestApp::start(Mode::Distributed).await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;

    // The first call hangs long enough to kill its worker; the retry on the second worker answers at once.
    let answer = "SELECT region, COUNT(*) AS orders FROM sales GROUP BY region ORDER BY region";
    app.llm.reply(Reply::delayed(Duration::from_secs(60), Reply::text(answer)));
    app.llm.set_default(Reply::text(answer));

    let mut stream = app.ask(&session, &[("query", "orders per region"), ("connection_id", &connection_id)]).await;
    let first = stream.next().await.expect("first event");
    app.until_the_llm_is_asked().await;
    app.kill_worker(0).await;
    app.spawn_worker().await;

    let mut events = vec![first];
    events.extend(stream.collect().await);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "result", "visualization", "done"], "{events:?}");
    let ids: Vec<u32> = events.iter().map(|e| e.seq()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "events out of order: {ids:?}");
    assert_eq!(events[3].data["rows_count"], 3);
    assert_eq!(app.llm.request_count(), 2, "the second worker asked the LLM again");

    let conversation_id = events[5].data["conversation_id"].as_str().unwrap();
    let (_, conversation) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(conversation["data"]["messages"].as_array().unwrap().len(), 2, "exactly one stored answer");
}
