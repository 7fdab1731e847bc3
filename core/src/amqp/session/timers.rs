//! One timer table for the session, as quinn-proto's `connection/timer.rs`:
//! [`TimerTable::next`] is the minimum over the table, and the session's
//! `handle_timeout` matches on the timer that expired.

use crate::time::Instant;

/// The session's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The handshake must finish by then.
    Handshake = 0,
    /// Send a heartbeat unless something else was written.
    HeartbeatSend = 1,
    /// Something must have arrived by then.
    HeartbeatReceive = 2,
    /// Publishing may stay blocked until then.
    Blocked = 3,
}

const TIMERS: [Timer; 4] = [
    Timer::Handshake,
    Timer::HeartbeatSend,
    Timer::HeartbeatReceive,
    Timer::Blocked,
];

/// Deadlines per [`Timer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    at: [Option<Instant>; 4],
}

impl TimerTable {
    /// Arms `timer` for `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }
    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }
    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.at = [None; 4];
    }
    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }
    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
    /// A timer whose deadline is at or before `now` (disarmed on return).
    pub fn expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = TIMERS
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}
