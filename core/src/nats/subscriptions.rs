//! The subscription table: fixed capacity chosen by the caller (`N`), sids
//! allocated monotonically and never reused (a late message for an old sid
//! can never be mistaken for a new subscription), and auto-unsubscribe
//! counted locally so the Nth message is the last one delivered even if the
//! server's UNSUB arrived late or the connection was re-established.

use heapless::{String, Vec};

use super::error::{Error, SubjectError};
use super::ids::PingId;
use super::subject::{validate_queue_group, validate_subscribe};

/// Longest subject a subscription stores.
pub const SUBJECT_CAPACITY: usize = 128;
/// Longest queue group name a subscription stores.
pub const QUEUE_CAPACITY: usize = 64;

pub use super::ids::Sid;

/// One live subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Its id.
    pub sid: Sid,
    /// Subject (may contain wildcards).
    pub subject: String<SUBJECT_CAPACITY>,
    /// Queue group, if any.
    pub queue: Option<String<QUEUE_CAPACITY>>,
    /// Total messages after which it ends (auto-unsubscribe), if set.
    pub max: Option<u64>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Set while draining: UNSUB was written, followed by this PING. The
    /// server answers PINGs in order and processes the UNSUB before it, so
    /// messages keep being delivered until the PONG to this PING; then the
    /// subscription ends.
    pub draining: Option<PingId>,
}

impl Subscription {
    /// Messages still to deliver before auto-unsubscribe (`None`: unlimited).
    pub fn remaining(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.delivered))
    }
}

/// What to do with a message that arrived for a sid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver it; `last` when it was the final one of an auto-unsubscribe
    /// (the subscription has been removed).
    Deliver {
        /// This message completed the subscription's `max`.
        last: bool,
    },
    /// No live subscription has this sid (unsubscribed, finished, or a
    /// stray message after auto-unsubscribe): drop it. It was counted.
    Drop,
}

/// Subscriptions of one session, at most `N`.
#[derive(Clone, Debug)]
pub struct SubscriptionTable<const N: usize> {
    subs: Vec<Subscription, N>,
    next_sid: u64,
    dropped: u64,
}

impl<const N: usize> Default for SubscriptionTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SubscriptionTable<N> {
    /// An empty table; the first sid is 1.
    pub const fn new() -> Self {
        SubscriptionTable {
            subs: Vec::new(),
            next_sid: 1,
            dropped: 0,
        }
    }

    /// Validates and stores a subscription; returns its new sid.
    pub fn insert(&mut self, subject: &str, queue: Option<&str>) -> Result<Sid, Error> {
        validate_subscribe(subject)?;
        let subject = to_bounded::<SUBJECT_CAPACITY>(subject)?;
        let queue = match queue {
            Some(q) => {
                validate_queue_group(q)?;
                Some(to_bounded::<QUEUE_CAPACITY>(q).map_err(|_| SubjectError::InvalidQueueGroup)?)
            }
            None => None,
        };
        let sid = Sid(self.next_sid);
        self.subs
            .push(Subscription {
                sid,
                subject,
                queue,
                max: None,
                delivered: 0,
                draining: None,
            })
            .map_err(|_| Error::SubscriptionTableFull { capacity: N })?;
        self.next_sid += 1;
        Ok(sid)
    }

    /// Removes a subscription.
    pub fn remove(&mut self, sid: Sid) -> Result<Subscription, Error> {
        let i = self.position(sid)?;
        Ok(self.subs.remove(i))
    }

    /// Sets the total number of messages after which `sid` ends. Returns
    /// true when that many were already delivered (the subscription was
    /// removed).
    pub fn set_max(&mut self, sid: Sid, max: u64) -> Result<bool, Error> {
        let i = self.position(sid)?;
        let sub = self
            .subs
            .get_mut(i)
            .ok_or(Error::UnknownSubscription(sid))?;
        sub.max = Some(max);
        if sub.delivered >= max {
            self.subs.remove(i);
            return Ok(true);
        }
        Ok(false)
    }

    /// Marks `sid` as draining until the PONG to `ping` (see
    /// [`Subscription::draining`]).
    pub fn mark_draining(&mut self, sid: Sid, ping: PingId) -> Result<(), Error> {
        let i = self.position(sid)?;
        if let Some(sub) = self.subs.get_mut(i) {
            sub.draining = Some(ping);
        }
        Ok(())
    }

    /// Removes one draining subscription whose PING is answered by a PONG
    /// to `answered` (PONGs answer PINGs in order) and returns its sid;
    /// `None` when there is none left. Call until `None`.
    pub fn finish_draining(&mut self, answered: PingId) -> Option<Sid> {
        let i = self
            .subs
            .iter()
            .position(|s| s.draining.is_some_and(|p| p <= answered))?;
        Some(self.subs.remove(i).sid)
    }

    /// Counts a message for `sid` and says whether to deliver it.
    pub fn on_message(&mut self, sid: Sid) -> Delivery {
        let Ok(i) = self.position(sid) else {
            self.dropped += 1;
            return Delivery::Drop;
        };
        let Some(sub) = self.subs.get_mut(i) else {
            return Delivery::Drop;
        };
        sub.delivered += 1;
        let last = sub.max.is_some_and(|m| sub.delivered >= m);
        if last {
            self.subs.remove(i);
        }
        Delivery::Deliver { last }
    }

    /// The subscription with this sid.
    pub fn get(&self, sid: Sid) -> Option<&Subscription> {
        self.subs.iter().find(|s| s.sid == sid)
    }

    /// Live subscriptions in creation order (for resubscribing).
    pub fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.subs.iter()
    }

    /// Number of live subscriptions.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// True when no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Maximum number of live subscriptions.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Messages dropped because no live subscription had their sid.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped
    }

    fn position(&self, sid: Sid) -> Result<usize, Error> {
        self.subs
            .iter()
            .position(|s| s.sid == sid)
            .ok_or(Error::UnknownSubscription(sid))
    }
}

fn to_bounded<const C: usize>(s: &str) -> Result<String<C>, SubjectError> {
    let mut out = String::new();
    out.push_str(s).map_err(|_| SubjectError::TooLong {
        len: s.len(),
        max: C,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_monotonic_and_never_reused() {
        let mut t = SubscriptionTable::<2>::new();
        let a = t.insert("a", None).unwrap();
        let b = t.insert("b", Some("q")).unwrap();
        assert_eq!((a, b), (Sid(1), Sid(2)));
        assert_eq!(
            t.insert("c", None),
            Err(Error::SubscriptionTableFull { capacity: 2 })
        );
        t.remove(a).unwrap();
        assert_eq!(t.insert("c", None).unwrap(), Sid(3));
        assert_eq!(t.remove(a), Err(Error::UnknownSubscription(a)));
        assert_eq!(t.get(b).unwrap().queue.as_deref(), Some("q"));
    }

    #[test]
    fn validation_happens_before_storing() {
        let mut t = SubscriptionTable::<2>::new();
        assert_eq!(
            t.insert("a..b", None),
            Err(Error::InvalidSubject(SubjectError::EmptyToken))
        );
        assert_eq!(
            t.insert("a", Some("bad queue")),
            Err(Error::InvalidSubject(SubjectError::InvalidQueueGroup))
        );
        let long = "x".repeat(SUBJECT_CAPACITY + 1);
        assert_eq!(
            t.insert(&long, None),
            Err(Error::InvalidSubject(SubjectError::TooLong {
                len: SUBJECT_CAPACITY + 1,
                max: SUBJECT_CAPACITY
            }))
        );
        assert!(t.is_empty());
    }

    #[test]
    fn auto_unsubscribe_delivers_exactly_n_then_drops_strays() {
        let mut t = SubscriptionTable::<4>::new();
        let sid = t.insert("a.>", None).unwrap();
        assert_eq!(t.set_max(sid, 3), Ok(false));
        assert_eq!(t.get(sid).unwrap().remaining(), Some(3));
        assert_eq!(t.on_message(sid), Delivery::Deliver { last: false });
        assert_eq!(t.get(sid).unwrap().remaining(), Some(2));
        assert_eq!(t.on_message(sid), Delivery::Deliver { last: false });
        assert_eq!(t.on_message(sid), Delivery::Deliver { last: true });
        assert_eq!(t.on_message(sid), Delivery::Drop);
        assert_eq!(t.on_message(sid), Delivery::Drop);
        assert_eq!(t.dropped_messages(), 2);
        assert!(t.get(sid).is_none());
    }

    #[test]
    fn max_already_reached_removes_at_once() {
        let mut t = SubscriptionTable::<4>::new();
        let sid = t.insert("a", None).unwrap();
        t.on_message(sid);
        t.on_message(sid);
        assert_eq!(t.set_max(sid, 2), Ok(true));
        assert!(t.is_empty());
    }

    #[test]
    fn draining_ends_only_when_its_ping_is_answered() {
        let mut t = SubscriptionTable::<4>::new();
        let a = t.insert("a", None).unwrap();
        let b = t.insert("b", None).unwrap();
        t.mark_draining(a, PingId(5)).unwrap();
        t.mark_draining(b, PingId(7)).unwrap();
        assert_eq!(t.on_message(a), Delivery::Deliver { last: false });
        assert_eq!(t.finish_draining(PingId(4)), None);
        assert_eq!(t.finish_draining(PingId(6)), Some(a));
        assert_eq!(t.finish_draining(PingId(6)), None);
        assert_eq!(t.on_message(a), Delivery::Drop);
        assert_eq!(t.on_message(b), Delivery::Deliver { last: false });
        assert_eq!(t.finish_draining(PingId(u64::MAX)), Some(b));
        assert!(t.is_empty());
        assert_eq!(
            t.mark_draining(a, PingId(9)),
            Err(Error::UnknownSubscription(a))
        );
    }
}
