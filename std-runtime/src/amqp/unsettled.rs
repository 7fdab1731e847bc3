//! Settling a borrowed delivery later: a `consume_with` handler answers
//! [`Settle::Nothing`](super::Settle::Nothing) and keeps an [`Unsettled`]
//! (channel, delivery tag, connection generation, a weak handle: no
//! allocation), then acks, nacks or rejects it when its work is done.
//!
//! At-least-once: until it is settled the broker keeps the message
//! (unacked, counted against the prefetch) and redelivers it if the
//! channel or connection goes. A token from before a reconnect is refused
//! with a typed error: its delivery tag belonged to the old connection (the
//! broker redelivers that message), and acking it on the new one would
//! settle another message or close the channel (406 unknown tag).

use std::rc::Weak;

use courier_core::amqp::{ChannelId, Delivery};

use super::connection::{Connection, CoreSession, Inner};
use super::Error;

/// A delivery a handler chose to settle later (see the module docs).
/// Dropping it settles nothing: the broker keeps the message unacked until
/// the channel closes, then requeues it.
#[derive(Clone, Debug)]
#[must_use = "an unsettled delivery stays unacked until ack/nack/reject"]
pub struct Unsettled {
    conn: Weak<Inner>,
    epoch: u64,
    channel: ChannelId,
    delivery_tag: u64,
}

impl Connection {
    /// The token to settle `delivery` later (call it inside the handler,
    /// which then returns [`Settle::Nothing`](super::Settle::Nothing)).
    /// `None` for a message without a delivery tag (a basic.return).
    pub fn unsettled(&self, delivery: &Delivery<'_>) -> Option<Unsettled> {
        let delivery_tag = delivery.delivery_tag()?;
        Some(Unsettled {
            conn: std::rc::Rc::downgrade(&self.inner),
            epoch: self.inner.shared.borrow().epoch,
            channel: delivery.channel,
            delivery_tag,
        })
    }
}

impl Unsettled {
    /// Its delivery tag (on its channel and connection generation).
    pub fn delivery_tag(&self) -> u64 {
        self.delivery_tag
    }

    /// Acknowledges it: the broker forgets it.
    pub fn ack(self) -> Result<(), Error> {
        let (ch, tag) = (self.channel, self.delivery_tag);
        settle(&self.conn, self.epoch, |s| s.ack(ch, tag, false))
    }

    /// Negative acknowledgement: requeued (`requeue`), else dead-lettered
    /// or dropped.
    pub fn nack(self, requeue: bool) -> Result<(), Error> {
        let (ch, tag) = (self.channel, self.delivery_tag);
        settle(&self.conn, self.epoch, |s| s.nack(ch, tag, false, requeue))
    }

    /// Rejects it: requeued (`requeue`), else dead-lettered or dropped.
    pub fn reject(self, requeue: bool) -> Result<(), Error> {
        let (ch, tag) = (self.channel, self.delivery_tag);
        settle(&self.conn, self.epoch, |s| s.reject(ch, tag, requeue))
    }
}

/// Writes a settlement for a delivery of connection generation `epoch`
/// (refused when that connection is gone) and wakes the writer.
pub(crate) fn settle(
    conn: &Weak<Inner>,
    epoch: u64,
    f: impl FnOnce(&mut CoreSession) -> Result<(), courier_core::amqp::Error>,
) -> Result<(), Error> {
    let conn = conn
        .upgrade()
        .ok_or_else(|| Error::Disconnected("connection dropped".into()))?;
    let result = {
        let mut sh = conn.shared.borrow_mut();
        if let Some(e) = &sh.closed {
            return Err(e.clone());
        }
        if sh.epoch != epoch || sh.recovering {
            return Err(Error::Disconnected(
                "the message arrived before a reconnect; the broker redelivers it".into(),
            ));
        }
        f(&mut sh.session)
    };
    conn.wake.wake_writer();
    result.map_err(Error::from)
}
