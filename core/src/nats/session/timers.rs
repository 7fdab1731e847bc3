//! Keepalive PINGs, request deadlines and user PINGs.

use super::*;
use crate::nats::auth::Authenticator;
use crate::nats::commands::{self};
use crate::nats::error::Error;
use crate::nats::ids::PingId;
use crate::nats::info::InfoStorage;
use crate::nats::outbox::Sendable;
use crate::time::Instant;

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// Next keepalive time; a zero interval disables keepalive.
    pub(super) fn keepalive_after(&self, now: Instant) -> Option<Instant> {
        let interval = self.options.ping_interval;
        (interval.as_millis() > 0).then(|| now + interval)
    }

    /// When [`Session::handle_timeout`] must be called next (keepalive PING
    /// or a request deadline), if ever. When an [`Event::SubscriptionDone`]
    /// is waiting to be handed out (an auto-unsubscribe or drain ended, or
    /// a reset ended the drains) this is already due (the earliest
    /// instant), so a driver that calls `handle_timeout` only when
    /// `poll_timeout` has passed still gets it without more input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.done.is_empty() {
            return Some(Instant::from_millis(0));
        }
        let request = self.requests.iter().map(|r| r.deadline).min();
        match (self.next_keepalive, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hands out ended subscriptions ([`Event::SubscriptionDone`]), sends
    /// keepalive PINGs, detects a stale connection and times out requests.
    /// Returns at most one event per call: call until `Ok(None)` once
    /// [`Session::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Event<'static>>, Error> {
        if let Some(sid) = self.next_done() {
            return Ok(Some(Event::SubscriptionDone { sid }));
        }
        if self.state == State::Connected && self.next_keepalive.is_some_and(|at| at <= now) {
            if self.pings_outstanding >= self.options.max_pings_out {
                let pings_outstanding = self.pings_outstanding;
                self.state = State::Closed;
                self.next_keepalive = None;
                return Err(Error::StaleConnection { pings_outstanding });
            }
            // An unwritable PING still counts: a transmit buffer that does
            // not drain for max_pings_out intervals is a dead connection too.
            if commands::ping(&mut Sendable(&mut self.out)).is_ok() {
                self.next_ping_id += 1;
            }
            self.pings_outstanding += 1;
            self.next_keepalive = self.keepalive_after(now);
        }
        if let Some(i) = self.requests.iter().position(|r| r.deadline <= now) {
            let request = self.requests.swap_remove(i).id;
            return Ok(Some(Event::RequestTimedOut { request }));
        }
        Ok(None)
    }

    /// Sends a PING; [`Event::Pong`] with this id (or a later one) means
    /// the server processed everything written before it (a flush).
    pub fn ping(&mut self) -> Result<PingId, Error> {
        if self.state != State::Connected {
            return Err(Error::NotConnected);
        }
        commands::ping(&mut Sendable(&mut self.out))?;
        let id = PingId(self.next_ping_id);
        self.next_ping_id += 1;
        Ok(id)
    }
}
