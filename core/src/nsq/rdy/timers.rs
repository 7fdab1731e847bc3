//! The controller's timer table, as quinn-proto's `connection/timer.rs`:
//! every armed timer with its deadline ([`RdyController::timers`]),
//! [`RdyController::poll_timeout`] their minimum, and
//! [`RdyController::handle_timeout`] a match on each timer that expired.
//!
//! The deadlines are derived from the controller's state (backoff mode,
//! each connection's activity, grant and settle instants) rather than
//! stored beside it, so the table cannot disagree with the state it times.

use super::{ConnId, Mode, RdyController, RdyPolicy};
use crate::time::Instant;

/// One timer of the RDY controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RdyTimer {
    /// The backoff after a failure is over: give one connection a test RDY.
    Backoff,
    /// The test connection received nothing within `idle_timeout`: pass
    /// the test to the next connection.
    TestIdle,
    /// A lowered RDY has settled: its old value is no longer reserved.
    Settle(ConnId),
    /// The connection had room but received nothing for `idle_timeout`.
    Idle(ConnId),
    /// With more connections than `max_in_flight`, the connection's turn
    /// holding RDY is over.
    Turn(ConnId),
}

/// A connection has at most three timers armed (settle, idle, turn).
type ConnTimers = [Option<(RdyTimer, Instant)>; 3];

impl<const CONNS: usize, P: RdyPolicy> RdyController<CONNS, P> {
    /// Every armed timer and when it fires (the timer table).
    pub fn timers(&self) -> impl Iterator<Item = (RdyTimer, Instant)> + '_ {
        let conns = (0..self.conns.len()).flat_map(|i| self.conn_timers(i).into_iter().flatten());
        self.mode_timer().into_iter().chain(conns)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next: the
    /// earliest timer of [`RdyController::timers`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().map(|(_, at)| at).min()
    }

    /// Runs every timer due at `now`, then re-decides the RDYs.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((timer, _)) = self.mode_timer().filter(|&(_, at)| at <= now) {
            match timer {
                RdyTimer::Backoff => self.start_test(now, None),
                RdyTimer::TestIdle => {
                    if let Mode::Testing { conn, .. } = self.mode {
                        let after = self.index(conn).map(|i| i + 1);
                        self.start_test(now, after);
                    }
                }
                _ => {}
            }
        }
        // Connection timers as they stand after the mode changed (a test
        // that started turns the idle windows off).
        for i in 0..self.conns.len() {
            for (timer, _) in self
                .conn_timers(i)
                .into_iter()
                .flatten()
                .filter(|&(_, at)| at <= now)
            {
                match timer {
                    RdyTimer::Idle(_) => {
                        let c = &mut self.conns[i];
                        if c.in_flight >= c.rdy {
                            // A full window is busy, not idle.
                            c.last_activity = now;
                        } else {
                            c.idle = true;
                        }
                    }
                    // Rebalancing below settles lowered RDYs and rotates
                    // turns that are over.
                    RdyTimer::Settle(_) | RdyTimer::Turn(_) => {}
                    RdyTimer::Backoff | RdyTimer::TestIdle => {}
                }
            }
        }
        self.rebalance(now);
    }

    /// The backoff or test timer, when armed.
    fn mode_timer(&self) -> Option<(RdyTimer, Instant)> {
        match self.mode {
            Mode::Backoff { until } if self.eligible() > 0 => Some((RdyTimer::Backoff, until)),
            Mode::Testing {
                since,
                got_message: false,
                ..
            } if self.conns.len() > 1 => {
                Some((RdyTimer::TestIdle, since + self.config.idle_timeout))
            }
            _ => None,
        }
    }

    /// The settle, idle and turn timers of connection `i`, when armed.
    fn conn_timers(&self, i: usize) -> ConnTimers {
        let Some(c) = self.conns.get(i) else {
            return [None; 3];
        };
        let normal = self.mode == Mode::Normal;
        let settle = (c.ceiling > c.rdy).then_some((RdyTimer::Settle(c.id), c.settle_until));
        let idle = (c.rdy > 0 && !c.idle && normal).then(|| {
            (
                RdyTimer::Idle(c.id),
                c.last_activity + self.config.idle_timeout,
            )
        });
        let turn = (normal && c.rdy > 0 && self.rotating())
            .then(|| (RdyTimer::Turn(c.id), c.granted_at + self.config.max_turn));
        [settle, idle, turn]
    }
}
