//! A chat on a Redis connection: the model's read-only command runs and comes back as a result table; a write is
//! refused by the validator and the model corrects itself.

use crate::support::TestApp;
use crate::support::databases::redis_url;
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_connection_answers_read_only_commands() {
    let url = url::Url::parse(&redis_url()).unwrap();
    // db 9: the targets tests use 10-14, the service's own state db 0.
    let client = redis::Client::open(format!("{}/9", redis_url().trim_end_matches('/'))).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg("user:1001")
        .arg("name")
        .arg("Alice")
        .arg("age")
        .arg("31")
        .query_async(&mut conn)
        .await
        .unwrap();

    let app = TestApp::embedded().await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let body = json!({"name": "cache", "driver": "redis", "host": url.host_str(), "port": url.port().unwrap_or(6379), "database": "9"});
    let (status, created) = app.post("/connections", &session.access_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let connection_id = created["data"]["id"].as_str().unwrap().to_owned();

    // The connection test connects and warns that the default login can write; the schema is the key sample.
    let (status, tested) =
        app.post(&format!("/connections/{connection_id}/test"), &session.access_token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["connected"], true, "{tested}");
    assert!(tested["data"]["warnings"].as_array().is_some_and(|w| !w.is_empty()), "a writable login: {tested}");
    let (status, schema) = app.get(&format!("/connections/{connection_id}/schema"), &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    let tables = schema["data"]["tables"].as_array().unwrap();
    let users = tables.iter().find(|t| t["name"] == "user:*").unwrap_or_else(|| panic!("{schema}"));
    let columns: Vec<&str> = users["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(columns.contains(&"name") && columns.contains(&"age"), "{columns:?}");

    app.llm.on_prompt_containing("删除 user:1001", Reply::text("DEL user:1001"));
    app.llm.on_prompt_containing("删除 user:1001", Reply::text("HGETALL user:1001"));
    app.llm.set_default(Reply::text("HGETALL user:1001"));
    for query in ["user:1001 的全部字段", "删除 user:1001"] {
        let events = app.ask(&session, &[("query", query), ("connection_id", &connection_id)]).await.collect().await;
        let result = events.iter().find(|e| e.event == "result").unwrap_or_else(|| panic!("{events:?}"));
        assert_eq!(result.data["sql"], "HGETALL user:1001", "{}", result.data);
        let rows = result.data["data"].to_string();
        assert!(rows.contains("Alice") && rows.contains("name"), "{}", result.data);
    }
    // The model was asked for Redis commands, not for a SELECT.
    let prompt = app.llm.requests().last().unwrap().prompt_text();
    assert!(prompt.contains("只读的 Redis 命令") && prompt.contains("HGETALL"), "{prompt}");
    let exists: i64 = redis::cmd("EXISTS").arg("user:1001").query_async(&mut conn).await.unwrap();
    assert_eq!(exists, 1, "nothing was deleted");
    let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
    app.stop().await;
}
