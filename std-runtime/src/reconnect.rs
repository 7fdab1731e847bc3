//! One reconnect policy for every protocol: exponential backoff with jitter,
//! a cap, an attempt budget, and a "healthy after" reset.
//!
//! This is the protocol-free part of the runtime's connection skeleton. A
//! protocol's connection task asks [`Backoff::next_delay`] before EVERY
//! reconnect, including one after a handshake that succeeded: a connection
//! that dies before it was up for [`BackoffPolicy::healthy_after`] counts as
//! a failed attempt (the server accepts, shakes hands, then sends something
//! invalid or closes), so a broken server sees a few connections a second
//! at most instead of thousands. Only a connection that lived at least that
//! long resets the backoff ([`Backoff::connection_ended`]).
//!
//! [`RepeatFilter`] is the other half of "no storm": the same error is said
//! once, then counted, so a reconnect loop does not print a line per
//! attempt.
//!
//! ```
//! use std::time::Duration;
//! use courier::reconnect::{Backoff, BackoffPolicy, Jitter};
//!
//! let policy = BackoffPolicy::new(Duration::from_millis(50), Duration::from_secs(2))
//!     .jitter(Jitter::Full);
//! let mut backoff = Backoff::new(policy);
//! for _ in 0..10 {
//!     assert!(backoff.next_delay() <= Duration::from_secs(2));
//! }
//! assert_eq!(backoff.failed_attempts(), 10);
//! // A connection that stayed up 1 s (less than healthy_after) is one more failure.
//! backoff.connection_ended(Duration::from_secs(1));
//! assert_eq!(backoff.failed_attempts(), 11);
//! // One that stayed up long enough resets the backoff.
//! backoff.connection_ended(Duration::from_secs(60));
//! assert_eq!(backoff.failed_attempts(), 0);
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a delay is randomised so a fleet of clients does not reconnect in
/// lockstep (see the AWS architecture blog, "Exponential Backoff And
/// Jitter").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// No randomness: `min(cap, base * 2^n)`. For tests and tools only.
    None,
    /// Uniform in `[d/2, d]` with `d = min(cap, base * 2^n)`: never shorter
    /// than half the exponential step.
    Equal,
    /// Uniform in `[0, d]` with `d = min(cap, base * 2^n)`: the best spread
    /// of a thundering herd.
    Full,
    /// Uniform in `[base, 3 * previous]`, capped: grows like the
    /// exponential step but each client walks its own sequence.
    Decorrelated,
}

/// The knobs of a reconnect policy. Protocol-free: NATS and NSQ both use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// First step of the exponential backoff.
    pub base: Duration,
    /// Longest delay ever returned.
    pub cap: Duration,
    /// How each step is randomised.
    pub jitter: Jitter,
    /// A connection that stayed up at least this long ends the failure
    /// streak; one that died sooner counts as a failed attempt.
    pub healthy_after: Duration,
    /// Failed attempts in a row after which the caller gives up (`None`:
    /// never).
    pub max_attempts: Option<usize>,
}

impl BackoffPolicy {
    /// `base` doubling up to `cap` (at least `base`), equal jitter, healthy
    /// after 5 s, no attempt limit.
    pub fn new(base: Duration, cap: Duration) -> Self {
        BackoffPolicy {
            base,
            cap: cap.max(base),
            jitter: Jitter::Equal,
            healthy_after: Duration::from_secs(5),
            max_attempts: None,
        }
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets how long a connection must stay up to reset the backoff.
    pub fn healthy_after(mut self, after: Duration) -> Self {
        self.healthy_after = after;
        self
    }

    /// Sets the attempt budget (`None`: retry forever).
    pub fn max_attempts(mut self, attempts: Option<usize>) -> Self {
        self.max_attempts = attempts;
        self
    }
}

/// The state of one reconnect loop under a [`BackoffPolicy`].
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    failed: usize,
    previous: Duration,
}

impl Backoff {
    /// A loop that has not failed yet.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            failed: 0,
            previous: policy.base,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Failed attempts since the last healthy connection.
    pub fn failed_attempts(&self) -> usize {
        self.failed
    }

    /// Whether the attempt budget is spent.
    pub fn exhausted(&self) -> bool {
        self.policy
            .max_attempts
            .is_some_and(|max| self.failed >= max)
    }

    /// Records a failed attempt (connect refused, handshake failed) without
    /// asking for a delay, e.g. one of several servers tried in a round.
    pub fn record_failure(&mut self) {
        self.failed = self.failed.saturating_add(1);
    }

    /// A connection that completed its handshake ended after `lived`: a
    /// short life counts as a failed attempt, a long one resets the loop.
    /// Returns whether it counted as healthy.
    pub fn connection_ended(&mut self, lived: Duration) -> bool {
        if lived >= self.policy.healthy_after {
            self.reset();
            true
        } else {
            self.record_failure();
            false
        }
    }

    /// Forgets every failure (the next delay is the first step again).
    pub fn reset(&mut self) {
        self.failed = 0;
        self.previous = self.policy.base;
    }

    /// Records one failed attempt and returns how long to wait before the
    /// next; never more than the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.delay_for(self.failed);
        self.record_failure();
        step
    }

    /// The delay after a streak of `failed` failures, without recording one
    /// (a reconnect after a healthy connection still waits a jittered first
    /// step so a fleet does not come back at once).
    pub fn delay_for(&mut self, failed: usize) -> Duration {
        let BackoffPolicy {
            base, cap, jitter, ..
        } = self.policy;
        let exponential = base.saturating_mul(1u32 << failed.min(20) as u32).min(cap);
        let delay = match jitter {
            Jitter::None => exponential,
            Jitter::Equal => exponential / 2 + exponential.mul_f64(fastrand::f64() * 0.5),
            Jitter::Full => exponential.mul_f64(fastrand::f64()),
            Jitter::Decorrelated => {
                let high = self.previous.saturating_mul(3).min(cap).max(base);
                base + (high - base).mul_f64(fastrand::f64())
            }
        };
        let delay = delay.min(cap);
        self.previous = delay.max(base);
        delay
    }
}

/// Says the same error once, then counts it.
///
/// Messages are compared with each run of digits blanked (byte counts, ports and
/// attempt numbers differ from one attempt to the next). A message is shown
/// the first time, and again only after `quiet` has passed since it was
/// last shown, with how many times it was suppressed in between.
#[derive(Debug)]
pub struct RepeatFilter {
    quiet: Duration,
    seen: HashMap<String, (Instant, u64)>,
}

impl RepeatFilter {
    /// Repeats of a message within `quiet` of its last showing are counted,
    /// not shown.
    pub fn new(quiet: Duration) -> Self {
        RepeatFilter {
            quiet,
            seen: HashMap::new(),
        }
    }

    /// `Some(n)` when `message` should be shown now, `n` being how many
    /// times it was suppressed since it was last shown; `None` to stay
    /// quiet (the repeat is counted).
    pub fn check(&mut self, message: &str, now: Instant) -> Option<u64> {
        let mut key = String::with_capacity(message.len());
        for c in message.chars() {
            if !c.is_ascii_digit() {
                key.push(c);
            } else if !key.ends_with('#') {
                key.push('#');
            }
        }
        match self.seen.get_mut(&key) {
            None => {
                self.seen.insert(key, (now, 0));
                Some(0)
            }
            Some((shown, suppressed)) => {
                if now.duration_since(*shown) >= self.quiet {
                    let n = *suppressed;
                    *shown = now;
                    *suppressed = 0;
                    Some(n)
                } else {
                    *suppressed += 1;
                    None
                }
            }
        }
    }

    /// Every message suppressed since it was last shown, with its count
    /// (for a summary at exit).
    pub fn suppressed(&self) -> impl Iterator<Item = (&str, u64)> {
        self.seen
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(k, (_, n))| (k.as_str(), *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_jitter_doubles_up_to_the_cap() {
        let mut b = Backoff::new(BackoffPolicy::new(ms(50), ms(400)).jitter(Jitter::None));
        let got: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(got, [ms(50), ms(100), ms(200), ms(400), ms(400), ms(400)]);
        assert_eq!(b.failed_attempts(), 6);
    }

    #[test]
    fn every_jitter_stays_within_its_bounds() {
        for jitter in [Jitter::Equal, Jitter::Full, Jitter::Decorrelated] {
            let mut b = Backoff::new(BackoffPolicy::new(ms(50), ms(2000)).jitter(jitter));
            let mut total = Duration::ZERO;
            for n in 0..200usize {
                let d = b.next_delay();
                assert!(d <= ms(2000), "{jitter:?}: {d:?} above the cap");
                let exp = ms(50).saturating_mul(1 << n.min(20) as u32).min(ms(2000));
                match jitter {
                    Jitter::Equal => assert!(d >= exp / 2, "{jitter:?}: {d:?} < {exp:?}/2"),
                    Jitter::Decorrelated => assert!(d >= ms(50), "{jitter:?}: {d:?}"),
                    _ => {}
                }
                total += d;
            }
            // 200 attempts average well above zero: the backoff really waits.
            assert!(total > Duration::from_secs(50), "{jitter:?}: {total:?}");
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut b = Backoff::new(BackoffPolicy::new(ms(1000), ms(1000)).jitter(Jitter::Full));
        let delays: std::collections::HashSet<_> = (0..50).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 40, "{} distinct of 50", delays.len());
    }

    #[test]
    fn a_short_lived_connection_is_a_failure_a_long_one_resets() {
        let policy = BackoffPolicy::new(ms(50), ms(2000))
            .jitter(Jitter::None)
            .healthy_after(Duration::from_secs(5))
            .max_attempts(Some(3));
        let mut b = Backoff::new(policy);
        assert!(!b.connection_ended(ms(10)));
        assert!(!b.connection_ended(ms(4999)));
        assert_eq!(b.failed_attempts(), 2);
        assert_eq!(b.delay_for(b.failed_attempts()), ms(200));
        assert!(!b.exhausted());
        b.record_failure();
        assert!(b.exhausted());
        assert!(b.connection_ended(Duration::from_secs(5)));
        assert_eq!(b.failed_attempts(), 0);
        assert_eq!(b.next_delay(), ms(50));
    }

    #[test]
    fn repeat_filter_says_it_once_then_counts() {
        let mut f = RepeatFilter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            f.check("lost 127.0.0.1:4222: bad op (12 bytes)", t0),
            Some(0)
        );
        for i in 0..1000 {
            let msg = format!("lost 127.0.0.1:4222: bad op ({i} bytes)");
            assert_eq!(f.check(&msg, t0 + ms(i)), None);
        }
        assert_eq!(f.check("another error", t0), Some(0));
        assert_eq!(f.suppressed().map(|(_, n)| n).sum::<u64>(), 1000);
        assert_eq!(
            f.check(
                "lost 127.0.0.1:4222: bad op (1 bytes)",
                t0 + Duration::from_secs(61)
            ),
            Some(1000)
        );
    }
}
