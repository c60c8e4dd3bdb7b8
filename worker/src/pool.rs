//! Bounded concurrency with a graceful end, shared by the job loop and the request loop.

use futures::StreamExt;
use futures::stream::BoxStream;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs `handle` on each item of `items`, at most `concurrency` at once, until `shutdown` is cancelled or `items`
/// ends. Then it drops `items` (so that nothing more is taken), lets the running handlers finish for `grace`, and
/// after that cancels the token each handler was given, waiting for them to wind up.
///
/// An item is only taken once a handler slot is free, so what the stream buffers stays with the bus, not here.
pub(crate) async fn run_bounded<T, F, Fut>(
    what: &'static str,
    mut items: BoxStream<'static, T>,
    concurrency: usize,
    shutdown: &CancellationToken,
    grace: Duration,
    handle: F,
) where
    F: Fn(T, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let tracker = TaskTracker::new();
    let abort = CancellationToken::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore never closed"),
            _ = shutdown.cancelled() => break,
        };
        let item = tokio::select! {
            item = items.next() => match item {
                Some(item) => item,
                None => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let handler = handle(item, abort.clone());
        tracker.spawn(async move {
            handler.await;
            drop(permit);
        });
    }

    drop(items);
    tracker.close();
    tracing::info!(what, in_flight = tracker.len(), "stopping");
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        abort.cancel();
        tracker.wait().await;
    }
}
