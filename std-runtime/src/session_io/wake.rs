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

    /// Waits for the next [`Wakeups::room_made`] or
    /// [`Wakeups::state_changed`] sent after `arm` starts: registers with
    /// both signals, runs `arm` (typically [`Wakeups::wake_writer`]), then
    /// waits. Always waits for a signal, so a task that retries in a loop
    /// yields to the task that makes its progress (the writer).
    pub async fn signalled_after(&self, arm: impl FnOnce()) {
        let mut state = pin!(self.state.notified());
        let mut room = pin!(self.room.notified());
        state.as_mut().enable();
        room.as_mut().enable();
        arm();
        tokio::select! {
            _ = state => {}
            _ = room => {}
        }
    }

    /// Waits until `check` returns `Some`, looking again after every
    /// [`Wakeups::state_changed`] (and [`Wakeups::room_made`]); `None` when
    /// `deadline` passes first.
    ///
    /// `check` runs once before registering with the signals (the common
    /// case, a condition already true, costs no registration) and again
    /// after each registration, so it must report a condition, never count
    /// its calls: a check that answers `Some` on its second call would
    /// return without waiting (to wait for one signal, use
    /// [`Wakeups::signalled_after`]). A `Some` at once returns without
    /// yielding to the scheduler.
    pub async fn wait_until<R>(
        &self,
        deadline: Option<tokio::time::Instant>,
        mut check: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        // Most calls (a publish with room in the buffer) succeed at once:
        // registering with both Notify queues first cost ~500 instructions
        // per publish (callgrind). Only a failed check registers, then
        // checks again, so a wake-up between the two is never lost.
        if let Some(r) = check() {
            return Some(r);
        }
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
        assert_eq!(
            checks, 3,
            "once unregistered, once registered before waiting, once at the deadline"
        );
        assert!(tokio::time::Instant::now() >= deadline);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_immediate_answer_registers_nothing_and_calls_check_once() {
        let wake = Wakeups::new();
        let mut checks = 0;
        let got = wake
            .wait_until(None, || {
                checks += 1;
                Some(checks)
            })
            .await;
        assert_eq!(got, Some(1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn signalled_after_waits_for_a_signal_even_when_nothing_is_needed() {
        // The read loop's "blocked" wait: retrying without a real wait would
        // spin and never let the writer run (the fresh-clone hang of the
        // wait_until fast path, 037526b).
        let wake = Wakeups::new();
        let mut armed = 0;
        let waited = tokio::time::timeout(
            Duration::from_millis(30),
            wake.signalled_after(|| armed += 1),
        )
        .await;
        assert!(waited.is_err(), "no signal was sent: it must still wait");
        assert_eq!(armed, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn signalled_after_catches_a_signal_sent_while_arming() {
        let wake = Wakeups::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            wake.signalled_after(|| wake.room_made()),
        )
        .await
        .expect("registered before arm ran, so room_made is not lost");
        tokio::time::timeout(
            Duration::from_secs(5),
            wake.signalled_after(|| wake.state_changed()),
        )
        .await
        .expect("state_changed is not lost either");
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
