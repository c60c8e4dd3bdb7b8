//! Pieces every driver's session shares: the limits, a checked-out connection that is only given back to its pool
//! when the session ended cleanly, and the client-side backstop of the server-side time limit.

use crate::TargetSettings;
use crate::error::{TargetError, connect_error};
use querygpt_common::telemetry::POOL_WAIT;
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{Database, Pool};
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long the client waits past the statement limit for the server's own timeout error before it gives up on
/// the connection itself.
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// A pooled connection older than this is replaced, which bounds any session state a statement could leave behind.
const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Limits of one call, copied out of the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub statement_timeout: Duration,
    pub connect_timeout: Duration,
    pub row_cap: usize,
    pub max_result_bytes: usize,
}

impl Limits {
    pub(crate) fn statement_millis(&self) -> u64 {
        u64::try_from(self.statement_timeout.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// The statement limit in whole seconds, at least 1 (for settings that only take seconds).
    pub(crate) fn statement_secs_ceil(&self) -> u64 {
        self.statement_millis().div_ceil(1000)
    }
}

/// Pool options common to every target pool: small, lazily connected, idle connections closed, a connection pinged
/// only after it sat idle.
pub(crate) fn pool_options<DB: Database>(settings: &TargetSettings) -> PoolOptions<DB> {
    querygpt_common::pool::pinged_when_idle(PoolOptions::<DB>::new())
        .max_connections(settings.max_connections_per_target.max(1))
        .min_connections(0)
        .acquire_timeout(settings.connect_timeout)
        .idle_timeout(settings.idle_expiry)
        .max_lifetime(MAX_CONNECTION_LIFETIME)
}

/// A connection taken from a target pool for one session.
///
/// Unless the session marks it [`reusable`](Checkout::reusable) (it ended with a successful ROLLBACK and nothing
/// left unread), dropping it closes the connection instead of returning it: a cancelled job, a client-side timeout
/// or a truncated result never leaves a connection mid-transaction or mid-result in the pool, and the server aborts
/// the statement when it sees the connection go. SQLite connections are not closed; they get their interrupt flag
/// raised instead (see [`Checkout::interrupt_on_abandon`]).
pub(crate) struct Checkout<DB: Database> {
    /// Always `Some` until dropped.
    conn: Option<PoolConnection<DB>>,
    /// Set by the session once the connection is known to be idle and outside any transaction.
    pub reusable: bool,
    interrupt: Option<Arc<AtomicBool>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Checkout<DB> {
    /// Waits for one of the target's connection slots (at most the statement time limit, so a busy database reads
    /// as busy, not as unreachable), then takes a connection from the pool, opening one if needed.
    pub(crate) async fn take(pool: &Pool<DB>, slots: &Arc<Semaphore>, limits: &Limits) -> Result<Self, TargetError> {
        let waiting = std::time::Instant::now();
        let permit = tokio::time::timeout(limits.statement_timeout, Arc::clone(slots).acquire_owned())
            .await
            .map_err(|_| TargetError::Busy(limits.statement_timeout))?
            .map_err(|_| TargetError::ConnectFailed("the connection pool was closed".into()))?;
        // The slots match the pool size, so the pool always has room here: its timeout only fires on connecting.
        let conn = pool.acquire().await.map_err(|e| connect_error(e, limits.connect_timeout))?;
        metrics::histogram!(POOL_WAIT, "pool" => "target").record(waiting.elapsed().as_secs_f64());
        Ok(Checkout { conn: Some(conn), reusable: false, interrupt: None, _permit: permit })
    }

    /// On an unclean drop, raise `flag` (watched by the statement's interrupt check) and keep the connection.
    pub(crate) fn interrupt_on_abandon(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }
}

impl<DB: Database> Deref for Checkout<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        self.conn.as_ref().expect("a checkout holds its connection until dropped")
    }
}

impl<DB: Database> DerefMut for Checkout<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_mut().expect("a checkout holds its connection until dropped")
    }
}

impl<DB: Database> Drop for Checkout<DB> {
    fn drop(&mut self) {
        if self.reusable {
            return;
        }
        match &self.interrupt {
            Some(flag) => flag.store(true, Ordering::Release),
            // Taken out of the pool and dropped: the socket closes right now. A graceful close (sqlx's
            // `close_on_drop`) is no good here: over TLS it waits for the server to send something, which a
            // running statement does not, so the server would only see the connection go 5 seconds later.
            None => drop(self.conn.take().map(PoolConnection::detach)),
        }
    }
}

/// What a driver does at the two ends of a session on a checked-out connection.
pub(crate) trait Session<DB: Database> {
    /// Readies the connection for the session: read-only, the limits set, anything else the driver checks first.
    async fn begin(&self, co: &mut Checkout<DB>, limits: &Limits) -> Result<(), TargetError>;

    /// Ends the session and, when that worked, marks the connection [`reusable`](Checkout::reusable).
    async fn end(&self, co: &mut Checkout<DB>);
}

/// Runs one session on a connection taken from `pool`, under the client-side deadline of [`bounded`]: `session`
/// begins it, `work` runs in it, and `session` ends it. Besides its result, `work` says whether it read the
/// connection to the end of what the statement returned: if not, the session is not ended (with rows still in
/// flight a ROLLBACK would first read them all) and the connection is closed instead of being reused.
pub(crate) async fn run_session<DB: Database, T>(
    pool: &Pool<DB>,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    session: impl Session<DB>,
    work: impl AsyncFnOnce(&mut Checkout<DB>) -> (Result<T, TargetError>, bool),
) -> Result<T, TargetError> {
    let mut co = Checkout::take(pool, slots, limits).await?;
    bounded(limits, async {
        session.begin(&mut co, limits).await?;
        let (result, drained) = work(&mut co).await;
        if drained {
            session.end(&mut co).await;
        }
        result
    })
    .await
}

/// Runs a session body under a client-side deadline a little past the statement limit. The server's own limit
/// normally fires first; this only catches a server or network that stopped answering. The body's future is
/// dropped on expiry, which drops nothing but borrows: the caller's [`Checkout`] then closes the connection.
async fn bounded<T>(limits: &Limits, body: impl Future<Output = Result<T, TargetError>>) -> Result<T, TargetError> {
    tokio::time::timeout(limits.statement_timeout + CLIENT_GRACE, body)
        .await
        .unwrap_or(Err(TargetError::Timeout(limits.statement_timeout)))
}
