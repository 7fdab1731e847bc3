//! SUB/UNSUB, drains and auto-unsubscribe on the session.

use super::*;
use crate::nats::auth::Authenticator;
use crate::nats::commands::{self};
use crate::nats::error::Error;
use crate::nats::ids::{PingId, Sid};
use crate::nats::info::InfoStorage;
use crate::nats::outbox::Sendable;
use crate::nats::subscriptions::Subscription;

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// Queues [`Event::SubscriptionDone`] for a subscription just removed
    /// from the table.
    pub(super) fn end_subscription(&mut self, sid: Sid) {
        if self.inbox_sid == Some(sid) {
            self.inbox_sid = None;
        }
        // Cannot overflow: each sid ends once and SUBS bounds them.
        let _ = self.done.push(sid);
    }

    /// Oldest subscription that ended and was not reported yet.
    pub(super) fn next_done(&mut self) -> Option<Sid> {
        (!self.done.is_empty()).then(|| self.done.remove(0))
    }

    /// Live subscriptions (the request inbox included).
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subs.iter()
    }

    /// Subscribes (with a queue group when `queue` is given). Validated
    /// first. When not connected the SUB is sent after the next handshake.
    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> Result<Sid, Error> {
        let sid = self.subs.insert(subject, queue)?;
        let written = if self.state == State::Connected {
            commands::subscribe(&mut Sendable(&mut self.out), subject, queue, sid.0)
        } else {
            // The SUB will be part of the handshake: keep room for it.
            self.handshake_reserve().and_then(|reserve| {
                let capacity = self.out.capacity();
                let needed = self.out.len() + reserve;
                if needed > capacity {
                    Err(Error::BufferFull(crate::buf::CapacityError {
                        needed,
                        capacity,
                    }))
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = written {
            let _ = self.subs.remove(sid);
            return Err(e);
        }
        Ok(sid)
    }

    /// Ends a subscription now: messages the server routed before it
    /// processes the UNSUB are dropped (counted in
    /// [`Stats::dropped_unknown_sid`]); see
    /// [`Session::unsubscribe_draining`] for the lossless way.
    pub fn unsubscribe(&mut self, sid: Sid) -> Result<(), Error> {
        let Some(sub) = self.subs.get(sid) else {
            return Err(Error::UnknownSubscription(sid));
        };
        // A draining subscription's UNSUB is already on its way.
        if self.state == State::Connected && sub.draining.is_none() {
            commands::unsubscribe(&mut Sendable(&mut self.out), sid.0, None)?;
        }
        self.subs.remove(sid)?;
        if self.inbox_sid == Some(sid) {
            self.inbox_sid = None;
        }
        Ok(())
    }

    /// Ends a subscription without losing a message (nats.go's drain):
    /// writes `UNSUB <sid>` followed by a PING and keeps delivering the
    /// subscription's messages until the PONG to that PING arrives. The
    /// server processes commands in order, so by then it has processed the
    /// UNSUB and routes nothing more; the subscription is removed and
    /// [`Event::SubscriptionDone`] follows the [`Event::Pong`].
    ///
    /// When not connected the server does not know the subscription on the
    /// coming connection (it would be re-sent after the handshake), so it
    /// ends at once. A lost connection ([`Session::start`]) ends every
    /// drain: nothing more can arrive on the old connection. Calling it
    /// again on a draining subscription does nothing. UNSUB and PING are
    /// written together or not at all ([`Error::BufferFull`]).
    pub fn unsubscribe_draining(&mut self, sid: Sid) -> Result<(), Error> {
        let Some(sub) = self.subs.get(sid) else {
            return Err(Error::UnknownSubscription(sid));
        };
        if sub.draining.is_some() {
            return Ok(());
        }
        if self.state != State::Connected {
            self.subs.remove(sid)?;
            self.end_subscription(sid);
            return Ok(());
        }
        let needed = commands::unsubscribe_size(sid.0, None) + commands::PING_SIZE;
        let (queued, capacity) = (self.out.len(), self.out.capacity());
        if queued + needed > capacity {
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: queued + needed,
                capacity,
            }));
        }
        let mut sink = Sendable(&mut self.out);
        commands::unsubscribe(&mut sink, sid.0, None)?;
        commands::ping(&mut sink)?;
        let ping = PingId(self.next_ping_id);
        self.next_ping_id += 1;
        self.subs.mark_draining(sid, ping)
    }

    /// True while `sid` drains (UNSUB sent, its PONG not yet received).
    pub fn is_draining(&self, sid: Sid) -> bool {
        self.subs.get(sid).is_some_and(|s| s.draining.is_some())
    }

    /// Ends a subscription after `max` messages in total; the `max`th is the
    /// last delivered, followed by [`Event::SubscriptionDone`] (at once if
    /// `max` were already delivered).
    pub fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), Error> {
        if self.subs.get(sid).is_none() {
            return Err(Error::UnknownSubscription(sid));
        }
        if self.state == State::Connected {
            commands::unsubscribe(&mut Sendable(&mut self.out), sid.0, Some(max))?;
        }
        if self.subs.set_max(sid, max)? {
            let _ = self.done.push(sid);
        }
        Ok(())
    }
}

/// Bytes the SUB (and UNSUB for a pending auto-unsubscribe) of `sub` take.
pub(super) fn resubscribe_len(sub: &Subscription) -> usize {
    let sid = sub.sid.0;
    commands::sub_len(&sub.subject, sub.queue.as_deref(), sid)
        + sub
            .remaining()
            .map_or(0, |r| commands::unsubscribe_size(sid, Some(r)))
}
