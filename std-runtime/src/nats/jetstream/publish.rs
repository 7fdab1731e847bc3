//! Publishing to streams: one ack at a time, or a bounded window of
//! publishes in flight.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use courier_core::nats::headers::HeaderWriter;
use courier_core::nats::jetstream::{self as core_js, PublishOptions as CoreOptions};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{oneshot, Semaphore};

use super::{Context, JetStreamError};
use crate::nats::{Error, HeaderMap};

/// The stream's acknowledgement: the message is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubAck {
    /// Stream that stored it.
    pub stream: String,
    /// Its sequence.
    pub seq: u64,
    /// It was a repeat of a `Nats-Msg-Id` within the duplicate window: the
    /// stream had it already and did not store it again.
    pub duplicate: bool,
}

/// Per-publish options: de-duplication id, expectations, retries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// `Nats-Msg-Id`.
    pub msg_id: Option<String>,
    /// `Nats-Expected-Stream`.
    pub expected_stream: Option<String>,
    /// `Nats-Expected-Last-Sequence`.
    pub expected_last_sequence: Option<u64>,
    /// `Nats-Expected-Last-Subject-Sequence`.
    pub expected_last_subject_sequence: Option<u64>,
    /// `Nats-Expected-Last-Msg-Id`.
    pub expected_last_msg_id: Option<String>,
    /// Publish again this many times after a timeout or lost connection.
    /// With retries and no `msg_id`, a random `Nats-Msg-Id` is set so a
    /// retry of a publish that was stored is dropped as a duplicate
    /// (nats.node #628 stored it twice).
    pub retries: u32,
}

impl PublishOptions {
    /// Options with a `Nats-Msg-Id`.
    pub fn with_msg_id(id: impl Into<String>) -> Self {
        PublishOptions {
            msg_id: Some(id.into()),
            ..Default::default()
        }
    }

    pub(crate) fn headers(&self) -> Result<Option<HeaderMap>, JetStreamError> {
        let core = CoreOptions {
            msg_id: self.msg_id.as_deref(),
            expected_stream: self.expected_stream.as_deref(),
            expected_last_sequence: self.expected_last_sequence,
            expected_last_subject_sequence: self.expected_last_subject_sequence,
            expected_last_msg_id: self.expected_last_msg_id.as_deref(),
        };
        if core.is_empty() {
            return Ok(None);
        }
        let size = 256
            + self.msg_id.as_ref().map_or(0, String::len)
            + self.expected_stream.as_ref().map_or(0, String::len)
            + self.expected_last_msg_id.as_ref().map_or(0, String::len);
        let mut w = HeaderWriter::new(vec![0u8; size])
            .map_err(|e| JetStreamError::Nats(Error::Protocol(e.into())))?;
        core.write(&mut w)
            .map_err(|e| JetStreamError::Nats(Error::Protocol(e.into())))?;
        Ok(Some(HeaderMap::from_raw(bytes::Bytes::copy_from_slice(
            w.as_bytes(),
        ))))
    }
}

pub(crate) fn random_msg_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl Context {
    /// Publishes and waits for the stream's ack.
    pub async fn publish(
        &self,
        subject: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<PubAck, JetStreamError> {
        self.publish_with(subject, payload, &PublishOptions::default())
            .await
    }

    /// Publishes with options (msg id, expectations, retries) and waits
    /// for the stream's ack.
    pub async fn publish_with(
        &self,
        subject: &str,
        payload: impl AsRef<[u8]>,
        options: &PublishOptions,
    ) -> Result<PubAck, JetStreamError> {
        let mut options = options.clone();
        if options.retries > 0 && options.msg_id.is_none() {
            options.msg_id = Some(random_msg_id());
        }
        let headers = options.headers()?;
        let mut attempt = 0;
        loop {
            let res = publish_once(self, subject, headers.as_ref(), payload.as_ref()).await;
            match res {
                Err(JetStreamError::TimedOut { .. })
                | Err(JetStreamError::Nats(Error::Disconnected))
                    if attempt < options.retries =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A window of at most `window` publishes awaiting their ack (clamped
    /// to 1..=512), each timed out after this context's timeout.
    pub fn publish_window(&self, window: usize) -> PublishWindow {
        let window = window.clamp(1, 512);
        PublishWindow {
            ctx: self.clone(),
            permits: Arc::new(Semaphore::new(window)),
            window,
            stats: Rc::new(RefCell::new(WindowStats::default())),
            in_flight: Rc::default(),
        }
    }
}

pub(crate) async fn publish_once(
    ctx: &Context,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<PubAck, JetStreamError> {
    match ctx
        .client()
        .request_with(subject, headers, payload, ctx.timeout())
        .await
    {
        Ok(reply) => {
            if let Some((stream, seq, duplicate)) = super::ack::pub_ack(&reply.payload) {
                return Ok(PubAck {
                    stream: stream.to_string(),
                    seq,
                    duplicate,
                });
            }
            let ack = core_js::decode_pub_ack(&reply.payload)?;
            Ok(PubAck {
                stream: ack.stream.to_string(),
                seq: ack.seq,
                duplicate: ack.duplicate,
            })
        }
        Err(Error::NoResponders { .. }) => Err(JetStreamError::NoStream {
            subject: subject.to_string(),
        }),
        Err(Error::TimedOut { after, .. }) => Err(JetStreamError::TimedOut {
            operation: "publish ack",
            after,
        }),
        Err(e) => Err(JetStreamError::Nats(e)),
    }
}

/// Counters of a [`PublishWindow`]. At every moment
/// `published == acked + duplicates + refused + timed_out + failed + in_flight`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Publishes handed to the window.
    pub published: u64,
    /// Acknowledged and stored.
    pub acked: u64,
    /// Acknowledged as duplicates (stored earlier).
    pub duplicates: u64,
    /// Refused by JetStream (API error, no stream): not stored.
    pub refused: u64,
    /// No ack in time: may or may not be stored.
    pub timed_out: u64,
    /// The connection failed them: may or may not be stored.
    pub failed: u64,
    /// Still awaiting their ack.
    pub in_flight: u64,
}

/// Publishes with many acks outstanding: [`PublishWindow::publish`] waits
/// while `window` publishes await their ack, then sends and returns an
/// [`AckFuture`]. Each ack has its own timeout; on a reconnect the
/// outstanding requests keep their deadline (the client resubscribes the
/// reply inbox), so every publish ends in exactly one counter of
/// [`WindowStats`] and the window never stalls on acks that never come
/// (nats.go #1346, #1819).
pub struct PublishWindow {
    ctx: Context,
    permits: Arc<Semaphore>,
    window: usize,
    stats: Rc<RefCell<WindowStats>>,
    in_flight: Rc<RefCell<InFlight>>,
}

/// The publishes of a window awaiting their ack, all driven by one task
/// (spawned when the first arrives, ending when none is left) instead of a
/// task each: a spawned task cost about 2,000 instructions per publish
/// (its aligned allocation, scheduling and completion).
#[derive(Default)]
struct InFlight {
    publishes: FuturesUnordered<Pin<Box<dyn Future<Output = ()>>>>,
    /// The driver task, while it runs.
    driver: Option<Waker>,
    running: bool,
}

/// Polls the window's publishes until none is left. They keep going when
/// the [`PublishWindow`] or their [`AckFuture`] is dropped.
async fn drive(in_flight: Rc<RefCell<InFlight>>) {
    std::future::poll_fn(|cx| {
        let mut f = in_flight.borrow_mut();
        loop {
            match f.publishes.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) => {
                    f.running = false;
                    f.driver = None;
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    match &mut f.driver {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        }
    })
    .await
}

/// The outcome of one windowed publish.
pub struct AckFuture(oneshot::Receiver<Result<PubAck, JetStreamError>>);

impl Future for AckFuture {
    type Output = Result<PubAck, JetStreamError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        // The driver gone without an answer: the runtime shut down.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(JetStreamError::Nats(Error::Closed))))
    }
}

impl PublishWindow {
    /// Waits for room in the window, sends, and returns the ack's future
    /// (the publish proceeds whether or not it is awaited).
    pub async fn publish(
        &self,
        subject: &str,
        payload: impl Into<bytes::Bytes>,
        options: &PublishOptions,
    ) -> Result<AckFuture, JetStreamError> {
        let headers = options.headers()?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| JetStreamError::Nats(Error::Closed))?;
        self.stats.borrow_mut().published += 1;
        self.stats.borrow_mut().in_flight += 1;
        let ctx = self.ctx.clone();
        let stats = self.stats.clone();
        let subject = subject.to_string();
        let payload = payload.into();
        let (tx, rx) = oneshot::channel();
        let publish = Box::pin(async move {
            let res = publish_once(&ctx, &subject, headers.as_ref(), &payload).await;
            let mut s = stats.borrow_mut();
            s.in_flight -= 1;
            match &res {
                Ok(ack) if ack.duplicate => s.duplicates += 1,
                Ok(_) => s.acked += 1,
                Err(JetStreamError::Api(_) | JetStreamError::NoStream { .. }) => s.refused += 1,
                Err(JetStreamError::TimedOut { .. }) => s.timed_out += 1,
                Err(_) => s.failed += 1,
            }
            drop(s);
            drop(permit);
            // Nobody waiting for it: the counters have it.
            let _ = tx.send(res);
        });
        let mut f = self.in_flight.borrow_mut();
        f.publishes.push(publish);
        if !f.running {
            f.running = true;
            crate::runtime::spawn(drive(self.in_flight.clone()));
        } else if let Some(driver) = f.driver.take() {
            driver.wake();
        }
        Ok(AckFuture(rx))
    }

    /// Waits until no publish awaits its ack (each ends by its own
    /// timeout at the latest), or `timeout`; returns the counters.
    pub async fn wait_all(&self, timeout: Duration) -> Result<WindowStats, JetStreamError> {
        let all = self.window as u32;
        match tokio::time::timeout(timeout, self.permits.acquire_many(all)).await {
            Ok(Ok(permits)) => {
                drop(permits);
                Ok(self.stats())
            }
            Ok(Err(_)) => Err(JetStreamError::Nats(Error::Closed)),
            Err(_) => Err(JetStreamError::TimedOut {
                operation: "publish window",
                after: timeout,
            }),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> WindowStats {
        *self.stats.borrow()
    }
}
