//! Errors of the target layer. Their `Display` is written for the person who asked the question: it names what
//! went wrong in their terms and carries the database's own message, never a password.

use std::time::Duration;

use crate::redact;

/// Why a call on a user's database failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The connection settings cannot work (missing host, unsupported driver...).
    #[error("invalid connection settings: {0}")]
    InvalidSpec(String),
    /// The database could not be reached, or it refused the login.
    #[error("cannot connect to the database: {0}")]
    ConnectFailed(String),
    /// Every connection this service keeps to the database stayed in use for the whole time limit.
    #[error("the database is busy: no connection became free within {}", secs(*.0))]
    Busy(Duration),
    /// The statement ran past the time limit and was stopped on the server.
    #[error("the query did not finish within {} and was stopped", secs(*.0))]
    Timeout(Duration),
    /// The database rejected the statement; carries its message.
    #[error("the query failed: {0}")]
    QueryFailed(String),
    /// The database (or the read-only session) refused to change data.
    #[error("the database refused to change data, only read-only queries are allowed: {0}")]
    ReadOnlyViolation(String),
    /// The host is, or resolves to, an address the network policy refuses (loopback, private, metadata...).
    #[error("this database host is not allowed: {0}")]
    HostNotAllowed(String),
    /// A SQLite file outside the directory the service may read.
    #[error("this database file is not allowed: {0}")]
    PathNotAllowed(String),
    /// A single row is larger than the result size limit.
    #[error("the result is too large: {0}")]
    TooLarge(String),
    /// The demo database could not be written.
    #[error("cannot create the demo database: {0}")]
    Demo(String),
}

impl TargetError {
    /// Hides passwords in the message (see [`crate::redact`]): connection-string patterns always, `secret` (the
    /// connection's password) where it stands as a whole token and is long enough not to be a coincidence.
    pub(crate) fn redact(self, secret: &str) -> Self {
        let clean = |s: String| redact::redact(&s, secret);
        match self {
            TargetError::InvalidSpec(s) => TargetError::InvalidSpec(clean(s)),
            TargetError::ConnectFailed(s) => TargetError::ConnectFailed(clean(s)),
            TargetError::QueryFailed(s) => TargetError::QueryFailed(clean(s)),
            TargetError::ReadOnlyViolation(s) => TargetError::ReadOnlyViolation(clean(s)),
            TargetError::PathNotAllowed(s) => TargetError::PathNotAllowed(clean(s)),
            TargetError::HostNotAllowed(s) => TargetError::HostNotAllowed(clean(s)),
            TargetError::TooLarge(s) => TargetError::TooLarge(clean(s)),
            TargetError::Demo(s) => TargetError::Demo(clean(s)),
            other @ (TargetError::Busy(_) | TargetError::Timeout(_)) => other,
        }
    }
}

/// `1.5s`, `30s`: durations as people read them.
pub(crate) fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{:.1}s", d.as_secs_f64()) }
}

/// Maps an error raised while obtaining a connection (pool acquire, connect, login).
pub(crate) fn connect_error(err: sqlx::Error, connect_timeout: Duration) -> TargetError {
    match err {
        sqlx::Error::PoolTimedOut => TargetError::ConnectFailed(format!(
            "no connection could be opened within {} (host unreachable, connection refused, or too slow)",
            secs(connect_timeout)
        )),
        sqlx::Error::Database(db) => TargetError::ConnectFailed(db.message().to_owned()),
        sqlx::Error::Io(io) => TargetError::ConnectFailed(io.to_string()),
        sqlx::Error::Tls(tls) => TargetError::ConnectFailed(format!("TLS error: {tls}")),
        sqlx::Error::Configuration(cfg) => TargetError::InvalidSpec(cfg.to_string()),
        sqlx::Error::PoolClosed => TargetError::ConnectFailed("the connection pool was closed".into()),
        other => TargetError::ConnectFailed(other.to_string()),
    }
}

/// Maps an error that is not a database error (lost connection, protocol, decoding) raised while a statement ran.
pub(crate) fn transport_error(err: sqlx::Error) -> TargetError {
    match err {
        sqlx::Error::Io(io) => TargetError::QueryFailed(format!("the connection to the database was lost: {io}")),
        sqlx::Error::Database(db) => TargetError::QueryFailed(db.message().to_owned()),
        other => TargetError::QueryFailed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_of_every_message() {
        let err = TargetError::ConnectFailed("login s3cret-pass failed for s3cret-pass".into()).redact("s3cret-pass");
        assert_eq!(err.to_string(), "cannot connect to the database: login *** failed for ***");
        let err = TargetError::InvalidSpec("bad dsn host=db password=x".into()).redact("x");
        assert_eq!(err.to_string(), "invalid connection settings: bad dsn host=db password=***");
        let err = TargetError::QueryFailed(r#"column "x" does not exist"#.into()).redact("x");
        assert_eq!(err.to_string(), r#"the query failed: column "x" does not exist"#);
        let timeout = TargetError::Timeout(Duration::from_millis(1500)).redact("x");
        assert_eq!(timeout.to_string(), "the query did not finish within 1.5s and was stopped");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(Duration::from_secs(30)), "30s");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
    }
}
