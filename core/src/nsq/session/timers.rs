//! One timer table for the session, as quinn-proto's `connection/timer.rs`
//! (and the AMQP session's): [`TimerTable::next`] is the minimum over the
//! table, and `handle_timeout` matches on the timer that expired.

use crate::time::Instant;

/// The session's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Something must have arrived by then (two heartbeat intervals after
    /// the last frame).
    Heartbeat = 0,
}

const TIMERS: [Timer; 1] = [Timer::Heartbeat];

/// Deadlines per [`Timer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    at: [Option<Instant>; TIMERS.len()],
}

impl TimerTable {
    /// Arms `timer` for `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }
    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.at = [None; TIMERS.len()];
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
        self.at[timer as usize] = None;
        Some(timer)
    }
}
