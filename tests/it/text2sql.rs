//! The Text2SQL API (`../shared/spec/text2sql-api.md`) from outside: API keys, the document's own curl, Python and
//! Node examples run as written (only the base URL and the key changed), every error code, conversations with
//! their TTL and mismatch rules, `previous_sql`, and Redis commands.

use crate::in_both_modes;
use crate::support::{Mode, Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

in_both_modes!(the_documents_examples_run_as_written, a_redis_conversation_and_a_refused_write);

const FIRST_SQL: &str = "SELECT * FROM users WHERE age > 30";
const SECOND_SQL: &str = "SELECT * FROM users WHERE age > 30 AND status = 'active'";

/// The reply of a model that answers in the JSON the default prompt asks for.
fn answer(sql: &str, explanation: &str) -> Reply {
    Reply::text(json!({"sql": sql, "explanation": explanation}).to_string())
}

/// A user with a default model at the fake LLM and an API key; returns the session and the key.
async fn key_holder(app: &TestApp) -> (Session, String) {
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (status, created) = app.post("/api-keys", &session.access_token, json!({"name": "docs"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (session, created["data"]["key"].as_str().expect("the key is shown once").to_owned())
}

/// `http://localhost:8080/api/v1` and `your-api-key` of the document, replaced.
fn adapt(example: &str, app: &TestApp, key: &str) -> String {
    example.replace("http://localhost:8080/api/v1", &app.base).replace("your-api-key", key)
}

async fn run(program: &str, args: &[&str], dir: &std::path::Path) -> String {
    let output = tokio::process::Command::new(program).args(args).current_dir(dir).output().await.expect(program);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{program} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The document's first-round curl example.
const CURL_FIRST: &str = r#"curl -X POST http://localhost:8080/api/v1/sql/generate \
  -H "Authorization: Bearer your-api-key" \
  -H "Content-Type: application/json" \
  -d '{
    "query": "查询所有年龄大于30的用户",
    "schema": {
      "tables": [
        {
          "name": "users",
          "columns": [
            {"name": "id", "type": "int"},
            {"name": "name", "type": "varchar(100)"},
            {"name": "age", "type": "int"}
          ]
        }
      ]
    },
    "database": {"type": "mysql", "version": "8.0"}
  }'"#;

/// The document's second-round curl example (the conversation id of its first response replaced by ours).
const CURL_SECOND: &str = r#"curl -X POST http://localhost:8080/api/v1/sql/generate \
  -H "Authorization: Bearer your-api-key" \
  -H "Content-Type: application/json" \
  -d '{
    "query": "还要筛选状态为active的用户",
    "schema": {
      "tables": [
        {
          "name": "users",
          "columns": [
            {"name": "id", "type": "int"},
            {"name": "name", "type": "varchar(100)"},
            {"name": "age", "type": "int"},
            {"name": "status", "type": "varchar(20)"}
          ]
        }
      ]
    },
    "database": {"type": "mysql", "version": "8.0"},
    "conversation_id": "conv_a1b2c3d4e5f6g7h8i9j0k1l2"
  }'"#;

/// The document's Python example.
const PYTHON: &str = r#"import requests

url = "http://localhost:8080/api/v1/sql/generate"
headers = {
    "Authorization": "Bearer your-api-key",
    "Content-Type": "application/json"
}
data = {
    "query": "查询所有年龄大于30的用户",
    "schema": {
        "tables": [
            {
                "name": "users",
                "columns": [
                    {"name": "id", "type": "int", "comment": "用户ID"},
                    {"name": "name", "type": "varchar(100)", "comment": "用户名"},
                    {"name": "age", "type": "int", "comment": "年龄"}
                ]
            }
        ]
    },
    "database": {"type": "mysql", "version": "8.0"}
}

response = requests.post(url, json=data, headers=headers)
result = response.json()
print(result["sql"])
"#;

/// The document's JavaScript/Node.js example.
const NODE: &str = r#"const fetch = require('node-fetch');

const url = 'http://localhost:8080/api/v1/sql/generate';
const headers = {
  'Authorization': 'Bearer your-api-key',
  'Content-Type': 'application/json'
};
const data = {
  query: '查询所有年龄大于30的用户',
  schema: {
    tables: [
      {
        name: 'users',
        columns: [
          { name: 'id', type: 'int', comment: '用户ID' },
          { name: 'name', type: 'varchar(100)', comment: '用户名' },
          { name: 'age', type: 'int', comment: '年龄' }
        ]
      }
    ]
  },
  database: { type: 'mysql', version: '8.0' }
};

fetch(url, {
  method: 'POST',
  headers: headers,
  body: JSON.stringify(data)
})
  .then(res => res.json())
  .then(result => console.log(result.sql));
"#;

async fn the_documents_examples_run_as_written(mode: Mode) {
    let app = TestApp::start(mode).await;
    let (_, key) = key_holder(&app).await;
    let dir = app.data_dir.path();
    app.llm
        .on_prompt_containing("还要筛选状态为active的用户", answer(SECOND_SQL, "在原有查询基础上增加了状态筛选条件"));
    app.llm.set_default(answer(FIRST_SQL, "筛选年龄大于30的用户"));

    let first: Value = serde_json::from_str(&run("sh", &["-c", &adapt(CURL_FIRST, &app, &key)], dir).await).unwrap();
    assert_eq!((first["sql"].as_str(), first["explanation"].as_str()), (Some(FIRST_SQL), Some("筛选年龄大于30的用户")));
    let conversation = first["conversation_id"].as_str().unwrap();
    assert!(conversation.starts_with("conv_") && conversation.len() == 29, "{conversation}");

    let second = adapt(CURL_SECOND, &app, &key).replace("conv_a1b2c3d4e5f6g7h8i9j0k1l2", conversation);
    let second: Value = serde_json::from_str(&run("sh", &["-c", &second], dir).await).unwrap();
    assert_eq!(second["sql"], SECOND_SQL, "{second}");
    assert_eq!(second["conversation_id"], conversation, "the same conversation continues");
    let follow_up = app.llm.requests().last().unwrap().prompt_text();
    assert!(follow_up.contains(FIRST_SQL) && follow_up.contains("查询所有年龄大于30的用户"), "{follow_up}");
    assert!(follow_up.contains("status varchar(20)"), "the schema given replaces the stored one: {follow_up}");

    std::fs::write(dir.join("example.py"), adapt(PYTHON, &app, &key)).unwrap();
    assert_eq!(run("python3", &["example.py"], dir).await.trim(), FIRST_SQL);

    if std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        // The example requires `node-fetch`; this stands in for it with Node's own fetch (Node 18+), so the
        // test needs no package download.
        let shim = dir.join("node_modules/node-fetch");
        std::fs::create_dir_all(&shim).unwrap();
        std::fs::write(shim.join("index.js"), "module.exports = (...args) => fetch(...args);\n").unwrap();
        std::fs::write(dir.join("example.js"), adapt(NODE, &app, &key)).unwrap();
        assert_eq!(run("node", &["example.js"], dir).await.trim(), FIRST_SQL);
    }
    app.stop().await;
}

/// `POST /sql/generate` with `body` and these headers; returns status, the `Retry-After` header and the body.
async fn generate(app: &TestApp, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
    let mut request = app.http.post(format!("{}/sql/generate", app.base)).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

fn json_with_key(key: &str) -> [(&'static str, String); 2] {
    [("Authorization", format!("Bearer {key}")), ("Content-Type", "application/json".to_owned())]
}

async fn post_json(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let headers = json_with_key(key);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    generate(app, &headers, &body.to_string()).await
}

fn users_schema(columns: &[&str]) -> Value {
    json!({"tables": [{"name": "users", "columns": columns.iter().map(|c| json!({"name": c, "type": "int"})).collect::<Vec<_>>()}]})
}

fn first_round() -> Value {
    json!({"query": "年龄大于30的用户", "schema": users_schema(&["id", "age"]), "database": {"type": "mysql"}})
}

fn assert_error(reply: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!((reply.0, reply.1["code"].as_str()), (status, Some(code)), "{}", reply.1);
    assert!(reply.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.1);
    assert_eq!(reply.1.as_object().unwrap().len(), 2, "only code and message: {}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_in_the_documents_shape() {
    let app = TestApp::embedded().await;
    let (session, key) = key_holder(&app).await;
    app.llm.set_default(answer(FIRST_SQL, "ok"));

    // UNAUTHORIZED: no key, a wrong key, a key of the right shape that does not exist, a refresh token.
    let no_key = generate(&app, &[("Content-Type", "application/json")], &first_round().to_string()).await;
    assert_error(&no_key, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    for wrong in ["nonsense", &format!("qgpt_{}", "x".repeat(40)), &session.refresh_token] {
        assert_error(&post_json(&app, wrong, first_round()).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let mut forged = key.clone();
    forged.replace_range(30..31, if &key[30..31] == "a" { "b" } else { "a" });
    assert_error(&post_json(&app, &forged, first_round()).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // INVALID_REQUEST: not JSON, a wrong Content-Type, a blank query, an unknown database type, a body too large.
    let auth = format!("Bearer {key}");
    let not_json = generate(&app, &[("Authorization", &auth), ("Content-Type", "application/json")], "{not json").await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    let form =
        generate(&app, &[("Authorization", &auth), ("Content-Type", "text/plain")], &first_round().to_string()).await;
    assert_error(&form, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    assert!(form.1["message"].as_str().unwrap().contains("application/json"), "{}", form.1);
    let blank =
        post_json(&app, &key, json!({"query": " ", "schema": users_schema(&["id"]), "database": {"type": "mysql"}}))
            .await;
    assert_error(&blank, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    assert_eq!(blank.1["message"], "query 不能为空", "the document's own message");
    let oracle =
        post_json(&app, &key, json!({"query": "q", "schema": users_schema(&["id"]), "database": {"type": "oracle"}}))
            .await;
    assert_error(&oracle, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    let many: Vec<Value> = (0..2_100).map(|i| json!({"name": format!("t{i}"), "columns": []})).collect();
    let too_many =
        post_json(&app, &key, json!({"query": "q", "schema": {"tables": many}, "database": {"type": "mysql"}})).await;
    assert_error(&too_many, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    assert!(too_many.1["message"].as_str().unwrap().contains("2100 > 2000"), "{}", too_many.1);
    let padding = "x".repeat(3 * 1024 * 1024);
    let too_large = post_json(&app, &key, json!({"query": padding, "database": {"type": "mysql"}})).await;
    assert_error(&too_large, StatusCode::BAD_REQUEST, "INVALID_REQUEST");

    // INVALID_SCHEMA, INVALID_DATABASE, SCHEMA_REQUIRED, DATABASE_REQUIRED.
    let no_tables = post_json(&app, &key, json!({"query": "q", "schema": {}, "database": {"type": "mysql"}})).await;
    assert_error(&no_tables, StatusCode::BAD_REQUEST, "INVALID_SCHEMA");
    let no_name = post_json(
        &app,
        &key,
        json!({"query": "q", "schema": {"tables": [{"columns": []}]}, "database": {"type": "mysql"}}),
    )
    .await;
    assert_error(&no_name, StatusCode::BAD_REQUEST, "INVALID_SCHEMA");
    let no_type =
        post_json(&app, &key, json!({"query": "q", "schema": users_schema(&["id"]), "database": {"version": "8"}}))
            .await;
    assert_error(&no_type, StatusCode::BAD_REQUEST, "INVALID_DATABASE");
    let no_schema = post_json(&app, &key, json!({"query": "q", "database": {"type": "mysql"}})).await;
    assert_error(&no_schema, StatusCode::BAD_REQUEST, "SCHEMA_REQUIRED");
    let no_database = post_json(&app, &key, json!({"query": "q", "schema": users_schema(&["id"])})).await;
    assert_error(&no_database, StatusCode::BAD_REQUEST, "DATABASE_REQUIRED");

    // CONVERSATION_NOT_FOUND: malformed, unknown, and another user's.
    for id in ["conv_xxx", "conv_a1b2c3d4e5f6g7h8i9j0k1l2"] {
        let missing = post_json(&app, &key, json!({"query": "q", "conversation_id": id})).await;
        assert_error(&missing, StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    }
    let started = post_json(&app, &key, first_round()).await;
    assert_eq!(started.0, StatusCode::OK, "{}", started.1);
    let conversation = started.1["conversation_id"].as_str().unwrap().to_owned();
    let (_, other_key) = key_holder(&app).await;
    let foreign = post_json(&app, &other_key, json!({"query": "q", "conversation_id": conversation})).await;
    assert_error(&foreign, StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");

    // SCHEMA_MISMATCH (a table set changed, a column gone) and DATABASE_MISMATCH; a new version is fine.
    let other_table = json!({"tables": [{"name": "orders", "columns": [{"name": "id"}]}]});
    for schema in [other_table, users_schema(&["id"])] {
        let mismatch =
            post_json(&app, &key, json!({"query": "q", "conversation_id": conversation, "schema": schema})).await;
        assert_error(&mismatch, StatusCode::BAD_REQUEST, "SCHEMA_MISMATCH");
    }
    let mismatch = post_json(
        &app,
        &key,
        json!({"query": "q", "conversation_id": conversation, "database": {"type": "postgresql"}}),
    )
    .await;
    assert_error(&mismatch, StatusCode::BAD_REQUEST, "DATABASE_MISMATCH");
    let newer = post_json(
        &app,
        &key,
        json!({"query": "q", "conversation_id": conversation, "database": {"type": "MySQL", "version": "8.4"}}),
    )
    .await;
    assert_eq!(newer.0, StatusCode::OK, "{}", newer.1);

    // SQL_VALIDATION_FAILED: a model that writes DELETE twice (a refusal goes back once); the SQL is refused also
    // when it names a table the schema does not have.
    app.llm.on_prompt_containing("drop them", answer("DELETE FROM users WHERE age > 30", "removes them"));
    let refused = post_json(&app, &key, json!({"query": "drop them", "conversation_id": conversation})).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "SQL_VALIDATION_FAILED");
    app.llm.on_prompt_containing("secret table", answer("SELECT * FROM salaries", "guesses a table"));
    let unknown_table = post_json(&app, &key, json!({"query": "secret table", "conversation_id": conversation})).await;
    assert_error(&unknown_table, StatusCode::BAD_REQUEST, "SQL_VALIDATION_FAILED");

    // LLM_ERROR: the provider fails, and a key owner without a default model.
    app.llm.on_prompt_containing("provider down", Reply::error(401, "invalid api key"));
    let down = post_json(&app, &key, json!({"query": "provider down", "conversation_id": conversation})).await;
    assert_error(&down, StatusCode::INTERNAL_SERVER_ERROR, "LLM_ERROR");
    let modelless = app.register().await;
    let (_, created) = app.post("/api-keys", &modelless.access_token, json!({"name": "no model"})).await;
    let no_model = post_json(&app, created["data"]["key"].as_str().unwrap(), first_round()).await;
    assert_error(&no_model, StatusCode::INTERNAL_SERVER_ERROR, "LLM_ERROR");

    // English messages on request.
    let english = generate(
        &app,
        &[("Authorization", &auth), ("Content-Type", "application/json"), ("Accept-Language", "en-US,en;q=0.9")],
        r#"{"query": ""}"#,
    )
    .await;
    assert_eq!(english.1["message"], "query must not be empty");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_work_in_both_headers_and_stop_when_revoked() {
    let app = TestApp::embedded().await;
    let (session, key) = key_holder(&app).await;
    app.llm.set_default(answer(FIRST_SQL, "ok"));

    let (status, listed) = app.get("/api-keys", &session.access_token).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let item = &listed["data"]["api_keys"][0];
    assert_eq!(item["prefix"].as_str(), Some(&key[..17]));
    assert_eq!(item["last4"].as_str(), Some(&key[key.len() - 4..]));
    assert!(!listed.to_string().contains(&key), "a listing never shows the key");
    assert!(item["last_used_at"].is_null());

    let body = first_round().to_string();
    let bearer =
        generate(&app, &[("Authorization", &format!("Bearer {key}")), ("Content-Type", "application/json")], &body)
            .await;
    assert_eq!(bearer.0, StatusCode::OK, "{}", bearer.1);
    let header = generate(&app, &[("X-API-Key", &key), ("Content-Type", "application/json")], &body).await;
    assert_eq!(header.0, StatusCode::OK, "{}", header.1);
    let token = generate(
        &app,
        &[("Authorization", &format!("Bearer {}", session.access_token)), ("Content-Type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(token.0, StatusCode::OK, "an access token works too: {}", token.1);
    // The use is recorded off the request's path.
    let mut used = Value::Null;
    for _ in 0..50 {
        used = app.get("/api-keys", &session.access_token).await.1["data"]["api_keys"][0]["last_used_at"].clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(used.is_string(), "last_used_at is recorded");

    let id = item["id"].as_str().unwrap();
    let (status, revoked) =
        app.request(reqwest::Method::DELETE, &format!("/api-keys/{id}"), Some(&session.access_token), None).await;
    assert_eq!((status, &revoked["data"]["deleted"]), (StatusCode::OK, &json!(true)), "{revoked}");
    let after = generate(&app, &[("X-API-Key", &key), ("Content-Type", "application/json")], &body).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let (status, again) =
        app.request(reqwest::Method::DELETE, &format!("/api-keys/{id}"), Some(&session.access_token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");

    let (status, blank) = app.post("/api-keys", &session.access_token, json!({"name": "  "})).await;
    assert_eq!((status, blank["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_ERROR")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_sql_wins_and_conversations_expire() {
    let app = TestApp::embedded_with(|settings| settings.text2sql.conversation_ttl_secs = 2).await;
    let (_, key) = key_holder(&app).await;
    app.llm.set_default(answer(FIRST_SQL, "ok"));
    let started = post_json(&app, &key, first_round()).await;
    let conversation = started.1["conversation_id"].as_str().unwrap().to_owned();

    let edited = "SELECT id FROM users WHERE age > 40";
    let follow =
        post_json(&app, &key, json!({"query": "只要 id", "conversation_id": conversation, "previous_sql": edited}))
            .await;
    assert_eq!(follow.0, StatusCode::OK, "{}", follow.1);
    let prompt = app.llm.requests().last().unwrap().prompt_text();
    assert!(prompt.contains(edited) && !prompt.contains(FIRST_SQL), "previous_sql replaces the last SQL: {prompt}");

    // Without a conversation, previous_sql alone is the statement to edit.
    let alone = post_json(&app, &key, json!({"query": "再加上 name", "schema": users_schema(&["id", "name"]), "database": {"type": "mysql"}, "previous_sql": edited})).await;
    assert_eq!(alone.0, StatusCode::OK, "{}", alone.1);
    assert!(app.llm.requests().last().unwrap().prompt_text().contains(edited));

    // Each use renews the two seconds; silence forgets the conversation.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let renewed = post_json(&app, &key, json!({"query": "again", "conversation_id": conversation})).await;
        assert_eq!(renewed.0, StatusCode::OK, "{}", renewed.1);
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let expired = post_json(&app, &key, json!({"query": "again", "conversation_id": conversation})).await;
    assert_error(&expired, StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    app.stop().await;
}

async fn a_redis_conversation_and_a_refused_write(mode: Mode) {
    let app = TestApp::start(mode).await;
    let (_, key) = key_holder(&app).await;
    let redis_schema = json!({"tables": [{"name": "user:*", "columns": [
        {"name": "name", "type": "string", "comment": "用户名"}, {"name": "age", "type": "string", "comment": "年龄"}]}]});
    app.llm.on_prompt_containing("age 字段", answer("HGET user:1001 name\nHGET user:1001 age", "两个字段"));
    app.llm.on_prompt_containing("所有用户 key", answer("KEYS user:*", "列出 key"));
    app.llm.on_prompt_containing("删除 user:1001", answer("DEL user:1001", "删除"));
    app.llm.on_prompt_containing("删除 user:1001", answer("HGETALL user:1001", "只读取"));
    app.llm.set_default(answer("HGET user:1001 name", "获取 key user:1001 的 hash 字段 name"));

    let first = post_json(&app, &key, json!({"query": "获取 user:1001 的 name 字段", "schema": redis_schema, "database": {"type": "redis", "version": "7.0"}})).await;
    assert_eq!((first.0, first.1["sql"].as_str()), (StatusCode::OK, Some("HGET user:1001 name")), "{}", first.1);
    let conversation = first.1["conversation_id"].as_str().unwrap().to_owned();
    let follow = post_json(&app, &key, json!({"query": "再加上 age 字段", "conversation_id": conversation})).await;
    assert_eq!(follow.1["sql"], "HGET user:1001 name\nHGET user:1001 age", "several lines, each checked: {}", follow.1);
    assert!(app.llm.requests().last().unwrap().prompt_text().contains("HGET user:1001 name"));
    // Each of these starts a conversation of its own: a follow-up's prompt would also hold the earlier questions.
    let redis = |query: &str| json!({"query": query, "schema": redis_schema, "database": {"type": "redis"}});
    let keys = post_json(&app, &key, redis("所有用户 key")).await;
    assert!(
        keys.1["sql"].as_str().unwrap().starts_with("SCAN 0 MATCH user:* COUNT"),
        "KEYS becomes a bounded SCAN: {}",
        keys.1
    );

    // A write goes back to the model once; it corrects itself to a read.
    let corrected = post_json(&app, &key, redis("删除 user:1001")).await;
    assert_eq!(corrected.1["sql"], "HGETALL user:1001", "{}", corrected.1);
    // A model that insists on writing is refused.
    app.llm.on_prompt_containing("清空", answer("FLUSHALL", "清空"));
    let refused = post_json(&app, &key, redis("清空数据库")).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "SQL_VALIDATION_FAILED");
    app.stop().await;
}
