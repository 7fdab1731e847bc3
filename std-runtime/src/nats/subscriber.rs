//! Subscriptions as `futures::Stream`s fed by the connection task through a
//! bounded per-subscription queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use courier_core::nats::Sid;
use futures::Stream;

use super::options::{Event, PendingLimits};
use super::{Client, Error, Message};

/// Messages waiting for one subscriber.
pub(crate) struct SubQueue {
    pub(crate) subject: String,
    messages: VecDeque<Message>,
    bytes: usize,
    limits: PendingLimits,
    waker: Option<Waker>,
    /// No more messages will be pushed (unsubscribed, auto-unsubscribe
    /// done, drained, closed); the stream ends once the queue is empty.
    pub(crate) closed: bool,
    dropped_messages: u64,
    dropped_bytes: u64,
    /// Set while dropping, so one `SlowConsumer` event is raised per
    /// overflow episode rather than per dropped message.
    overflowing: bool,
}

pub(crate) type SharedQueue = Rc<RefCell<SubQueue>>;

impl SubQueue {
    pub(crate) fn new(subject: &str, limits: PendingLimits) -> SharedQueue {
        Rc::new(RefCell::new(SubQueue {
            subject: subject.to_string(),
            messages: VecDeque::new(),
            bytes: 0,
            limits,
            waker: None,
            closed: false,
            dropped_messages: 0,
            dropped_bytes: 0,
            overflowing: false,
        }))
    }

    /// Queues `msg`, or drops it when the limits are reached and returns
    /// the `SlowConsumer` event to raise (once per overflow episode).
    pub(crate) fn push(&mut self, msg: Message) -> Option<Event> {
        let size = msg.payload.len();
        if self.messages.len() >= self.limits.messages || self.bytes + size > self.limits.bytes {
            self.dropped_messages += 1;
            self.dropped_bytes += size as u64;
            let first = !self.overflowing;
            self.overflowing = true;
            return first.then(|| Event::SlowConsumer {
                subject: self.subject.clone(),
                dropped_messages: self.dropped_messages,
                dropped_bytes: self.dropped_bytes,
            });
        }
        self.overflowing = false;
        self.bytes += size;
        self.messages.push_back(msg);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        None
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// A subscription: a `Stream` of [`Message`]s.
///
/// The stream ends after [`Subscriber::unsubscribe`] or
/// [`Subscriber::drain`], when an
/// [`Subscriber::unsubscribe_after`] count is reached, after a drain, or
/// when the client closes. Dropping a subscriber unsubscribes it.
///
/// Undelivered messages are bounded by [`PendingLimits`] (nats.go's 512Ki
/// messages / 64 MiB by default); beyond that new messages are dropped,
/// counted in [`Subscriber::dropped`] and reported as
/// [`Event::SlowConsumer`].
pub struct Subscriber {
    pub(crate) sid: Sid,
    pub(crate) queue: SharedQueue,
    pub(crate) client: Client,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.queue.borrow();
        f.debug_struct("Subscriber")
            .field("sid", &self.sid.0)
            .field("subject", &q.subject)
            .field("pending", &q.messages.len())
            .field("closed", &q.closed)
            .finish()
    }
}

impl Subscriber {
    /// The subject subscribed to (may contain wildcards).
    pub fn subject(&self) -> String {
        self.queue.borrow().subject.clone()
    }

    /// The subscription id on the wire.
    pub fn sid(&self) -> u64 {
        self.sid.0
    }

    /// Messages received and waiting in this subscriber's queue.
    pub fn pending(&self) -> usize {
        self.queue.borrow().messages.len()
    }

    /// `(messages, payload bytes)` dropped because the queue was full.
    pub fn dropped(&self) -> (u64, u64) {
        let q = self.queue.borrow();
        (q.dropped_messages, q.dropped_bytes)
    }

    /// The next message, or `None` once the subscription has ended (same as
    /// `futures::StreamExt::next`).
    pub async fn next(&mut self) -> Option<Message> {
        futures::StreamExt::next(self).await
    }

    /// Ends the subscription now; messages already queued are still
    /// delivered, then the stream ends.
    pub async fn unsubscribe(&mut self) -> Result<(), Error> {
        self.client.unsubscribe_sid(self.sid)
    }

    /// Ends the subscription without losing a message: sends UNSUB (and a
    /// PING) and keeps receiving what the server routed before it processed
    /// the UNSUB; returns once the PONG proved that (bounded by the flush
    /// timeout). The messages stay queued: read them, then the stream ends.
    pub async fn drain(&mut self) -> Result<(), Error> {
        if self.queue.borrow().closed {
            return Ok(());
        }
        self.client.drain_subscriptions(&[self.sid]).await
    }

    /// Ends the subscription after `max` messages in total (counting those
    /// already received): exactly `max` are delivered.
    pub async fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        self.client.unsubscribe_after_sid(self.sid, max)
    }
}

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut q = self.queue.borrow_mut();
        if let Some(msg) = q.messages.pop_front() {
            q.bytes -= msg.payload.len();
            return Poll::Ready(Some(msg));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if !self.queue.borrow().closed {
            let _ = self.client.unsubscribe_sid(self.sid);
        }
    }
}
