//! Worker requests on core NATS: request/reply on [`Subjects::worker_requests`], the workers subscribed in one queue
//! group so that the server hands each request to one of them. The server answers a request nobody is subscribed to
//! with a "no responders" status at once, which is how an API node knows without waiting.
//!
//! [`Subjects::worker_requests`]: querygpt_common::subjects::Subjects::worker_requests

use super::{NatsBus, subscribe_failed};
use crate::{BusError, Replier, WorkerRequestDelivery};
use async_nats::{PublishErrorKind, RequestErrorKind, Subject};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_common::ErrorCode;
use querygpt_common::messages::{BusMessage, WorkerReply, WorkerRequest};
use std::time::Duration;
use tracing::warn;

/// Queue group of the workers' request subscriptions.
const WORKERS_QUEUE_GROUP: &str = "workers";

impl NatsBus {
    pub(super) async fn send_worker_request(
        &self,
        request: &WorkerRequest,
        timeout: Duration,
    ) -> Result<WorkerReply, BusError> {
        // The client's own default (10 s) would apply without an explicit timeout.
        let outgoing = async_nats::Request::new().payload(request.encode().into()).timeout(Some(timeout));
        let message =
            self.inner.client.send_request(self.inner.subjects.worker_requests(), outgoing).await.map_err(|err| {
                match err.kind() {
                    RequestErrorKind::NoResponders => BusError::NoResponders,
                    RequestErrorKind::TimedOut => BusError::TimedOut(timeout),
                    _ => BusError::unavailable("cannot send a worker request", err),
                }
            })?;
        WorkerReply::decode(&message.payload).map_err(|err| BusError::other("unreadable worker reply", err))
    }

    pub(super) async fn listen_for_worker_requests(
        &self,
    ) -> Result<BoxStream<'static, WorkerRequestDelivery>, BusError> {
        let subscriber = self
            .inner
            .client
            .queue_subscribe(self.inner.subjects.worker_requests(), WORKERS_QUEUE_GROUP.to_owned())
            .await
            .map_err(|err| subscribe_failed("worker requests", err))?;
        // Requests sent after this returns must find the subscription.
        self.round_trip().await?;
        let client = self.inner.client.clone();
        Ok(subscriber.filter_map(move |message| accept(client.clone(), message)).boxed())
    }
}

/// Turns a request message into a delivery; unreadable ones are answered with `Failed` when someone waits for them.
async fn accept(client: async_nats::Client, message: async_nats::Message) -> Option<WorkerRequestDelivery> {
    let request = WorkerRequest::decode(&message.payload);
    let Some(reply_to) = message.reply else {
        warn!(subject = %message.subject, "dropping a worker request without a reply subject: nobody waits for it");
        return None;
    };
    let replier = Box::new(NatsReplier { client, reply_to });
    match request {
        Ok(request) => Some(WorkerRequestDelivery { request, replier }),
        Err(err) => {
            warn!(subject = %message.subject, error = %err, "unreadable worker request");
            let refusal =
                WorkerReply::failed(ErrorCode::InternalError, format!("the worker cannot read this request: {err}"));
            if let Err(err) = replier.reply(&refusal).await {
                warn!(error = querygpt_common::error_chain(&err), "cannot answer an unreadable worker request");
            }
            None
        }
    }
}

/// Publishes the reply to the requester's inbox.
struct NatsReplier {
    client: async_nats::Client,
    reply_to: Subject,
}

impl NatsReplier {
    async fn publish(&self, reply: &WorkerReply) -> Result<(), async_nats::PublishError> {
        self.client.publish(self.reply_to.clone(), reply.encode().into()).await
    }
}

#[async_trait]
impl Replier for NatsReplier {
    async fn reply(self: Box<Self>, reply: &WorkerReply) -> Result<(), BusError> {
        match self.publish(reply).await {
            Err(err) if err.kind() == PublishErrorKind::MaxPayloadExceeded => {
                // The schema of a very large database can outgrow the server's max_payload (1 MB by default): the
                // requester is told so instead of being left to time out.
                warn!(error = %err, "worker reply too large for the bus; answering with a failure");
                let refusal = WorkerReply::failed(ErrorCode::InternalError, "the answer is too large to send back");
                self.publish(&refusal).await.map_err(|err| BusError::unavailable("cannot send a worker reply", err))
            }
            result => result.map_err(|err| BusError::unavailable("cannot send a worker reply", err)),
        }
    }
}
