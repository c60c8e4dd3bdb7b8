//! Worker requests inside one process: each listening worker is a channel, and a request goes to the next open one
//! in turn (round robin).

use crate::{BusError, Replier, WorkerRequestDelivery};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_common::messages::{WorkerReply, WorkerRequest};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

/// Requests queued for one listener before a requester waits for room (within its timeout).
const REQUEST_BUFFER: usize = 1_024;

/// The workers listening for requests.
#[derive(Default)]
pub(super) struct Listeners {
    set: Mutex<ListenerSet>,
}

#[derive(Default)]
struct ListenerSet {
    senders: Vec<mpsc::Sender<Pending>>,
    /// Index of the listener that got the last request.
    last: usize,
}

/// A request on its way to a worker, with the channel its reply comes back on.
struct Pending {
    request: WorkerRequest,
    reply: oneshot::Sender<WorkerReply>,
}

impl Listeners {
    /// A new listener; it stops listening when the stream is dropped.
    pub(super) fn listen(&self) -> BoxStream<'static, WorkerRequestDelivery> {
        let (tx, rx) = mpsc::channel(REQUEST_BUFFER);
        self.set.lock().unwrap_or_else(PoisonError::into_inner).senders.push(tx);
        ReceiverStream::new(rx)
            .map(|pending: Pending| WorkerRequestDelivery {
                request: pending.request,
                replier: Box::new(InProcessReplier(pending.reply)),
            })
            .boxed()
    }

    /// The next listener in turn, forgetting those that stopped listening; `None` when nobody listens.
    fn next(&self) -> Option<mpsc::Sender<Pending>> {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        set.senders.retain(|sender| !sender.is_closed());
        if set.senders.is_empty() {
            return None;
        }
        set.last = (set.last + 1) % set.senders.len();
        Some(set.senders[set.last].clone())
    }

    pub(super) async fn request(&self, request: &WorkerRequest, timeout: Duration) -> Result<WorkerReply, BusError> {
        let deadline = Instant::now() + timeout;
        let (reply, replied) = oneshot::channel();
        let mut pending = Pending { request: request.clone(), reply };
        loop {
            let listener = self.next().ok_or(BusError::NoResponders)?;
            match tokio::time::timeout_at(deadline, listener.send(pending)).await {
                Ok(Ok(())) => break,
                // That listener stopped listening meanwhile: the next one gets the request.
                Ok(Err(mpsc::error::SendError(returned))) => pending = returned,
                Err(_) => return Err(BusError::TimedOut(timeout)),
            }
        }
        match tokio::time::timeout_at(deadline, replied).await {
            Ok(Ok(reply)) => Ok(reply),
            // The worker dropped the request unanswered. On NATS nothing would tell the requester before its
            // timeout: waiting for it here too keeps the two buses alike.
            Ok(Err(_)) => {
                tokio::time::sleep_until(deadline).await;
                Err(BusError::TimedOut(timeout))
            }
            Err(_) => Err(BusError::TimedOut(timeout)),
        }
    }
}

struct InProcessReplier(oneshot::Sender<WorkerReply>);

#[async_trait]
impl Replier for InProcessReplier {
    async fn reply(self: Box<Self>, reply: &WorkerReply) -> Result<(), BusError> {
        // As on NATS, a reply nobody waits for any more (the requester timed out) is not an error.
        if self.0.send(reply.clone()).is_err() {
            debug!("worker reply arrived after the requester gave up");
        }
        Ok(())
    }
}
