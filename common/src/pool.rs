//! What every sqlx pool of the service does when it hands out a connection.

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};
use std::time::Duration;

/// A pooled connection idle for longer than this is pinged before it is handed out.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// `options` with sqlx's ping of every connection taken from the pool (`test_before_acquire`) replaced by a ping of
/// the connections that sat idle for [`PING_IF_IDLE_FOR`] or longer.
///
/// The ping is a round trip to the database (for SQLite, a hop to the connection's thread) before each statement;
/// at load a connection goes back to work microseconds after it was returned, and the statement itself finds out
/// whether the connection still works. A connection that failed its ping is closed and the pool takes another, as
/// with sqlx's own test.
pub fn pinged_when_idle<DB: Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
    options.test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for >= PING_IF_IDLE_FOR {
                conn.ping().await?;
            }
            Ok(true)
        })
    })
}
