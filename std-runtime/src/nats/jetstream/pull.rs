//! Pulling from a consumer: one batch ([`PullConsumer::fetch`]) or a
//! continuous [`Messages`] stream that keeps pulls outstanding.

use std::time::Duration;

use courier_core::nats::jetstream::{encode_json, ApiOp, Conflict, PullRequest, PullStatus};
use futures::StreamExt;
use tokio::time::Instant;

use super::{to_json, JetStreamError, JsMessage, PullConsumer};
use crate::nats::{Event, EventStream, Message, Subscriber};

/// Settings of [`PullConsumer::messages`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullOptions {
    /// Messages requested and not yet received at most (default 100); a
    /// new pull is issued when half have arrived.
    pub batch: usize,
    /// Bytes requested and not yet received at most (None: no byte budget).
    pub max_bytes: Option<usize>,
    /// Each pull request expires after this (default 30 s).
    pub expires: Duration,
    /// The server sends a heartbeat when idle this long (default 5 s);
    /// after two missed the pull is issued again.
    pub idle_heartbeat: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            batch: 100,
            max_bytes: None,
            expires: Duration::from_secs(30),
            idle_heartbeat: Duration::from_secs(5),
        }
    }
}

fn status_of(msg: &Message) -> PullStatus {
    let raw = msg.headers().map(|h| h.as_bytes());
    let parsed = raw.and_then(|r| courier_core::nats::Headers::parse_received(r).ok());
    PullStatus::classify(msg.status(), parsed.as_ref())
}

fn description_of(msg: &Message) -> String {
    msg.headers()
        .and_then(|h| courier_core::nats::Headers::parse_received(h.as_bytes()).ok())
        .map(|h| h.description().to_string())
        .unwrap_or_default()
}

/// Size the server charges against a pull's max_bytes.
fn charged_size(msg: &Message) -> usize {
    msg.payload.len()
        + msg.headers().map_or(0, |h| h.as_bytes().len())
        + msg.subject().len()
        + msg.reply().map_or(0, str::len)
}

impl PullConsumer {
    fn next_subject(&self) -> Result<String, JetStreamError> {
        self.ctx
            .api_subject(ApiOp::ConsumerNext(&self.stream, &self.name))
    }

    /// Requests up to `batch` messages and returns those that arrive before
    /// the request expires (after `expires`) or the server says there are
    /// no more for now.
    pub async fn fetch(
        &self,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        let client = self.ctx.client();
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox).await?;
        let request = PullRequest {
            batch,
            expires: Some(expires),
            ..Default::default()
        };
        let body = to_json(|buf| encode_json(&request, "pull request", buf))?;
        client
            .publish_with_reply(&self.next_subject()?, &inbox, body)
            .await?;
        // The server ends the request with a 408 at `expires`; the margin only
        // guards against a 408 lost with the connection.
        let deadline = Instant::now() + expires + Duration::from_secs(5);
        let mut out = Vec::with_capacity(batch.min(1024));
        while out.len() < batch {
            let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await else {
                break;
            };
            match status_of(&msg) {
                PullStatus::Message => out.push(JsMessage::new(msg, client.clone())?),
                PullStatus::Conflict {
                    kind:
                        Conflict::ConsumerDeleted
                        | Conflict::ConsumerIsPushBased
                        | Conflict::ExceededLimit
                        | Conflict::ExceededMaxWaiting,
                    ..
                } if out.is_empty() => {
                    return Err(JetStreamError::PullEnded {
                        status: 409,
                        description: description_of(&msg),
                    })
                }
                s if s.ends_pull() => break,
                _ => {}
            }
        }
        let _ = sub.unsubscribe().await;
        Ok(out)
    }

    /// A continuous stream of the consumer's messages: pulls stay
    /// outstanding within the message and byte budget of `options`;
    /// heartbeats are checked and a pull lost to a missed heartbeat or a
    /// reconnect is issued again (nats.go #1621, #1729 stopped there).
    pub async fn messages(&self, options: PullOptions) -> Result<Messages, JetStreamError> {
        let client = self.ctx.client();
        let inbox = client.new_inbox();
        let sub = client.subscribe(&inbox).await?;
        Ok(Messages {
            consumer: self.clone(),
            next_subject: self.next_subject()?,
            events: client.events(),
            sub,
            inbox,
            options: PullOptions {
                batch: options.batch.max(1),
                ..options
            },
            pending_msgs: 0,
            pending_bytes: 0,
            last_activity: Instant::now(),
            pulls: 0,
            repulls: 0,
        })
    }
}

/// The consumer's messages, pulled continuously; see
/// [`PullConsumer::messages`]. Read with [`Messages::next`] or as a
/// `Stream` with [`Messages::into_stream`].
pub struct Messages {
    consumer: PullConsumer,
    next_subject: String,
    events: EventStream,
    sub: Subscriber,
    inbox: String,
    options: PullOptions,
    pending_msgs: usize,
    pending_bytes: usize,
    last_activity: Instant,
    pulls: u64,
    repulls: u64,
}

impl Messages {
    /// Pull requests sent so far.
    pub fn pulls(&self) -> u64 {
        self.pulls
    }

    /// Pulls issued again after a missed heartbeat or a reconnect.
    pub fn repulls(&self) -> u64 {
        self.repulls
    }

    /// Messages requested and not yet received.
    pub fn pending(&self) -> (usize, usize) {
        (self.pending_msgs, self.pending_bytes)
    }

    async fn pull_if_needed(&mut self) -> Result<(), JetStreamError> {
        let batch = self.options.batch;
        if self.pending_msgs > batch / 2 {
            return Ok(());
        }
        let want = batch - self.pending_msgs;
        let max_bytes = match self.options.max_bytes {
            Some(budget) => {
                let room = budget.saturating_sub(self.pending_bytes);
                if room < budget / 2 {
                    return Ok(());
                }
                Some(room)
            }
            None => None,
        };
        let request = PullRequest {
            batch: want,
            expires: Some(self.options.expires),
            max_bytes,
            idle_heartbeat: Some(self.options.idle_heartbeat),
            no_wait: false,
        };
        let body = to_json(|buf| encode_json(&request, "pull request", buf))?;
        self.consumer
            .ctx
            .client()
            .publish_with_reply(&self.next_subject, &self.inbox, body)
            .await?;
        self.pending_msgs += want;
        self.pending_bytes += max_bytes.unwrap_or(0);
        self.pulls += 1;
        Ok(())
    }

    fn forget_pulls(&mut self) {
        self.pending_msgs = 0;
        self.pending_bytes = 0;
        self.repulls += 1;
        self.last_activity = Instant::now();
    }

    /// The next message; `None` when the client closed. Errors are
    /// reported once and the stream goes on (except
    /// [`JetStreamError::PullEnded`], after which pulling again is pointless).
    pub async fn next(&mut self) -> Option<Result<JsMessage, JetStreamError>> {
        loop {
            if let Err(e) = self.pull_if_needed().await {
                return Some(Err(e));
            }
            let missed = self.last_activity + self.options.idle_heartbeat * 2;
            tokio::select! {
                msg = self.sub.next() => {
                    let msg = msg?;
                    self.last_activity = Instant::now();
                    match status_of(&msg) {
                        PullStatus::Message => {
                            self.pending_msgs = self.pending_msgs.saturating_sub(1);
                            if self.options.max_bytes.is_some() {
                                self.pending_bytes =
                                    self.pending_bytes.saturating_sub(charged_size(&msg));
                            }
                            let client = self.consumer.ctx.client().clone();
                            return Some(JsMessage::new(msg, client));
                        }
                        PullStatus::IdleHeartbeat | PullStatus::FlowControl => {}
                        PullStatus::NoMessages => {
                            self.pending_msgs = 0;
                            self.pending_bytes = 0;
                        }
                        PullStatus::RequestTimeout { pending_messages, pending_bytes }
                        | PullStatus::Conflict {
                            kind: Conflict::MessageSizeExceedsMaxBytes
                                | Conflict::LeadershipChange
                                | Conflict::ServerShutdown
                                | Conflict::BatchCompleted
                                | Conflict::Other,
                            pending_messages,
                            pending_bytes,
                        } => {
                            self.pending_msgs =
                                self.pending_msgs.saturating_sub(pending_messages as usize);
                            self.pending_bytes =
                                self.pending_bytes.saturating_sub(pending_bytes as usize);
                        }
                        PullStatus::Conflict { .. } => {
                            self.pending_msgs = 0;
                            self.pending_bytes = 0;
                            return Some(Err(JetStreamError::PullEnded {
                                status: 409,
                                description: description_of(&msg),
                            }));
                        }
                        PullStatus::Other(_) => {}
                    }
                }
                event = self.events.next() => {
                    match event {
                        // The server may not know our pulls any more.
                        Some(Event::Reconnected { .. }) => self.forget_pulls(),
                        Some(_) => {}
                        None => return None,
                    }
                }
                _ = tokio::time::sleep_until(missed) => {
                    // Two heartbeats missed: the pull is gone; pull again.
                    self.forget_pulls();
                }
            }
        }
    }

    /// As a `futures::Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<JsMessage, JetStreamError>> {
        futures::stream::unfold(self, |mut m| async move {
            let item = m.next().await?;
            Some((item, m))
        })
    }
}
