//! Where a consumer's deliveries go: an owned [`Message`] stream, or a
//! handler called with the delivery borrowed from the receive buffer (no
//! copy, no allocation per message).

use std::cell::RefMut;

use courier_core::amqp::{self, ChannelId, Delivery, DeliveryKind, ShortStr};
use tokio::sync::{mpsc, oneshot};

use super::channel::Channel;
use super::connection::{Inner, Shared};
use super::message::Message;
use super::Error;

/// How a [`Channel::consume_with`] handler settles the delivery it was
/// handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// basic.ack: the broker forgets it.
    Ack,
    /// basic.nack: requeued when `requeue`, else dead-lettered or dropped.
    Nack {
        /// Put it back in the queue.
        requeue: bool,
    },
    /// basic.reject: requeued when `requeue`, else dead-lettered or dropped.
    Reject {
        /// Put it back in the queue.
        requeue: bool,
    },
    /// Nothing to send now: the consumer is auto-ack (`no_ack`), or the
    /// handler took an [`Unsettled`](super::Unsettled) token
    /// ([`Connection::unsettled`](super::Connection::unsettled)) to settle
    /// it later.
    Nothing,
}

/// A handler of borrowed deliveries.
pub(crate) type Handler = Box<dyn FnMut(&Delivery<'_>) -> Settle>;

pub(crate) enum Sink {
    Stream(mpsc::UnboundedSender<Result<Message, Error>>),
    Handler {
        /// None while it runs (taken out so the handler may use the
        /// connection).
        handler: Option<Handler>,
        ended: Option<oneshot::Sender<Error>>,
    },
}

impl Sink {
    /// The consumer ended with `error`.
    pub fn end(self, error: Error) {
        match self {
            Sink::Stream(tx) => {
                let _ = tx.send(Err(error));
            }
            Sink::Handler { mut ended, .. } => {
                if let Some(tx) = ended.take() {
                    let _ = tx.send(error);
                }
            }
        }
    }
}

/// The consumers of one connection, found by channel and tag without
/// allocating (a connection has few consumers: a linear scan).
#[derive(Default)]
pub(crate) struct Consumers {
    entries: Vec<(ChannelId, String, Sink)>,
}

impl Consumers {
    pub fn insert(&mut self, channel: ChannelId, tag: String, sink: Sink) {
        self.entries.push((channel, tag, sink));
    }

    pub fn get_mut(&mut self, channel: ChannelId, tag: ShortStr<'_>) -> Option<&mut Sink> {
        self.entries
            .iter_mut()
            .find(|(c, t, _)| *c == channel && t.as_bytes() == tag.as_bytes())
            .map(|(_, _, s)| s)
    }

    pub fn remove(&mut self, channel: ChannelId, tag: &str) -> Option<Sink> {
        let pos = self
            .entries
            .iter()
            .position(|(c, t, _)| *c == channel && t == tag)?;
        Some(self.entries.swap_remove(pos).2)
    }

    /// Ends every consumer of `channel` with `error`.
    pub fn end_channel(&mut self, channel: ChannelId, error: &Error) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].0 == channel {
                self.entries.swap_remove(i).2.end(error.clone());
            } else {
                i += 1;
            }
        }
    }

    /// Ends every consumer with `error`.
    pub fn end_all(&mut self, error: &Error) {
        for (_, _, sink) in self.entries.drain(..) {
            sink.end(error.clone());
        }
    }
}

/// A consumer whose deliveries go to a handler ([`Channel::consume_with`]).
/// The handler stays installed until the consumer ends; dropping this
/// handle does not cancel it (call [`HandlerConsumer::cancel`]).
pub struct HandlerConsumer {
    pub(crate) channel: Channel,
    pub(crate) tag: String,
    pub(crate) ended: oneshot::Receiver<Error>,
}

impl HandlerConsumer {
    /// The consumer tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Stops the consumer (basic.cancel); deliveries already sent still
    /// reach the handler until the broker's cancel-ok.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.channel.cancel_consumer(&self.tag).await
    }

    /// Waits until the consumer ends and says why: it was cancelled (by the
    /// server or [`HandlerConsumer::cancel`]: [`Error::ConsumerCancelled`]),
    /// its channel closed, or the connection is gone.
    pub async fn ended(&mut self) -> Error {
        match (&mut self.ended).await {
            Ok(e) => e,
            Err(_) => Error::Disconnected("connection ended".into()),
        }
    }
}

/// Hands a delivery to its consumer. A handler runs with the connection
/// not borrowed (it may call the connection's methods), then its answer is
/// written into the transmit buffer.
pub(crate) fn deliver<'s>(
    inner: &'s Inner,
    mut guard: RefMut<'s, Shared>,
    d: Delivery<'_>,
) -> RefMut<'s, Shared> {
    let DeliveryKind::Deliver {
        consumer_tag,
        delivery_tag,
        ..
    } = d.kind
    else {
        inner.on_delivery(&mut guard, d);
        return guard;
    };
    let handler = match guard.consumers.get_mut(d.channel, consumer_tag) {
        Some(Sink::Handler { handler, .. }) => handler.take(),
        _ => {
            inner.on_delivery(&mut guard, d);
            return guard;
        }
    };
    // None: the handler is running (it awaited inside a nested runtime
    // call); the broker redelivers when the channel goes.
    let Some(mut handler) = handler else {
        return guard;
    };
    let epoch = guard.epoch;
    drop(guard);
    let settle = handler(&d);
    let mut guard = inner.shared.borrow_mut();
    if let Some(Sink::Handler { handler: slot, .. }) =
        guard.consumers.get_mut(d.channel, consumer_tag)
    {
        *slot = Some(handler);
    }
    if guard.epoch == epoch && guard.closed.is_none() && settle != Settle::Nothing {
        if guard.deferred.is_empty() && apply(&mut guard, d.channel, delivery_tag, settle) {
            return guard;
        }
        // The transmit buffer is full (publishers outran the socket): the
        // writer sends the answer when room appears, in order.
        guard.deferred.push_back((d.channel, delivery_tag, settle));
    }
    guard
}

/// Writes one handler answer; false when the transmit buffer has no room.
fn apply(sh: &mut Shared, channel: ChannelId, tag: u64, settle: Settle) -> bool {
    let result = match settle {
        Settle::Ack => sh.session.ack(channel, tag, false),
        Settle::Nack { requeue } => sh.session.nack(channel, tag, false, requeue),
        Settle::Reject { requeue } => sh.session.reject(channel, tag, requeue),
        Settle::Nothing => Ok(()),
    };
    match result {
        Err(amqp::Error::BufferFull(_)) => false,
        Err(e) => {
            // The channel closed meanwhile: the broker requeues it.
            log::debug!("amqp: settling delivery {tag} on channel {channel}: {e}");
            true
        }
        Ok(()) => true,
    }
}

/// Writes the handler answers that waited for room (called by the writer).
pub(crate) fn write_deferred(sh: &mut Shared) {
    while let Some(&(channel, tag, settle)) = sh.deferred.front() {
        if !apply(sh, channel, tag, settle) {
            return;
        }
        sh.deferred.pop_front();
    }
}
