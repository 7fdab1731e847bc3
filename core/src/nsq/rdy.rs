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

use core::fmt;

use heapless::Vec;

use crate::time::{Duration, Instant};

/// Names one connection of a consumer (the runtime chooses the values and
/// must not reuse one while a message from it is still being handled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnId(pub u64);

/// Tuning for [`RdyController`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RdyConfig {
    /// Most un-finished messages across all connections.
    pub max_in_flight: u32,
    /// A connection with free RDY that receives nothing this long is idle.
    pub idle_timeout: Duration,
    /// With more connections than `max_in_flight`, how long one connection
    /// may keep its RDY while others wait.
    pub max_turn: Duration,
    /// How long a lowered RDY stays reserved: the time for `RDY` to reach
    /// nsqd plus a message already on its way to arrive (a few round trips).
    pub settle: Duration,
    /// First backoff after a failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl RdyConfig {
    /// Defaults for `max_in_flight`: 2 s idle, 10 s turns, 500 ms settle,
    /// backoff from 1 s doubling up to 60 s.
    pub const fn new(max_in_flight: u32) -> Self {
        RdyConfig {
            max_in_flight,
            idle_timeout: Duration::from_secs(2),
            max_turn: Duration::from_secs(10),
            settle: Duration::from_millis(500),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The application's say in replenishing RDY (the nsqs `rdy_replenish`
/// callback).
pub trait RdyPolicy {
    /// A connection's free window dropped to `current_rdy` (at most 25 % of
    /// `original_rdy`, the RDY last sent). Returns the RDY to use from now
    /// on; returning `original_rdy` (the default) keeps the window as is.
    /// The controller still caps the answer by the budget and nsqd's
    /// `max_rdy_count`, and later redistribution may change it.
    fn rdy_replenish(&mut self, conn: ConnId, current_rdy: u32, original_rdy: u32) -> u32 {
        let _ = (conn, current_rdy);
        original_rdy
    }
}

/// Keeps the RDY the controller chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultRdyPolicy;

impl RdyPolicy for DefaultRdyPolicy {}

/// A connection could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RdyError {
    /// All `CONNS` slots are in use.
    TooManyConnections {
        /// The controller's `CONNS`.
        capacity: usize,
    },
    /// The id is already registered.
    DuplicateConnection(ConnId),
}

impl fmt::Display for RdyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdyError::TooManyConnections { capacity } => write!(
                f,
                "the RDY controller tracks at most {capacity} connections; use a larger CONNS"
            ),
            RdyError::DuplicateConnection(id) => write!(
                f,
                "connection {} is already registered; remove it before adding it again",
                id.0
            ),
        }
    }
}

impl core::error::Error for RdyError {}

/// Whether a message arrived within the RDY the controller granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Admission {
    /// Within budget: hand it to the application.
    Within,
    /// nsqd sent more than this controller allowed (it applied a lowered
    /// RDY later than `settle`, or the connection is unknown). Handling it
    /// would exceed `max_in_flight`; the runtime should `REQ` it at once
    /// without handling it and report `on_finished(id, true, now)` (a
    /// requeue for budget is not a handler failure, so no backoff).
    OverBudget,
}

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

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.mode {
            Mode::Backoff { until } if self.eligible() > 0 => at(until),
            Mode::Testing {
                since,
                got_message: false,
                ..
            } if self.conns.len() > 1 => at(since + self.config.idle_timeout),
            _ => {}
        }
        let rotating = self.mode == Mode::Normal && self.rotating();
        for c in &self.conns {
            if c.ceiling > c.rdy {
                at(c.settle_until);
            }
            if c.rdy > 0 && !c.idle && self.mode == Mode::Normal {
                at(c.last_activity + self.config.idle_timeout);
            }
            if rotating && c.rdy > 0 {
                at(c.granted_at + self.config.max_turn);
            }
        }
        next
    }

    /// Advances timers: settled RDYs, idle connections, turns, backoff.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.mode {
            Mode::Backoff { until } if now >= until && self.eligible() > 0 => {
                self.start_test(now, None)
            }
            Mode::Testing {
                conn,
                since,
                got_message: false,
            } if now >= since + self.config.idle_timeout && self.conns.len() > 1 => {
                let after = self.index(conn).map(|i| i + 1);
                self.start_test(now, after);
            }
            _ => {}
        }
        if self.mode == Mode::Normal {
            for c in self.conns.iter_mut() {
                if c.rdy > 0 && !c.idle && now >= c.last_activity + self.config.idle_timeout {
                    if c.in_flight >= c.rdy {
                        // A full window is busy, not idle.
                        c.last_activity = now;
                    } else {
                        c.idle = true;
                    }
                }
            }
        }
        self.rebalance(now);
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

    fn index(&self, id: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    fn eligible(&self) -> usize {
        self.conns.iter().filter(|c| c.max_rdy > 0).count()
    }

    fn rotating(&self) -> bool {
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
    fn start_test(&mut self, now: Instant, from: Option<usize>) {
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

    /// The RDY the controller gives each connection now (same order as
    /// `conns`), and whether the application may override it.
    fn shares(&self, now: Instant) -> (Vec<u32, CONNS>, bool) {
        let mut targets: Vec<u32, CONNS> = Vec::new();
        for _ in 0..self.conns.len() {
            let _ = targets.push(0);
        }
        // Messages of removed connections still count against the budget
        // until they are finished: share only what is left.
        let max_in_flight = self.config.max_in_flight.saturating_sub(self.orphans);
        let eligible = self.eligible();
        match self.mode {
            Mode::Backoff { .. } => {}
            // A paused consumer (max_in_flight 0) gets no test RDY either.
            Mode::Testing { .. } if max_in_flight == 0 => {}
            Mode::Testing { conn, .. } => {
                if let Some(i) = self.index(conn) {
                    targets[i] = 1.min(self.conns[i].max_rdy);
                }
            }
            Mode::Normal if max_in_flight == 0 || eligible == 0 => {}
            Mode::Normal if eligible <= max_in_flight as usize => {
                let idle = self
                    .conns
                    .iter()
                    .filter(|c| c.max_rdy > 0 && c.idle)
                    .count();
                let use_idle = idle < eligible;
                let active = if use_idle { eligible - idle } else { eligible } as u32;
                let idle_share = if use_idle { idle as u32 } else { 0 };
                let available = max_in_flight - idle_share;
                let (per, mut extra) = (available / active, available % active);
                for (i, c) in self.conns.iter().enumerate() {
                    if c.max_rdy == 0 {
                        continue;
                    }
                    let share = if use_idle && c.idle {
                        1
                    } else if extra > 0 {
                        extra -= 1;
                        per + 1
                    } else {
                        per
                    };
                    targets[i] = share.min(c.max_rdy);
                }
                self.leave_room_for_in_flight(&mut targets, max_in_flight);
                return (targets, true);
            }
            Mode::Normal => {
                // Rotation: max_in_flight holders of RDY 1.
                let waiting = self.conns.iter().any(|c| c.max_rdy > 0 && c.rdy == 0);
                let mut holders = 0u32;
                for (i, c) in self.conns.iter().enumerate() {
                    let turn_over = c.idle || now >= c.granted_at + self.config.max_turn;
                    if c.max_rdy > 0
                        && c.rdy > 0
                        && !(waiting && turn_over)
                        && holders < max_in_flight
                    {
                        targets[i] = 1;
                        holders += 1;
                    }
                }
                let mut queue: Vec<usize, CONNS> = (0..self.conns.len())
                    .filter(|&i| self.conns[i].max_rdy > 0 && self.conns[i].rdy == 0)
                    .collect();
                queue.sort_unstable_by_key(|&i| (self.conns[i].waiting_since, i));
                for i in queue.iter().take((max_in_flight - holders) as usize) {
                    targets[*i] = 1;
                }
                self.leave_room_for_in_flight(&mut targets, max_in_flight);
            }
        }
        (targets, false)
    }

    /// Lowers `targets` so that, once every RDY has settled, the reserved
    /// total fits `budget` (max_in_flight minus orphans). A connection
    /// still handling more messages than its target (max_in_flight was
    /// lowered, or its share shrank when connections were added) reserves
    /// its in-flight count, not its target: the excess comes out of the
    /// other connections' targets, cut evenly among those with room above
    /// their own in-flight count (cutting below that frees nothing).
    /// Without this, 3 connections with 2 messages in flight on one and
    /// max_in_flight lowered to 3 kept 2 + 1 + 1 = 4 reserved (found by the
    /// `rdy` fuzz target).
    fn leave_room_for_in_flight(&self, targets: &mut [u32], budget: u32) {
        let reserved = self
            .conns
            .iter()
            .zip(targets.iter())
            .fold(0u32, |sum, (c, &t)| sum.saturating_add(c.in_flight.max(t)));
        let mut over = reserved.saturating_sub(budget);
        // Each pass cuts `over / k` (at least 1) from each of the k
        // connections with room: either one runs out of room or `over`
        // drops below k, so this ends within CONNS + 1 passes.
        while over > 0 {
            let k = self
                .conns
                .iter()
                .zip(targets.iter())
                .filter(|(c, &t)| t > c.in_flight)
                .count() as u32;
            if k == 0 {
                break;
            }
            let cut = (over / k).max(1);
            // From the back, so the first connections keep the remainder,
            // as in the even split.
            for (c, t) in self.conns.iter().zip(targets.iter_mut()).rev() {
                if over == 0 {
                    break;
                }
                let room = t.saturating_sub(c.in_flight);
                let n = cut.min(room).min(over);
                *t -= n;
                over -= n;
            }
        }
    }

    /// Re-decides every connection's RDY: settles, lowers, then raises
    /// within the budget (longest-waiting first).
    fn rebalance(&mut self, now: Instant) {
        for c in self.conns.iter_mut() {
            if c.ceiling > c.rdy && now >= c.settle_until {
                c.ceiling = c.rdy;
            }
        }
        let (mut targets, overridable) = self.shares(now);
        for (c, target) in self.conns.iter_mut().zip(targets.iter_mut()) {
            c.share = *target;
            if overridable {
                if let Some(requested) = c.requested {
                    *target = requested.min(c.max_rdy);
                }
            }
            let target = *target;
            if target < c.rdy {
                c.rdy = target;
                c.dirty = true;
                c.settle_until = now + self.config.settle;
                if self.config.settle.as_millis() == 0 {
                    c.ceiling = target;
                }
                if target == 0 {
                    c.waiting_since = now;
                }
            }
        }
        let mut free = self.config.max_in_flight.saturating_sub(self.reserved());
        // Budget left once every lowered RDY has settled. Raising a
        // connection back up to its unsettled ceiling costs nothing now,
        // but keeps that budget for good: without this bound a removed
        // connection's in-flight messages plus the raised RDYs exceeded
        // max_in_flight after settling (found by the `rdy` fuzz target).
        let settled = self.conns.iter().fold(self.orphans, |sum, c| {
            sum.saturating_add(c.in_flight.max(c.rdy))
        });
        let mut free_settled = self.config.max_in_flight.saturating_sub(settled);
        let mut order: Vec<usize, CONNS> = (0..self.conns.len()).collect();
        order.sort_unstable_by_key(|&i| (self.conns[i].rdy > 0, self.conns[i].waiting_since, i));
        for i in order {
            let (Some(c), Some(&target)) = (self.conns.get_mut(i), targets.get(i)) else {
                continue;
            };
            if target <= c.rdy {
                continue;
            }
            let before = c.reserved();
            let before_settled = c.in_flight.max(c.rdy);
            let granted = target
                .min(before.saturating_add(free))
                .min(before_settled.saturating_add(free_settled));
            if granted <= c.rdy {
                continue;
            }
            if c.rdy == 0 {
                c.granted_at = now;
            }
            // More room: whether it stays unused is measured from now.
            c.last_activity = now;
            c.idle = false;
            c.rdy = granted;
            c.ceiling = c.ceiling.max(granted);
            c.dirty = true;
            free = free.saturating_sub(c.reserved() - before);
            free_settled = free_settled.saturating_sub(c.in_flight.max(c.rdy) - before_settled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec as StdVec;

    const A: ConnId = ConnId(1);
    const B: ConnId = ConnId(2);
    const C: ConnId = ConnId(3);

    fn config(max_in_flight: u32) -> RdyConfig {
        RdyConfig {
            max_in_flight,
            idle_timeout: Duration::from_millis(1000),
            max_turn: Duration::from_millis(5000),
            settle: Duration::from_millis(100),
            backoff_base: Duration::from_millis(1000),
            backoff_max: Duration::from_millis(3000),
        }
    }

    fn t(ms: u64) -> Instant {
        Instant(ms)
    }

    /// Drains RDY updates, as the runtime would write them.
    fn updates<const N: usize, P: RdyPolicy>(r: &mut RdyController<N, P>) -> StdVec<(u64, u32)> {
        let mut out = StdVec::new();
        while let Some((id, n)) = r.poll_update() {
            out.push((id.0, n));
        }
        out
    }

    fn rdys<const N: usize, P: RdyPolicy>(r: &RdyController<N, P>, ids: &[ConnId]) -> StdVec<u32> {
        ids.iter().map(|&id| r.rdy(id).unwrap()).collect()
    }

    /// Runs timers up to `until`, like a runtime sleeping on poll_timeout.
    fn run_until<const N: usize, P: RdyPolicy>(r: &mut RdyController<N, P>, until: u64) {
        while let Some(at) = r.poll_timeout() {
            if at.0 > until {
                break;
            }
            r.handle_timeout(at);
        }
    }

    #[test]
    fn spreads_max_in_flight_evenly() {
        let mut r = RdyController::<8>::new(config(10));
        r.add_connection(A, 2500, t(0)).unwrap();
        assert_eq!(updates(&mut r), [(1, 10)]);
        r.add_connection(B, 2500, t(0)).unwrap();
        r.add_connection(C, 2500, t(0)).unwrap();
        // A is lowered at once; B and C are raised once A's lowered RDY
        // settled (nsqd may still send under RDY 10 until then).
        assert_eq!(rdys(&r, &[A, B, C]), [4, 0, 0]);
        assert_eq!(r.reserved(), 10);
        assert!(r.reserved() <= 10);
        run_until(&mut r, 100);
        assert_eq!(rdys(&r, &[A, B, C]), [4, 3, 3]);
        assert_eq!(r.reserved(), 10);
        assert_eq!(updates(&mut r), [(1, 4), (2, 3), (3, 3)]);
    }

    #[test]
    fn respects_max_rdy_count() {
        let mut r = RdyController::<8>::new(config(100));
        r.add_connection(A, 3, t(0)).unwrap();
        assert_eq!(updates(&mut r), [(1, 3)]);
        r.add_connection(B, 0, t(0)).unwrap();
        assert_eq!(r.rdy(B), Some(0));
    }

    #[test]
    fn max_in_flight_one_with_three_connections_rotates() {
        let mut r = RdyController::<8>::new(config(1));
        for id in [A, B, C] {
            r.add_connection(id, 2500, t(0)).unwrap();
        }
        assert_eq!(rdys(&r, &[A, B, C]), [1, 0, 0]);
        assert_eq!(updates(&mut r), [(1, 1)]);
        // A delivers one message; while it is in flight nobody else gets RDY.
        assert_eq!(r.on_message(A, t(10)), Admission::Within);
        assert_eq!(r.reserved(), 1);
        r.on_finished(A, true, t(20));
        // A then stays silent: idle after 1 s, its RDY goes back, and after
        // the settle time the longest waiter (B) gets it.
        let mut holders = StdVec::new();
        let mut now = 20;
        while holders.len() < 6 {
            now = r.poll_timeout().unwrap().0;
            r.handle_timeout(t(now));
            assert!(r.reserved() <= 1, "budget exceeded at {now}");
            for (id, n) in updates(&mut r) {
                if n == 1 {
                    holders.push(id);
                }
            }
        }
        assert_eq!(holders, [2, 3, 1, 2, 3, 1], "every connection gets a turn");
        assert!(now < 10_000, "turns come quickly when connections are idle");
    }

    #[test]
    fn fewer_max_in_flight_than_connections_never_exceeds_budget() {
        let ids: StdVec<ConnId> = (0..5).map(ConnId).collect();
        let mut r = RdyController::<8>::new(config(2));
        for &id in &ids {
            r.add_connection(id, 2500, t(0)).unwrap();
        }
        // The first connection got 2 and lowers to 1; once that settled
        // the second gets the freed slot.
        assert_eq!(rdys(&r, &ids), [1, 0, 0, 0, 0]);
        run_until(&mut r, 100);
        assert_eq!(rdys(&r, &ids), [1, 1, 0, 0, 0]);
        let mut turns = [0u32; 5];
        for now in (0..20_000).step_by(50) {
            r.handle_timeout(t(now));
            assert!(r.reserved() <= 2);
            for (id, n) in updates(&mut r) {
                if n > 0 {
                    turns[id as usize] += 1;
                }
            }
            assert!(rdys(&r, &ids).iter().sum::<u32>() <= 2);
        }
        assert!(turns.iter().all(|&n| n >= 2), "turns {turns:?}");
    }

    #[test]
    fn idle_connections_do_not_starve_busy_ones() {
        let mut r = RdyController::<8>::new(config(1));
        r.add_connection(A, 2500, t(0)).unwrap(); // idle nsqd
        r.add_connection(B, 2500, t(0)).unwrap(); // nsqd with a backlog
        assert_eq!(rdys(&r, &[A, B]), [1, 0]);
        run_until(&mut r, 1100);
        assert_eq!(rdys(&r, &[A, B]), [0, 1], "idle A gave its RDY to B");
        // B is busy: it keeps RDY while it delivers, for a whole turn.
        let mut now = 1100;
        while now < 6000 {
            assert_eq!(r.on_message(B, t(now)), Admission::Within);
            r.on_finished(B, true, t(now + 5));
            now += 10;
            run_until(&mut r, now);
            if now < 6000 {
                assert_eq!(r.rdy(B), Some(1), "at {now}");
            }
        }
        // After its turn, A is given a chance, then B gets it back.
        run_until(&mut r, 6300);
        assert_eq!(rdys(&r, &[A, B]), [1, 0]);
        run_until(&mut r, 7500);
        assert_eq!(rdys(&r, &[A, B]), [0, 1]);
    }

    #[test]
    fn idle_connection_shrinks_to_one_when_connections_fit() {
        let mut r = RdyController::<8>::new(config(10));
        r.add_connection(A, 2500, t(0)).unwrap();
        r.add_connection(B, 2500, t(0)).unwrap();
        run_until(&mut r, 100);
        assert_eq!(rdys(&r, &[A, B]), [5, 5]);
        // B stays busy (a full window is never idle), A is silent.
        for _ in 0..5 {
            r.on_message(B, t(200));
        }
        run_until(&mut r, 1300);
        assert_eq!(rdys(&r, &[A, B]), [1, 9]);
        assert!(r.reserved() <= 10);
        // A message on A makes it active again: back to 5/5.
        r.on_message(A, t(1400));
        run_until(&mut r, 1600);
        assert_eq!(rdys(&r, &[A, B]), [5, 5]);
        assert!(r.reserved() <= 10);
    }

    #[test]
    fn backoff_sequence() {
        let mut r = RdyController::<8>::new(config(4));
        r.add_connection(A, 2500, t(0)).unwrap();
        r.add_connection(B, 2500, t(0)).unwrap();
        run_until(&mut r, 100);
        updates(&mut r);
        r.on_message(A, t(100));
        r.on_message(B, t(100));
        // A handler fails: RDY 0 everywhere for 1 s.
        r.on_finished(A, false, t(200));
        assert!(r.is_backing_off());
        assert_eq!(r.backoff_level(), 1);
        assert_eq!(updates(&mut r), [(1, 0), (2, 0)]);
        // The other in-flight message fails too: no longer backoff.
        r.on_finished(B, false, t(250));
        assert_eq!(r.backoff_level(), 1);
        assert_eq!(r.poll_timeout(), Some(t(300)).min(Some(t(1200))));
        run_until(&mut r, 1199);
        assert_eq!(rdys(&r, &[A, B]), [0, 0]);
        // Backoff over: a test RDY 1 on one connection.
        run_until(&mut r, 1200);
        assert_eq!(updates(&mut r), [(1, 1)]);
        // The test message fails: 2 s backoff.
        r.on_message(A, t(1300));
        r.on_finished(A, false, t(1310));
        assert_eq!(r.backoff_level(), 2);
        assert_eq!(updates(&mut r), [(1, 0)]);
        run_until(&mut r, 3309);
        assert_eq!(rdys(&r, &[A, B]), [0, 0]);
        run_until(&mut r, 3310);
        assert_eq!(rdys(&r, &[A, B]), [1, 0]);
        // No message on the test connection: the test moves on to B (the
        // budget of 4 has room while A's RDY 1 settles).
        run_until(&mut r, 4309);
        assert_eq!(rdys(&r, &[A, B]), [1, 0]);
        run_until(&mut r, 4310);
        assert_eq!(rdys(&r, &[A, B]), [0, 1]);
        // Success: back to normal flow.
        r.on_message(B, t(4500));
        r.on_finished(B, true, t(4510));
        assert!(!r.is_backing_off());
        assert_eq!(r.backoff_level(), 0);
        run_until(&mut r, 4700);
        assert_eq!(rdys(&r, &[A, B]), [2, 2]);
    }

    #[test]
    fn backoff_is_capped() {
        let mut r = RdyController::<8>::new(config(1));
        r.add_connection(A, 2500, t(0)).unwrap();
        updates(&mut r);
        let mut now = 0;
        let mut durations = StdVec::new();
        for _ in 0..4 {
            r.on_message(A, t(now));
            r.on_finished(A, false, t(now));
            assert_eq!(updates(&mut r), [(1, 0)]);
            let failed_at = now;
            // Step timers until the test RDY 1 is issued.
            while r.rdy(A) != Some(1) {
                now = r.poll_timeout().unwrap().0;
                r.handle_timeout(t(now));
            }
            assert_eq!(updates(&mut r), [(1, 1)]);
            durations.push(now - failed_at);
        }
        assert_eq!(durations, [1000, 2000, 3000, 3000]);
    }

    #[test]
    fn replenish_policy_can_override() {
        struct Double(StdVec<(u64, u32, u32)>);
        impl RdyPolicy for Double {
            fn rdy_replenish(&mut self, conn: ConnId, current: u32, original: u32) -> u32 {
                self.0.push((conn.0, current, original));
                original * 2
            }
        }
        let mut r = RdyController::<8, Double>::with_policy(config(100), Double(StdVec::new()));
        r.add_connection(A, 2500, t(0)).unwrap();
        r.add_connection(B, 2500, t(0)).unwrap();
        run_until(&mut r, 200);
        r.set_max_in_flight(8, t(200));
        run_until(&mut r, 400);
        assert_eq!(rdys(&r, &[A, B]), [4, 4]);
        // Window of A drains to 25 %: the policy is asked and wants 8.
        for _ in 0..3 {
            r.on_message(A, t(500));
        }
        assert_eq!(r.policy_mut().0, [(1, 1, 4)]);
        // Budget is full (B holds 4), so A grows only as far as allowed.
        assert_eq!(r.rdy(A), Some(4));
        r.remove_connection(B, t(600));
        assert_eq!(r.rdy(A), Some(8));
        assert!(r.reserved() <= 8);
    }

    #[test]
    fn default_policy_sends_no_redundant_rdy() {
        let mut r = RdyController::<8>::new(config(4));
        r.add_connection(A, 2500, t(0)).unwrap();
        assert_eq!(updates(&mut r), [(1, 4)]);
        for i in 0..100 {
            r.on_message(A, t(i));
            r.on_finished(A, true, t(i));
        }
        assert_eq!(updates(&mut r), [], "nsqd's window refills without RDY");
    }

    #[test]
    fn removed_connection_in_flight_still_counted() {
        let mut r = RdyController::<8>::new(config(2));
        r.add_connection(A, 2500, t(0)).unwrap();
        r.add_connection(B, 2500, t(0)).unwrap();
        run_until(&mut r, 100);
        r.on_message(A, t(100));
        r.remove_connection(A, t(110));
        // A's message is still being handled: B gets only 1.
        assert_eq!(r.rdy(B), Some(1));
        assert_eq!(r.in_flight(), 1);
        r.on_finished(A, true, t(120));
        assert_eq!(r.rdy(B), Some(2));
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn over_budget_messages_are_flagged() {
        let mut r = RdyController::<8>::new(config(1));
        r.add_connection(A, 2500, t(0)).unwrap();
        assert_eq!(r.on_message(A, t(1)), Admission::Within);
        assert_eq!(r.on_message(A, t(1)), Admission::OverBudget);
        assert_eq!(r.on_message(C, t(1)), Admission::OverBudget);
    }

    #[test]
    fn connection_limits() {
        let mut r = RdyController::<2>::new(config(1));
        r.add_connection(A, 1, t(0)).unwrap();
        assert_eq!(
            r.add_connection(A, 1, t(0)),
            Err(RdyError::DuplicateConnection(A))
        );
        r.add_connection(B, 1, t(0)).unwrap();
        let e = r.add_connection(C, 1, t(0)).unwrap_err();
        assert_eq!(e, RdyError::TooManyConnections { capacity: 2 });
        assert!(std::format!("{e}").contains("CONNS"));
    }

    #[test]
    fn zero_max_in_flight_pauses() {
        let mut r = RdyController::<4>::new(config(3));
        r.add_connection(A, 10, t(0)).unwrap();
        updates(&mut r);
        r.set_max_in_flight(0, t(1));
        assert_eq!(updates(&mut r), [(1, 0)]);
        r.set_max_in_flight(3, t(2));
        run_until(&mut r, 200);
        assert_eq!(updates(&mut r), [(1, 3)]);
    }

    /// Operations on the simulated consumer: nsqd sends only within the RDY
    /// it has applied, and applies every RDY within `settle`.
    #[derive(Clone, Debug)]
    enum Op {
        Add(u32),
        Remove(usize),
        Deliver(usize),
        Finish(usize, bool),
        FinishOrphan,
        Apply(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0u32..6).prop_map(Op::Add),
            1 => any::<usize>().prop_map(Op::Remove),
            6 => any::<usize>().prop_map(Op::Deliver),
            5 => (any::<usize>(), proptest::bool::weighted(0.9)).prop_map(|(i, s)| Op::Finish(i, s)),
            1 => Just(Op::FinishOrphan),
            3 => any::<usize>().prop_map(Op::Apply),
            3 => (0u64..800).prop_map(Op::Advance),
        ]
    }

    struct SimConn {
        id: ConnId,
        applied: u32,
        /// RDY values written but not yet applied by nsqd: (sent at, value).
        transit: VecDeque<(u64, u32)>,
        in_flight: u32,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariant_holds_for_random_traffic(
            max_in_flight in 1u32..6,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let cfg = config(max_in_flight);
            let settle = cfg.settle.as_millis();
            let mut r = RdyController::<6>::new(cfg);
            let mut sim: StdVec<SimConn> = StdVec::new();
            let mut orphans = 0u32;
            let mut next_id = 0u64;
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Add(max_rdy) => {
                        next_id += 1;
                        if r.add_connection(ConnId(next_id), max_rdy, t(now)).is_ok() {
                            sim.push(SimConn { id: ConnId(next_id), applied: 0, transit: VecDeque::new(), in_flight: 0 });
                        }
                    }
                    Op::Remove(i) if !sim.is_empty() => {
                        let c = sim.remove(i % sim.len());
                        orphans += c.in_flight;
                        r.remove_connection(c.id, t(now));
                    }
                    Op::Deliver(i) if !sim.is_empty() => {
                        let len = sim.len();
                        let c = &mut sim[i % len];
                        if c.in_flight < c.applied {
                            c.in_flight += 1;
                            prop_assert_eq!(r.on_message(c.id, t(now)), Admission::Within);
                        }
                    }
                    Op::Finish(i, success) if !sim.is_empty() => {
                        let len = sim.len();
                        let c = &mut sim[i % len];
                        if c.in_flight > 0 {
                            c.in_flight -= 1;
                            r.on_finished(c.id, success, t(now));
                        }
                    }
                    Op::FinishOrphan if orphans > 0 => {
                        orphans -= 1;
                        r.on_finished(ConnId(0), true, t(now));
                    }
                    Op::Apply(i) if !sim.is_empty() => {
                        let len = sim.len();
                        let c = &mut sim[i % len];
                        if let Some((_, v)) = c.transit.pop_front() {
                            c.applied = v;
                        }
                    }
                    Op::Advance(ms) => {
                        let target = now + ms;
                        // Step through the controller's deadlines.
                        loop {
                            let next = r.poll_timeout().map_or(target, |d| d.0.clamp(now, target));
                            // nsqd applies RDYs within `settle` of sending.
                            for c in sim.iter_mut() {
                                while c.transit.front().is_some_and(|&(at, _)| at + settle <= next) {
                                    c.applied = c.transit.pop_front().unwrap().1;
                                }
                            }
                            now = next;
                            r.handle_timeout(t(now));
                            while let Some((id, n)) = r.poll_update() {
                                let c = sim.iter_mut().find(|c| c.id == id).unwrap();
                                c.transit.push_back((now, n));
                            }
                            if now >= target {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
                while let Some((id, n)) = r.poll_update() {
                    let c = sim.iter_mut().find(|c| c.id == id).unwrap();
                    c.transit.push_back((now, n));
                }
                // What the application sees: un-finished messages.
                let in_flight: u32 = sim.iter().map(|c| c.in_flight).sum::<u32>() + orphans;
                prop_assert!(in_flight <= max_in_flight, "in flight {} > {}", in_flight, max_in_flight);
                prop_assert_eq!(r.in_flight(), in_flight);
                // What nsqd could still send: every RDY it applies or will.
                let potential: u32 = sim
                    .iter()
                    .map(|c| c.transit.iter().map(|&(_, v)| v).fold(c.applied.max(c.in_flight), u32::max))
                    .sum::<u32>() + orphans;
                prop_assert!(potential <= max_in_flight, "potential {} > {}", potential, max_in_flight);
                prop_assert!(r.reserved() <= max_in_flight);
            }
        }

        /// Whatever happened before, once every nsqd has a backlog and
        /// handlers succeed, every connection gets RDY within a bounded time
        /// and the backoff ends: nothing starves.
        #[test]
        fn every_connection_gets_a_turn(
            max_in_flight in 1u32..5,
            conns in 1usize..6,
            failures in proptest::collection::vec(any::<bool>(), 0..5),
        ) {
            let cfg = config(max_in_flight);
            let mut r = RdyController::<6>::new(cfg);
            let mut in_flight = [0u32; 6];
            for i in 0..conns {
                r.add_connection(ConnId(i as u64), 2500, t(0)).unwrap();
            }
            // A few results first (over-budget ones are REQ'd by the
            // runtime, which also reports them finished), so the test also
            // covers leaving backoff.
            for (k, fail) in failures.iter().enumerate() {
                let id = ConnId((k % conns) as u64);
                let admitted = r.on_message(id, t(0)) == Admission::Within;
                r.on_finished(id, !admitted || !fail, t(0));
            }
            let mut got_turn = [false; 6];
            let mut now = 0u64;
            let bound = 2 * conns as u64 * (5000 + 1000 + 100) + 2 * 3000 + 10_000;
            while now < bound {
                // Every nsqd has a backlog: it fills whatever RDY allows.
                for i in 0..conns {
                    let id = ConnId(i as u64);
                    let rdy = r.rdy(id).unwrap();
                    if rdy > 0 {
                        got_turn[i] = true;
                    }
                    if in_flight[i] < rdy {
                        prop_assert_eq!(r.on_message(id, t(now)), Admission::Within);
                        in_flight[i] += 1;
                    }
                }
                prop_assert!(in_flight.iter().sum::<u32>() <= max_in_flight);
                now += 50;
                for (i, n) in in_flight.iter_mut().enumerate().take(conns) {
                    if *n > 0 {
                        *n -= 1;
                        r.on_finished(ConnId(i as u64), true, t(now));
                    }
                }
                r.handle_timeout(t(now));
                while r.poll_update().is_some() {}
            }
            prop_assert!(!r.is_backing_off());
            prop_assert!(got_turn[..conns].iter().all(|&g| g), "turns {:?}", got_turn);
        }
    }
}
