//! Passwords in the errors of real servers: a short or common-word password leaves the database's message as the
//! database wrote it, and a password that the message really shows is hidden.

mod common;

use common::{MyDb, PgDb, settings, unique_name};
use querygpt_common::config::SecretString;
use querygpt_targets::{TargetError, TargetSpec, Targets};
use sqlx::{AssertSqlSafe, Executor};

/// Passwords that occur in ordinary messages by chance (letters of words, a column's name, MySQL's "YES").
const COINCIDENTAL: [&str; 7] = ["x", "e", "ab", "ss", "YES", "exist", "column"];

fn with_password(spec: &TargetSpec, password: &str) -> TargetSpec {
    TargetSpec { password: Some(SecretString::new(password)), ..spec.clone() }
}

/// The message of the error that running `sql` as `spec` gives, or `None` when it succeeded.
async fn error_of(targets: &Targets, key: &str, spec: &TargetSpec, sql: &str) -> Option<String> {
    targets.execute(key, spec, sql).await.err().map(|e: TargetError| e.to_string())
}

#[tokio::test]
async fn postgresql_messages_keep_their_words_and_lose_the_password() {
    let db = PgDb::create().await;
    // The test server trusts local logins, so that every password here logs in as the test user.
    let spec = db.spec();
    let targets = Targets::new(settings());
    let query = "SELECT exist_x FROM (SELECT 1 AS id) AS t";
    let baseline = error_of(&targets, "pg-plain", &spec, query).await;
    let mut seen = Vec::new();
    for password in COINCIDENTAL {
        let message = error_of(&targets, &format!("pg-{password}"), &with_password(&spec, password), query).await;
        seen.push((password, message));
    }
    // A login named like its password, a habit of test setups: the role error shows the name, so it is hidden.
    let login = format!("{}_login", unique_name());
    let named = TargetSpec { username: Some(login.clone()), ..with_password(&spec, &login) };
    let role_error = error_of(&targets, "pg-named", &named, "SELECT 1").await;
    db.drop_db().await;

    let baseline = baseline.expect("the query fails");
    assert!(baseline.contains(r#"column "exist_x" does not exist"#), "{baseline}");
    for (password, message) in seen {
        assert_eq!(message.as_ref(), Some(&baseline), "password {password:?}");
    }
    let role_error = role_error.expect("the login fails");
    assert_eq!(role_error, r#"cannot connect to the database: role "***" does not exist"#);
}

#[tokio::test]
async fn mariadb_login_and_query_errors_stay_readable() {
    let db = MyDb::create().await;
    let user = unique_name();
    let mut admin = db.admin().await;
    for statement in [
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'x'"),
        format!("GRANT SELECT ON {}.* TO '{user}'@'%'", db.name),
        "CREATE TABLE t (id INT)".to_owned(),
    ] {
        admin.execute(AssertSqlSafe(statement)).await.expect("fixture");
    }
    let targets = Targets::new(settings());
    let reader = TargetSpec { username: Some(user.clone()), ..with_password(&db.spec(), "x") };
    let query = "SELECT exist_x FROM t";
    let baseline = error_of(&targets, "my-root", &db.spec(), query).await;
    // The password is one letter that the message holds twice.
    let query_error = error_of(&targets, "my-x", &reader, query).await;
    let mut refused = Vec::new();
    for wrong in COINCIDENTAL.iter().copied().filter(|p| *p != "x").chain(["wrong-password-1"]) {
        let message = error_of(&targets, &format!("my-{wrong}"), &with_password(&reader, wrong), "SELECT 1").await;
        refused.push((wrong, message));
    }
    admin.execute(AssertSqlSafe(format!("DROP USER '{user}'@'%'"))).await.expect("drop user");
    db.drop_db().await;

    let baseline = baseline.expect("the query fails");
    assert!(baseline.contains("Unknown column 'exist_x'"), "{baseline}");
    assert_eq!(query_error, Some(baseline));
    let denied = format!("cannot connect to the database: Access denied for user '{user}'@");
    for (wrong, message) in refused {
        let message = message.expect("the login fails");
        assert!(message.starts_with(&denied) && message.ends_with("(using password: YES)"), "{wrong:?}: {message}");
        assert!(COINCIDENTAL.contains(&wrong) || !message.contains(wrong), "{wrong:?}: {message}");
    }
}
