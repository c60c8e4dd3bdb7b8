//! `querygpt validate`: the validator as an operator's linter, reading a file or stdin.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn verdicts(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON verdict per line"))
        .collect()
}

#[test]
fn a_file_of_statements_gets_one_verdict_each_and_a_failing_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.sql");
    std::fs::write(
        &file,
        "SELECT region, SUM(amount)\nFROM sales\nGROUP BY region\n\n\
         WITH d AS (DELETE FROM sales RETURNING *) SELECT * FROM d\n\n\
         SELECT pg_catalog.PG_READ_FILE('/etc/passwd')\n\n\
         SELECT 1; COMMIT; DROP TABLE sales\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_querygpt"))
        .args(["validate", "--dialect", "postgresql"])
        .arg(&file)
        .output()
        .expect("run querygpt validate");
    assert_eq!(output.status.code(), Some(1), "a rejected statement fails the run");
    let verdicts = verdicts(&output.stdout);
    let rules: Vec<&Value> = verdicts.iter().map(|v| &v["rule"]).collect();
    assert_eq!(verdicts.len(), 4, "{verdicts:?}");
    assert_eq!(verdicts[0]["ok"], true);
    assert_eq!(verdicts[0]["statement"], "SELECT region, SUM(amount)\nFROM sales\nGROUP BY region");
    assert_eq!(
        rules[1..],
        [&Value::from("data_modifying_cte"), &Value::from("denied_function"), &Value::from("multiple_statements")]
    );
    assert!(verdicts[1..].iter().all(|v| v["ok"] == false && !v["message"].as_str().unwrap().is_empty()));
}

#[test]
fn stdin_lines_are_statements_and_all_passing_exits_zero() {
    for (dialect, input) in [
        (
            "mysql",
            "SELECT `name` FROM customers WHERE id = 1\nSELECT DATE_FORMAT(order_date, '%Y-%m') AS m, COUNT(*) FROM orders GROUP BY m\n",
        ),
        ("sqlite", "SELECT strftime('%Y', order_date) AS y, COUNT(*) FROM orders GROUP BY y\n"),
        ("redis", "HGETALL user:1\nGET counter\n"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_querygpt"))
            .args(["validate", "--dialect", dialect])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run querygpt validate");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let verdicts = verdicts(&output.stdout);
        assert_eq!(verdicts.len(), input.lines().count(), "{dialect}: {verdicts:?}");
        assert!(verdicts.iter().all(|v| v["ok"] == true), "{dialect}: {verdicts:?}");
        assert!(output.status.success(), "{dialect}");
    }
}

#[test]
fn redis_write_and_script_commands_are_refused() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_querygpt"))
        .args(["validate", "--dialect", "redis"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SET k v\nEVAL \"return 1\" 0\nFLUSHALL\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let verdicts = verdicts(&output.stdout);
    let rules: Vec<&str> = verdicts.iter().map(|v| v["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["write_command", "scripting_command", "admin_command"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn an_unknown_dialect_is_a_usage_error() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_querygpt")).args(["validate", "--dialect", "oracle"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "clap's usage error status");
    assert!(String::from_utf8_lossy(&output.stderr).contains("oracle"));
}
