//! RDY control for a consumer with several nsqd connections: pure policy,
//! no IO, driven by the runtime.
//!
//! # What RDY means (and why this differs from go-nsq)
//!
//! nsqd treats `RDY n` as a window: it sends a message while the
//! connection's in-flight count is below `n`, and FIN/REQ reopen the slot.
//! RDY is not a credit that runs out (observed with nsqd 1.3.0: a single
//! `RDY 1` delivered a backlog of 5 messages, one after each FIN), so the
//! controller only sends a new RDY when the value it wants changes.
//!
//! # The invariant
//!
//! For connection `c` nsqd may have at most `max(in_flight_c, rdy_c)`
//! un-finished messages out, where `rdy_c` is the RDY nsqd currently
//! applies. A *lowered* RDY reaches nsqd only after a while (and nsqd may be
//! about to send under the old value), so the old value stays reserved for
//! [`RdyConfig::settle`] after the decrease. With `reserved_c =
//! max(in_flight_c, rdy_c, rdy still settling_c)` the controller keeps
//!
//! `sum(reserved_c) + in_flight of removed connections <= max_in_flight`
//!
//! and only ever raises a connection's RDY into free budget. So as long as
//! nsqd applies RDY within `settle`, the number of un-finished messages
//! across all connections never exceeds `max_in_flight`.
//!
//! # Policy
//!
//! - `n <= max_in_flight` connections: each gets `max_in_flight / n`
//!   (the remainder spread one each), capped by nsqd's `max_rdy_count`.
//!   A connection that had room but received nothing for
//!   [`RdyConfig::idle_timeout`] is *idle*: it keeps RDY 1 and gives the
//!   rest to the busy ones, until a message arrives on it again.
//! - A connection still handling more messages than its share (after
//!   `max_in_flight` was lowered or connections were added) keeps them
//!   reserved; the excess comes out of the other connections' shares until
//!   those handlers finish, as do the messages of removed connections.
//! - `n > max_in_flight`: `max_in_flight` connections hold RDY 1 at a time.
//!   A holder gives its RDY back when idle, or when its turn
//!   ([`RdyConfig::max_turn`]) is over, and the connection that has waited
//!   longest gets it: idle connections cannot starve busy ones, and every
//!   connection is given a turn.
//! - Replenish: when a connection's free window (`rdy - in_flight`) drops to
//!   25 % of its RDY or less, [`RdyPolicy::rdy_replenish`] is asked which RDY
//!   to use; the default keeps the current one.
//! - Backoff: a failed message (handler error) sets RDY 0 everywhere for
//!   `backoff_base * 2^(level-1)` (capped at `backoff_max`); then one
//!   connection gets a test RDY 1. If its next message succeeds, normal
//!   flow resumes; if it fails, the backoff is longer. A test connection that
//!   receives nothing within `idle_timeout` passes the test to the next one.

//!
//! Files: [`config`] (ids, tuning, policy, errors), `timers` (the timer
//! table: backoff, test, settle, idle and turn windows), `shares` (who gets
//! how much RDY), `tests`.

pub mod config;
mod shares;
mod timers;

#[cfg(test)]
mod tests;

pub use config::{Admission, ConnId, DefaultRdyPolicy, RdyConfig, RdyError, RdyPolicy};
pub use timers::RdyTimer;

use heapless::Vec;

use crate::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Conn {
    id: ConnId,
    max_rdy: u32,
    /// RDY last decided (handed out by poll_update once `dirty` clears).
    rdy: u32,
    /// Highest RDY nsqd may still apply (a lowered value until it settles).
    ceiling: u32,
    settle_until: Instant,
    in_flight: u32,
    dirty: bool,
    /// Last message, finish, or grant: the start of the idle window.
    last_activity: Instant,
    idle: bool,
    /// When RDY went from 0 to positive (start of its turn).
    granted_at: Instant,
    /// When RDY last went to 0 (queue position for a turn).
    waiting_since: Instant,
    /// RDY the controller's own policy gives this connection.
    share: u32,
    /// RDY the application asked for instead, through [`RdyPolicy`].
    requested: Option<u32>,
}

impl Conn {
    fn reserved(&self) -> u32 {
        self.in_flight.max(self.rdy).max(self.ceiling)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Normal,
    Backoff {
        until: Instant,
    },
    Testing {
        conn: ConnId,
        since: Instant,
        got_message: bool,
    },
}

/// The RDY policy for one consumer's connections (up to `CONNS`).
///
/// The runtime calls [`add_connection`](Self::add_connection) after SUB is
/// accepted, [`on_message`](Self::on_message) for every message,
/// [`on_finished`](Self::on_finished) when its handler is done (FIN or REQ
/// sent), [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and after each of these writes
/// `RDY n` for every update [`poll_update`](Self::poll_update) returns.
pub struct RdyController<const CONNS: usize, P: RdyPolicy = DefaultRdyPolicy> {
    config: RdyConfig,
    policy: P,
    conns: Vec<Conn, CONNS>,
    /// In-flight messages of removed connections still being handled.
    orphans: u32,
    mode: Mode,
    backoff_level: u32,
}

impl<const CONNS: usize> RdyController<CONNS, DefaultRdyPolicy> {
    /// A controller with the default replenish policy.
    pub fn new(config: RdyConfig) -> Self {
        Self::with_policy(config, DefaultRdyPolicy)
    }
}

impl<const CONNS: usize, P: RdyPolicy> RdyController<CONNS, P> {
    /// A controller whose replenish decisions `policy` can override.
    pub fn with_policy(config: RdyConfig, policy: P) -> Self {
        RdyController {
            config,
            policy,
            conns: Vec::new(),
            orphans: 0,
            mode: Mode::Normal,
            backoff_level: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RdyConfig {
        &self.config
    }

    /// The replenish policy.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// Registers a subscribed connection; `max_rdy` is nsqd's
    /// `max_rdy_count` from IDENTIFY (2500, nsqd's default, if unknown).
    pub fn add_connection(
        &mut self,
        id: ConnId,
        max_rdy: u32,
        now: Instant,
    ) -> Result<(), RdyError> {
        if self.index(id).is_some() {
            return Err(RdyError::DuplicateConnection(id));
        }
        let conn = Conn {
            id,
            max_rdy,
            rdy: 0,
            ceiling: 0,
            settle_until: now,
            in_flight: 0,
            dirty: false,
            last_activity: now,
            idle: false,
            granted_at: now,
            waiting_since: now,
            share: 0,
            requested: None,
        };
        self.conns
            .push(conn)
            .map_err(|_| RdyError::TooManyConnections { capacity: CONNS })?;
        self.rebalance(now);
        Ok(())
    }

    /// Forgets a closed connection. Its in-flight messages stay counted
    /// until [`on_finished`](Self::on_finished) is called for each.
    pub fn remove_connection(&mut self, id: ConnId, now: Instant) {
        if let Some(i) = self.index(id) {
            let conn = self.conns.remove(i);
            self.orphans = self.orphans.saturating_add(conn.in_flight);
            if let Mode::Testing { conn: test, .. } = self.mode {
                if test == id {
                    self.start_test(now, Some(i));
                }
            }
            self.rebalance(now);
        }
    }

    /// Changes `max_in_flight` (0 pauses the consumer). Lowering it takes
    /// effect as the lowered RDYs settle.
    pub fn set_max_in_flight(&mut self, max_in_flight: u32, now: Instant) {
        self.config.max_in_flight = max_in_flight;
        self.rebalance(now);
    }

    /// Records a message from `id`; see [`Admission`].
    pub fn on_message(&mut self, id: ConnId, now: Instant) -> Admission {
        let Some(i) = self.index(id) else {
            self.orphans = self.orphans.saturating_add(1);
            return Admission::OverBudget;
        };
        let c = &mut self.conns[i];
        let admission = if c.in_flight < c.ceiling.max(c.rdy) {
            Admission::Within
        } else {
            Admission::OverBudget
        };
        c.in_flight = c.in_flight.saturating_add(1);
        c.last_activity = now;
        let was_idle = core::mem::replace(&mut c.idle, false);
        if let Mode::Testing {
            conn, got_message, ..
        } = &mut self.mode
        {
            if *conn == id {
                *got_message = true;
            }
        }
        // Rebalancing is only needed when the picture changed; skipping it
        // keeps the per-message cost to a few comparisons.
        if self.consult_policy(i) || was_idle {
            self.rebalance(now);
        }
        admission
    }

    /// Records that a message from `id` was finished (`success`: FIN'd) or
    /// failed (REQ'd after a handler error, which starts a backoff).
    pub fn on_finished(&mut self, id: ConnId, success: bool, now: Instant) {
        let mut changed = false;
        match self.index(id) {
            Some(i) => {
                let c = &mut self.conns[i];
                // Budget is freed only if in-flight was above the window.
                changed |= c.in_flight > c.ceiling.max(c.rdy);
                // In flight above the share was taken from the others'.
                changed |= c.in_flight > c.share;
                c.in_flight = c.in_flight.saturating_sub(1);
                c.last_activity = now;
                changed |= self.consult_policy(i);
            }
            None => {
                self.orphans = self.orphans.saturating_sub(1);
                changed = true;
            }
        }
        match self.mode {
            Mode::Normal if !success => {
                self.enter_backoff(now);
                changed = true;
            }
            Mode::Testing {
                conn,
                got_message: true,
                ..
            } if conn == id => {
                if success {
                    self.mode = Mode::Normal;
                    self.backoff_level = 0;
                } else {
                    self.enter_backoff(now);
                }
                changed = true;
            }
            // Failures of messages sent before the backoff began say
            // nothing new about the handler.
            _ => {}
        }
        if changed {
            self.rebalance(now);
        }
    }

    /// The next RDY to write: `(connection, count)`. Call until `None` and
    /// write each at once: the settle time of a lowered RDY counts from the
    /// moment it was decided.
    pub fn poll_update(&mut self) -> Option<(ConnId, u32)> {
        let c = self.conns.iter_mut().find(|c| c.dirty)?;
        c.dirty = false;
        Some((c.id, c.rdy))
    }

    /// Un-finished messages across all connections (removed ones included).
    pub fn in_flight(&self) -> u32 {
        self.conns
            .iter()
            .fold(self.orphans, |sum, c| sum.saturating_add(c.in_flight))
    }

    /// Messages nsqd may have out to us: the invariant's left side.
    pub fn reserved(&self) -> u32 {
        self.conns
            .iter()
            .fold(self.orphans, |sum, c| sum.saturating_add(c.reserved()))
    }

    /// Number of registered connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The RDY last decided for `id`.
    pub fn rdy(&self, id: ConnId) -> Option<u32> {
        self.index(id).map(|i| self.conns[i].rdy)
    }

    /// True while backing off or testing after a failure.
    pub fn is_backing_off(&self) -> bool {
        self.mode != Mode::Normal
    }

    /// The current backoff level (0 when not backing off).
    pub fn backoff_level(&self) -> u32 {
        self.backoff_level
    }

    pub(super) fn index(&self, id: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    pub(super) fn eligible(&self) -> usize {
        self.conns.iter().filter(|c| c.max_rdy > 0).count()
    }

    pub(super) fn rotating(&self) -> bool {
        self.eligible() > self.config.max_in_flight as usize
    }

    /// Asks the policy when the free window is low; true if its wish changed.
    fn consult_policy(&mut self, i: usize) -> bool {
        if self.mode != Mode::Normal {
            return false;
        }
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        let remaining = c.rdy.saturating_sub(c.in_flight);
        if c.rdy > 0 && remaining.saturating_mul(4) <= c.rdy {
            let wanted = self.policy.rdy_replenish(c.id, remaining, c.share);
            let requested = (wanted != c.share).then_some(wanted);
            return core::mem::replace(&mut c.requested, requested) != requested;
        }
        false
    }

    fn enter_backoff(&mut self, now: Instant) {
        self.backoff_level = self.backoff_level.saturating_add(1);
        let shift = self.backoff_level.saturating_sub(1).min(32);
        let duration = self
            .config
            .backoff_base
            .as_millis()
            .saturating_mul(1u64 << shift)
            .min(self.config.backoff_max.as_millis());
        self.mode = Mode::Backoff {
            until: now + Duration::from_millis(duration),
        };
    }

    /// Gives the test RDY to the connection at or after `from` that has
    /// waited longest (rotating through connections on retries).
    pub(super) fn start_test(&mut self, now: Instant, from: Option<usize>) {
        let n = self.conns.len();
        let start = from.unwrap_or(0);
        let pick = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.conns[i].max_rdy > 0);
        self.mode = match pick {
            Some(i) => Mode::Testing {
                conn: self.conns[i].id,
                since: now,
                got_message: false,
            },
            // Nothing to test on: wait until a connection is added.
            None => Mode::Backoff { until: now },
        };
    }
}
