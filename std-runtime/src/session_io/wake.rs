//! The wake-ups of a connection: the writer's, "room was made in the
//! transmit buffer" and "the connection's state changed".
//!
//! Every wait here registers interest BEFORE it checks its condition, so a
//! signal sent between the check and the wait is not lost; nobody needs to
//! poll with a short `sleep`.

use std::future::Future;
use std::pin::pin;

use tokio::sync::Notify;

/// The signals one connection's tasks exchange.
#[derive(Debug, Default)]
pub struct Wakeups {
    writer: Notify,
    room: Notify,
    state: Notify,
}

impl Wakeups {
    /// Signals nobody has sent yet.
    pub fn new() -> Self {
        Wakeups::default()
    }

    /// Something was queued for the writer (or it must look at a flag):
    /// wakes it now or, when it is busy, at its next wait.
    pub fn wake_writer(&self) {
        self.writer.notify_one();
    }

    /// The writer's wait for [`Wakeups::wake_writer`].
    pub async fn writer_woken(&self) {
        self.writer.notified().await
    }

    /// The writer made room in the transmit buffer: wakes every task
    /// waiting in [`wait_for_room`](super::wait_for_room).
    pub fn room_made(&self) {
        self.room.notify_waiters();
    }

    /// The connection's state changed (connected, lost, closed, a message
    /// settled...): wakes every task waiting in [`Wakeups::wait_until`].
    pub fn state_changed(&self) {
        self.state.notify_waiters();
    }

    /// The connection is going away: wakes every waiter of every signal so
    /// each looks at the state again.
    pub fn wake_all(&self) {
        self.writer.notify_one();
        self.room.notify_waiters();
        self.state.notify_waiters();
    }

    /// Waits until `check` returns `Some`, looking again after every
    /// [`Wakeups::state_changed`] (and [`Wakeups::room_made`]); `None` when
    /// `deadline` passes first.
    pub async fn wait_until<R>(
        &self,
        deadline: Option<tokio::time::Instant>,
        mut check: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            let mut state = pin!(self.state.notified());
            let mut room = pin!(self.room.notified());
            state.as_mut().enable();
            room.as_mut().enable();
            if let Some(r) = check() {
                return Some(r);
            }
            let either = async {
                tokio::select! {
                    _ = state => {}
                    _ = room => {}
                }
            };
            if !until(deadline, either).await {
                return check();
            }
        }
    }
}

/// Runs `fut` until `deadline`; false when the deadline came first.
async fn until(deadline: Option<tokio::time::Instant>, fut: impl Future) -> bool {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn wait_until_wakes_on_a_state_change_without_polling() {
        let wake = Rc::new(Wakeups::new());
        let flag = Rc::new(Cell::new(false));
        let local = tokio::task::LocalSet::new();
        let (w, f) = (wake.clone(), flag.clone());
        let got = local
            .run_until(async move {
                tokio::task::spawn_local(async move {
                    tokio::task::yield_now().await;
                    f.set(true);
                    w.state_changed();
                });
                wake.wait_until(None, || flag.get().then_some(7)).await
            })
            .await;
        assert_eq!(got, Some(7));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wait_until_gives_up_at_the_deadline() {
        let wake = Wakeups::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(30);
        let mut checks = 0;
        let got: Option<()> = wake
            .wait_until(Some(deadline), || {
                checks += 1;
                None
            })
            .await;
        assert_eq!(got, None);
        assert_eq!(checks, 2, "once before waiting, once at the deadline");
        assert!(tokio::time::Instant::now() >= deadline);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_wake_before_the_wait_is_kept() {
        let wake = Wakeups::new();
        wake.wake_writer();
        tokio::time::timeout(Duration::from_secs(5), wake.writer_woken())
            .await
            .expect("the stored permit wakes the writer");
    }
}
