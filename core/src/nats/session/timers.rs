//! One timer table for the session, as quinn-proto's `connection/timer.rs`:
//! the keepalive PING and every request's deadline. [`TimerTable::next`] is
//! the minimum over the table ([`Session::poll_timeout`]), and
//! [`Session::handle_timeout`] matches on the timer that expired.

use heapless::Vec;

use super::{Event, Session, State};
use crate::nats::auth::Authenticator;
use crate::nats::commands;
use crate::nats::error::Error;
use crate::nats::ids::{PingId, RequestId};
use crate::nats::info::InfoStorage;
use crate::nats::outbox::Sendable;
use crate::time::Instant;

/// The session's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Timer {
    /// Send a keepalive PING (or find the connection stale).
    Keepalive,
    /// The request's reply must have arrived by then.
    Request(RequestId),
}

/// Deadlines per [`Timer`]: one keepalive and up to `REQS` requests (an
/// armed request timer is an outstanding request).
#[derive(Clone, Debug, Default)]
pub struct TimerTable<const REQS: usize> {
    keepalive: Option<Instant>,
    requests: Vec<(RequestId, Instant), REQS>,
}

impl<const REQS: usize> TimerTable<REQS> {
    /// Arms `timer` for `at` (re-arms it if armed). False when a new
    /// request timer finds all `REQS` slots taken.
    pub fn set(&mut self, timer: Timer, at: Instant) -> bool {
        match timer {
            Timer::Keepalive => {
                self.keepalive = Some(at);
                true
            }
            Timer::Request(id) => match self.requests.iter_mut().find(|(r, _)| *r == id) {
                Some(slot) => {
                    slot.1 = at;
                    true
                }
                None => self.requests.push((id, at)).is_ok(),
            },
        }
    }

    /// Disarms `timer`; true when it was armed.
    pub fn stop(&mut self, timer: Timer) -> bool {
        match timer {
            Timer::Keepalive => self.keepalive.take().is_some(),
            Timer::Request(id) => match self.requests.iter().position(|(r, _)| *r == id) {
                Some(i) => {
                    self.requests.swap_remove(i);
                    true
                }
                None => false,
            },
        }
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Keepalive => self.keepalive,
            Timer::Request(id) => self.requests.iter().find(|(r, _)| *r == id).map(|r| r.1),
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        let request = self.requests.iter().map(|r| r.1).min();
        match (self.keepalive, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The timer with the earliest deadline at or before `now` (disarmed on
    /// return); the keepalive first on a tie.
    pub fn expired(&mut self, now: Instant) -> Option<Timer> {
        let at = self.next().filter(|at| *at <= now)?;
        let timer = if self.keepalive == Some(at) {
            Timer::Keepalive
        } else {
            Timer::Request(self.requests.iter().find(|r| r.1 == at)?.0)
        };
        self.stop(timer);
        Some(timer)
    }

    /// Armed request timers (outstanding requests).
    pub fn requests(&self) -> usize {
        self.requests.len()
    }

    /// True when no request timer can be armed.
    pub fn requests_full(&self) -> bool {
        self.requests.is_full()
    }
}

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// Arms the keepalive an interval after `now`; a zero interval
    /// disables keepalive.
    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        let interval = self.options.ping_interval;
        if interval.as_millis() > 0 {
            self.timers.set(Timer::Keepalive, now + interval);
        }
    }

    /// When [`Session::handle_timeout`] must be called next (keepalive PING
    /// or a request deadline), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs the timers due at `now`: sends keepalive PINGs, detects a stale
    /// connection ([`Error::StaleConnection`], fatal) and times requests
    /// out ([`Event::RequestTimedOut`], from [`Session::poll_event`]).
    ///
    /// Stops early while the event queue is full: a timer still due keeps
    /// [`Session::poll_timeout`] in the past, so take the events and call
    /// again.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while !self.events.is_full() {
            let Some(timer) = self.timers.expired(now) else {
                break;
            };
            match timer {
                Timer::Keepalive => self.keepalive(now)?,
                Timer::Request(request) => self.push_event(Event::RequestTimedOut { request }),
            }
        }
        Ok(())
    }

    fn keepalive(&mut self, now: Instant) -> Result<(), Error> {
        if self.state != State::Connected {
            return Ok(());
        }
        if self.pings_outstanding >= self.options.max_pings_out {
            let pings_outstanding = self.pings_outstanding;
            return Err(self.fail(Error::StaleConnection { pings_outstanding }));
        }
        // An unwritable PING still counts: a transmit buffer that does not
        // drain for max_pings_out intervals is a dead connection too.
        if commands::ping(&mut Sendable(&mut self.out)).is_ok() {
            self.next_ping_id += 1;
        }
        self.pings_outstanding += 1;
        self.arm_keepalive(now);
        Ok(())
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
