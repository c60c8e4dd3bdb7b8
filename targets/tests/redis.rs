//! Redis targets against the real server: schema sample, reply shapes, caps, KEYS as a bounded SCAN, the time
//! limit, the login warnings, and the attack corpus run as a read-only ACL user with the validator switched off.
//!
//! Each test owns one database number (11..=14) and empties it before and after.

mod common;

use common::settings;
use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_sqlsafe::{LintTarget, Rule, validate_redis};
use querygpt_targets::{TargetError, TargetSettings, TargetSpec, Targets};
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("QUERYGPT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn spec(db: u8) -> TargetSpec {
    let url = url::Url::parse(&redis_url()).unwrap();
    TargetSpec {
        driver: Driver::Redis,
        host: url.host_str().map(str::to_owned),
        port: url.port(),
        username: None,
        password: None,
        database: db.to_string(),
    }
}

/// An admin connection to database `db`, emptied, with `fixture` loaded (one command per entry).
async fn admin(db: u8, fixture: &[&[&str]]) -> MultiplexedConnection {
    let client = redis::Client::open(format!("{}/{db}", redis_url())).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB").exec_async(&mut conn).await.unwrap();
    for command in fixture {
        let mut cmd = redis::cmd(command[0]);
        for arg in &command[1..] {
            cmd.arg(*arg);
        }
        cmd.exec_async(&mut conn).await.unwrap();
    }
    conn
}

async fn flush(mut conn: MultiplexedConnection) {
    redis::cmd("FLUSHDB").exec_async(&mut conn).await.unwrap();
}

const SHOP: &[&[&str]] = &[
    &["SET", "greeting", "hello"],
    &["SET", "visits", "42"],
    &["SET", "zip", "007"],
    &["HSET", "user:1001", "name", "Ada", "age", "36"],
    &["HSET", "user:1002", "name", "Bob", "email", "bob@example.com"],
    &["RPUSH", "queue:jobs", "a", "b", "c"],
    &["SADD", "tags", "red", "green"],
    &["ZADD", "scores", "10", "ada", "7.5", "bob"],
    &["XADD", "events", "1-1", "kind", "login", "user", "ada"],
];

fn rows(out: &querygpt_targets::QueryOutput) -> Vec<Value> {
    out.rows.iter().cloned().map(Value::Object).collect()
}

#[tokio::test]
async fn schema_samples_key_patterns_with_their_columns() {
    let conn = admin(11, SHOP).await;
    let targets = Targets::new(settings());
    let schema = targets.schema("redis-schema", &spec(11)).await.unwrap();
    let tables: Vec<(&str, Vec<&str>, Option<i64>)> = schema
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.columns.iter().map(|c| c.name.as_str()).collect(), t.row_count))
        .collect();
    let expected: Vec<(&str, Vec<&str>, Option<i64>)> = vec![
        ("events", vec!["id", "kind", "user"], Some(1)),
        ("greeting", vec!["value"], Some(1)),
        ("queue:jobs", vec!["index", "value"], Some(1)),
        ("scores", vec!["member", "score"], Some(1)),
        ("tags", vec!["member"], Some(1)),
        ("user:*", vec!["age", "email", "name"], Some(2)),
        ("visits", vec!["value"], Some(1)),
        ("zip", vec!["value"], Some(1)),
    ];
    // The fields of `user:*` come from two keys in SCAN order, which varies: compare them sorted.
    let tables: Vec<_> = tables
        .into_iter()
        .map(|(n, mut c, r)| {
            if n == "user:*" {
                c.sort();
            }
            (n, c, r)
        })
        .collect();
    assert_eq!(tables, expected);
    let user = schema.tables.iter().find(|t| t.name == "user:*").unwrap();
    assert!(user.comment.as_deref().unwrap().starts_with("Redis hash keys, 2 in the sample"), "{:?}", user.comment);

    // The sample stops at its key cap.
    let capped = Targets::new(TargetSettings { redis_sample_keys: 3, ..settings() });
    let sampled: i64 =
        capped.schema("redis-schema-cap", &spec(11)).await.unwrap().tables.iter().filter_map(|t| t.row_count).sum();
    assert_eq!(sampled, 3);
    flush(conn).await;
}

#[tokio::test]
async fn replies_of_every_type_become_tables() {
    let conn = admin(12, SHOP).await;
    let targets = Targets::new(settings());
    let run = |text: &'static str| {
        let targets = &targets;
        async move { targets.execute("redis-exec", &spec(12), text).await.unwrap() }
    };
    let out = run("GET greeting").await;
    assert_eq!((out.columns.clone(), rows(&out)), (vec!["value".to_owned()], vec![json!({"value": "hello"})]));
    assert_eq!(rows(&run("GET visits").await), vec![json!({"value": 42})]);
    assert_eq!(rows(&run("GET zip").await), vec![json!({"value": "007"})]);
    assert_eq!(rows(&run("GET missing").await), vec![json!({"value": null})]);
    assert_eq!(rows(&run("HLEN user:1001").await), vec![json!({"value": 2})]);
    assert_eq!(
        rows(&run("HGETALL user:1001").await),
        vec![json!({"field": "name", "value": "Ada"}), json!({"field": "age", "value": 36})]
    );
    assert_eq!(
        rows(&run("LRANGE queue:jobs 1 -1").await),
        vec![json!({"index": 1, "value": "b"}), json!({"index": 2, "value": "c"})]
    );
    let mut tags: Vec<Value> = rows(&run("SMEMBERS tags").await);
    tags.sort_by_key(|v| v.to_string());
    assert_eq!(tags, vec![json!({"value": "green"}), json!({"value": "red"})]);
    assert_eq!(
        rows(&run("ZRANGE scores 0 -1 WITHSCORES").await),
        vec![json!({"member": "bob", "score": 7.5}), json!({"member": "ada", "score": 10})]
    );
    assert_eq!(rows(&run("ZRANGE scores 0 -1").await), vec![json!({"value": "bob"}), json!({"value": "ada"})]);
    assert_eq!(
        rows(&run("XRANGE events - +").await),
        vec![json!({"id": "1-1", "fields": {"kind": "login", "user": "ada"}})]
    );
    assert_eq!(
        rows(&run("MGET greeting missing").await),
        vec![json!({"key": "greeting", "value": "hello"}), json!({"key": "missing", "value": null})]
    );
    // Several commands: one table with the command's line first.
    let out = run("GET greeting\nSCARD tags").await;
    assert_eq!(out.columns, vec!["command", "value"]);
    assert_eq!(
        rows(&out),
        vec![json!({"command": "GET greeting", "value": "hello"}), json!({"command": "SCARD tags", "value": 2})]
    );
    // Errors are the server's, with the command named; writes are refused before they are sent.
    let err = targets.execute("redis-exec", &spec(12), "LRANGE greeting 0 1").await.unwrap_err();
    assert!(matches!(&err, TargetError::QueryFailed(m) if m.contains("WRONGTYPE")), "{err}");
    let err = targets.execute("redis-exec", &spec(12), "DEL greeting").await.unwrap_err();
    assert!(matches!(err, TargetError::ReadOnlyViolation(_)), "{err}");
    flush(conn).await;
}

#[tokio::test]
async fn caps_truncate_and_keys_is_a_bounded_scan() {
    let mut fixture: Vec<Vec<String>> = Vec::new();
    let mut list = vec!["RPUSH".to_owned(), "big".to_owned()];
    list.extend((0..50).map(|i| format!("item{i}")));
    fixture.push(list);
    for i in 0..3000 {
        fixture.push(vec!["SET".into(), format!("k:{i}"), i.to_string()]);
    }
    let refs: Vec<Vec<&str>> = fixture.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
    let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    let conn = admin(13, &slices).await;
    let targets = Targets::new(TargetSettings { row_cap: 10, ..settings() });

    let out = targets.execute("redis-caps", &spec(13), "LRANGE big 0 -1").await.unwrap();
    assert_eq!((out.rows.len(), out.truncated), (10, true));
    let out = targets.execute("redis-caps", &spec(13), "LRANGE big 0 4").await.unwrap();
    assert_eq!((out.rows.len(), out.truncated), (5, false));

    // KEYS k:* is a SCAN continued only until the cap is passed: 10 keys and `truncated`, not 3000.
    let out = targets.execute("redis-caps", &spec(13), "KEYS k:*").await.unwrap();
    assert_eq!((out.columns.clone(), out.rows.len(), out.truncated), (vec!["key".to_owned()], 10, true));
    // A pattern matching few keys walks the whole keyspace and returns all of them, untruncated.
    let out = targets.execute("redis-caps", &spec(13), "KEYS k:299?").await.unwrap();
    let mut keys: Vec<String> = out.rows.iter().map(|r| r["key"].as_str().unwrap().to_owned()).collect();
    keys.sort();
    assert_eq!((keys, out.truncated), ((2990..3000).map(|i| format!("k:{i}")).collect::<Vec<_>>(), false));

    // The byte limit cuts too.
    let small = Targets::new(TargetSettings { max_result_bytes: 200, ..settings() });
    let out = small.execute("redis-bytes", &spec(13), "LRANGE big 0 -1").await.unwrap();
    assert!(out.truncated && !out.rows.is_empty() && out.rows.len() < 50, "{}", out.rows.len());
    flush(conn).await;
}

#[tokio::test]
async fn a_command_past_the_time_limit_is_stopped() {
    let mut conn = admin(14, &[]).await;
    // A reply of 300 000 elements takes far more than a millisecond; blocking the shared server to make a slow
    // command would stall every other test using it.
    for chunk in 0..30 {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg("big");
        for i in 0..10_000 {
            cmd.arg(format!("element-{chunk}-{i}"));
        }
        cmd.exec_async(&mut conn).await.unwrap();
    }
    let targets = Targets::new(TargetSettings { statement_timeout: Duration::from_millis(1), ..settings() });
    // A fast command fits in the millisecond, though not always on a busy machine (opening the connection counts
    // too): it must succeed within a few tries.
    let length = || async {
        for _ in 0..50 {
            if let Ok(output) = targets.execute("redis-slow", &spec(14), "LLEN big").await {
                return output.rows[0]["value"].clone();
            }
        }
        panic!("LLEN never finished within 1 ms");
    };
    assert_eq!(length().await, json!(300_000));
    let err = targets.execute("redis-slow", &spec(14), "LRANGE big 0 -1").await.unwrap_err();
    assert!(matches!(err, TargetError::Timeout(_)), "{err}");
    // The timed-out connection was dropped: the next call opens a fresh one.
    assert_eq!(length().await, json!(300_000));
    flush(conn).await;
}

/// A read-only ACL user as the README tells operators to create it; removed by [`drop_user`].
async fn create_reader(conn: &mut MultiplexedConnection, name: &str) {
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            name,
            "reset",
            "on",
            ">reader-pw",
            "~*",
            "&*",
            "+@read",
            "-@write",
            "-@dangerous",
            "+select",
            "+info",
        ])
        .exec_async(conn)
        .await
        .unwrap();
}

async fn drop_user(conn: &mut MultiplexedConnection, name: &str) {
    redis::cmd("ACL").arg("DELUSER").arg(name).exec_async(conn).await.unwrap();
}

fn reader_spec(db: u8, name: &str) -> TargetSpec {
    TargetSpec { username: Some(name.into()), password: Some(SecretString::new("reader-pw")), ..spec(db) }
}

#[tokio::test]
async fn the_test_warns_for_a_login_that_can_write_only() {
    let mut conn = admin(14, &[&["SET", "a", "1"]]).await;
    let user = format!("qg-reader-{}", uuid::Uuid::new_v4().simple());
    create_reader(&mut conn, &user).await;
    let targets = Targets::new(settings());
    let admin_info = targets.test("redis-admin", &spec(14)).await.unwrap();
    assert!(admin_info.version.starts_with("Redis "), "{}", admin_info.version);
    assert!(admin_info.tables_count >= 1);
    assert_eq!(admin_info.warnings.len(), 1, "{:?}", admin_info.warnings);
    assert!(admin_info.warnings[0].contains("SET"), "{:?}", admin_info.warnings);

    let reader = targets.test("redis-reader", &reader_spec(14, &user)).await;
    drop_user(&mut conn, &user).await;
    let reader = reader.unwrap();
    assert!(reader.warnings.is_empty(), "{:?}", reader.warnings);
    flush(conn).await;
}

/// Every Redis attack, sent straight to the server (no validator) as the read-only ACL user: nothing changes,
/// and every write among them is refused by the server's ACL.
#[tokio::test]
async fn attack_corpus_changes_nothing_as_a_read_only_acl_user() {
    let mut conn = admin(10, SHOP).await;
    let user = format!("qg-corpus-{}", uuid::Uuid::new_v4().simple());
    create_reader(&mut conn, &user).await;
    let before = snapshot(&mut conn).await;

    let url = url::Url::parse(&redis_url()).unwrap();
    let reader_url = format!("redis://{user}:reader-pw@{}:{}/10", url.host_str().unwrap(), url.port().unwrap_or(6379));
    let mut reader = redis::Client::open(reader_url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let corpus = std::fs::read_to_string(querygpt_sqlsafe::corpus::attacks_file(LintTarget::Redis)).unwrap();
    let entries = querygpt_sqlsafe::corpus::parse(&corpus).unwrap();
    assert!(entries.len() > 20);
    let mut refused = 0;
    for entry in &entries {
        for line in entry.statement.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("--")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let name = words[0].to_ascii_uppercase();
            if matches!(name.as_str(), "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "MONITOR" | "QUIT" | "RESET")
                || (name.starts_with('B') && words.iter().any(|w| w.parse::<f64>().is_ok()))
            {
                // Would switch or close the shared connection, or block: their refusal is the validator's job.
                continue;
            }
            let mut cmd = redis::cmd(&name);
            for word in &words[1..] {
                cmd.arg(*word);
            }
            let reply =
                tokio::time::timeout(Duration::from_secs(2), cmd.query_async::<redis::Value>(&mut reader)).await;
            if let Ok(Err(e)) = &reply
                && e.code() == Some("NOPERM")
            {
                refused += 1;
            }
            // A write (as the validator classes it) must be refused by the server itself.
            let write = matches!(validate_redis(line), Err(r) if r.rule == Rule::WriteCommand);
            assert!(!write || matches!(reply, Ok(Err(_))), "line {}: the server accepted `{line}`", entry.line);
        }
    }
    let after = snapshot(&mut conn).await;
    drop_user(&mut conn, &user).await;
    assert!(refused > 20, "only {refused} commands were refused by the ACL");
    assert_eq!(before, after);
    flush(conn).await;
}

/// Every key of the database with its type and a dump of its value (`DUMP` serializes any type).
async fn snapshot(conn: &mut MultiplexedConnection) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(conn).await.unwrap();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(conn).await.unwrap();
        out.push((key, dump));
    }
    out
}
