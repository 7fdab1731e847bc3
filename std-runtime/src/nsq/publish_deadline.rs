//! The producer's one publish timer: each publish in flight carries its
//! deadline in its pending `Slot` (see `producer.rs`); one watcher task per producer sleeps
//! until the earliest armed deadline and answers [`Error::TimedOut`] to the
//! publishes whose deadline passed, so a publish answered in time registers
//! no timer of its own.

use std::future::Future;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::producer::Inner;
use super::Error;

/// Makes the producer's deadline watcher wake by `deadline` (spawning it
/// on first use). Cheap when it already wakes earlier: one comparison.
pub(super) fn arm_deadline(inner: &Rc<Inner>, deadline: Instant) {
    let mut st = inner.state.borrow_mut();
    if st.watch.is_some_and(|armed| armed <= deadline) {
        return;
    }
    st.watch = Some(deadline);
    if !st.watcher_running {
        st.watcher_running = true;
        drop(st);
        crate::spawn(watch_deadlines(Rc::downgrade(inner)));
    } else if let Some(watcher) = st.watcher.take() {
        drop(st);
        watcher.wake();
    }
}

/// The producer's one publish timer: sleeps until the earliest deadline it
/// was armed with, then answers [`Error::TimedOut`] to every unanswered
/// publish whose deadline passed and re-arms for the earliest one left.
/// Publishes answered in time cost it nothing; it wakes about once per
/// `publish_timeout` while publishes flow. Ends when the producer is
/// dropped.
async fn watch_deadlines(inner: Weak<Inner>) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    let mut sleep = std::pin::pin!(sleep);
    let mut armed: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        let Some(inner) = inner.upgrade() else {
            return Poll::Ready(());
        };
        loop {
            let mut st = inner.state.borrow_mut();
            st.watcher = Some(cx.waker().clone());
            let Some(due) = st.watch else {
                return Poll::Pending;
            };
            drop(st);
            let now = Instant::now();
            if due > now {
                if armed != Some(due) {
                    sleep.as_mut().reset(due);
                    armed = Some(due);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            armed = None;
            let now = now.max(due);
            let after = inner.config.publish_timeout;
            let mut st = inner.state.borrow_mut();
            let mut next: Option<Instant> = None;
            let mut wakers = Vec::new();
            for slot in st.pending.values_mut() {
                if slot.answer.is_some() {
                    continue;
                }
                if slot.deadline <= now {
                    slot.answer = Some(Err(Error::TimedOut {
                        operation: "publish",
                        after,
                    }));
                    wakers.extend(slot.waker.take());
                } else {
                    next = Some(next.map_or(slot.deadline, |n| n.min(slot.deadline)));
                }
            }
            st.watch = next;
            drop(st);
            if !wakers.is_empty() {
                wakers.into_iter().for_each(Waker::wake);
                // `stop` waits for the last unanswered publish.
                inner.changed.notify_waiters();
            }
        }
    })
    .await
}
