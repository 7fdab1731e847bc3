//! The one clock of a client: core `Instant`s are milliseconds since the
//! client's epoch, and core deadlines become tokio deadlines exactly (no
//! drift from reading two clocks).

use std::time::Duration;

use courier_core::time::Instant as CoreInstant;

/// Milliseconds since an epoch taken when the client was created.
///
/// `Copy`: every connection and task of one client holds the same epoch,
/// so the instants they give the core (session timers, the NSQ RDY
/// controller's windows) compare with each other.
///
/// ```
/// use courier::session_io::Clock;
/// let clock = Clock::new();
/// let t = clock.now();
/// assert!(clock.now() >= t);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// The core's current instant.
    pub fn now(&self) -> CoreInstant {
        CoreInstant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// The tokio deadline of the core instant `at`.
    pub fn deadline(&self, at: CoreInstant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_millis(at.as_millis()))
    }

    /// Sleeps until the core deadline `at`, or forever when there is none
    /// (a session's `poll_timeout()` returned `None`): the body of every
    /// connection's timer loop.
    pub async fn sleep_until(&self, at: Option<CoreInstant>) {
        match at {
            Some(at) => tokio::time::sleep_until(self.deadline(at)).await,
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_epoch_plus_the_instant() {
        let clock = Clock::new();
        let at = CoreInstant::from_millis(1500);
        let expected = tokio::time::Instant::from_std(clock.epoch) + Duration::from_millis(1500);
        assert_eq!(clock.deadline(at), expected);
    }

    #[test]
    fn copies_share_the_epoch() {
        let a = Clock::new();
        let b = a;
        std::thread::sleep(Duration::from_millis(3));
        let (ta, tb) = (a.now(), b.now());
        assert!(ta.as_millis() >= 3);
        assert!(tb.as_millis().abs_diff(ta.as_millis()) <= 1);
    }
}
