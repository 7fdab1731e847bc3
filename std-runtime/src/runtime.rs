//! The executor: tokio-uring when the kernel lets us use io_uring, a tokio
//! current-thread runtime (epoll) otherwise, with the same API on top.
//!
//! Both executors are single-threaded: every courier task of one runtime runs
//! on the thread that called [`run`] / [`Runtime::block_on`], which is what
//! lets the client share its buffers through `Rc<RefCell<..>>` instead of
//! locks. Run one runtime per core to scale out.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

use crate::transport::UringModes;

/// Environment variable that forces a backend: `epoll`, `uring` or `auto`,
/// or an io_uring variant: `uring-fixed` (registered buffers), `uring-zc`
/// (zero-copy send).
pub const TRANSPORT_ENV: &str = "COURIER_TRANSPORT";

/// Which kernel interface carries the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// io_uring through tokio-uring: owned buffers, batched submissions.
    Uring,
    /// Readiness-based IO through tokio's epoll reactor.
    Epoll,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
        })
    }
}

/// What the caller asked for: a specific backend or the best one available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendChoice {
    /// io_uring if the kernel allows it, epoll otherwise (logged once).
    #[default]
    Auto,
    /// io_uring or an error (no silent fallback).
    Uring,
    /// epoll, even where io_uring works.
    Epoll,
    /// io_uring (or an error) with registered buffers; plain io_uring,
    /// logged once, when the kernel refuses the registration.
    UringFixed,
    /// io_uring (or an error) with zero-copy send for large writes; plain
    /// io_uring, logged once, when the kernel refuses `SEND_ZC`.
    UringZeroCopy,
}

/// A `COURIER_TRANSPORT` value that is none of `epoll`, `uring`, `auto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown transport backend {:?}: use \"epoll\", \"uring\", \"uring-fixed\", \
             \"uring-zc\" or \"auto\"",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for BackendChoice {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(BackendChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(BackendChoice::Uring),
            "epoll" => Ok(BackendChoice::Epoll),
            "uring-fixed" | "uring_fixed" | "io_uring-fixed" => Ok(BackendChoice::UringFixed),
            "uring-zc" | "uring_zc" | "io_uring-zc" => Ok(BackendChoice::UringZeroCopy),
            _ => Err(UnknownBackend(s.to_string())),
        }
    }
}

impl BackendChoice {
    /// Reads [`TRANSPORT_ENV`]; unset means [`BackendChoice::Auto`].
    pub fn from_env() -> Result<Self, UnknownBackend> {
        match std::env::var(TRANSPORT_ENV) {
            Ok(v) => v.parse(),
            Err(_) => Ok(BackendChoice::Auto),
        }
    }
}

thread_local! {
    static CURRENT_BACKEND: Cell<Option<Backend>> = const { Cell::new(None) };
}

/// The backend of the runtime running on this thread, if any.
///
/// The transport uses it to open sockets of the right kind.
pub fn current_backend() -> Option<Backend> {
    CURRENT_BACKEND.with(|b| b.get())
}

static FALLBACK_LOGGED: Once = Once::new();

enum Executor {
    /// courier's tasks run in the `LocalSet` (see [`RepollWhenWoken`]); it is
    /// declared first so it drops first, while the ring still exists (the
    /// order tokio-uring uses for its own).
    Uring(tokio::task::LocalSet, tokio_uring::Runtime),
    Epoll {
        runtime: tokio::runtime::Runtime,
        local: tokio::task::LocalSet,
    },
}

/// A single-threaded courier runtime: build one, then [`Runtime::block_on`]
/// your async body. [`run`] does both with the defaults.
pub struct Runtime {
    /// `None` only once dropped (see the `Drop` impl).
    executor: Option<Executor>,
    backend: Backend,
    modes: UringModes,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.modes.driver_poisoned() {
            // tokio-uring's drop would wait for an operation it lost track
            // of (see transport::uring_zc); leak the ring and its fds.
            std::mem::forget(self.executor.take());
        }
    }
}

/// Chooses the backend and io_uring queue depth before starting.
#[derive(Clone, Debug)]
pub struct Builder {
    choice: Option<BackendChoice>,
    uring_entries: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            choice: None,
            uring_entries: 256,
        }
    }
}

impl Builder {
    /// Defaults: backend from [`TRANSPORT_ENV`] (auto when unset), 256 ring entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forces a backend; overrides [`TRANSPORT_ENV`].
    pub fn backend(mut self, choice: BackendChoice) -> Self {
        self.choice = Some(choice);
        self
    }

    /// Submission queue size of the io_uring (ignored on epoll).
    pub fn uring_entries(mut self, entries: u32) -> Self {
        self.uring_entries = entries.max(1);
        self
    }

    /// Starts the executor on this thread.
    ///
    /// With [`BackendChoice::Auto`], a refused io_uring (seccomp's EPERM,
    /// ENOSYS on old kernels, `kernel.io_uring_disabled`) falls back to epoll
    /// and logs a warning once per process. With [`BackendChoice::Uring`] the
    /// refusal is returned as the error.
    pub fn build(self) -> io::Result<Runtime> {
        let choice = match self.choice {
            Some(c) => c,
            None => BackendChoice::from_env()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        };
        match choice {
            BackendChoice::Epoll => Runtime::epoll(),
            BackendChoice::Uring => Runtime::uring(self.uring_entries),
            BackendChoice::UringFixed => Runtime::uring(self.uring_entries)?
                .with_variant(crate::Transport::UringFixedBuffers),
            BackendChoice::UringZeroCopy => Runtime::uring(self.uring_entries)?
                .with_variant(crate::Transport::UringZeroCopySend),
            BackendChoice::Auto => match Runtime::uring(self.uring_entries) {
                Ok(rt) => Ok(rt),
                Err(e) => {
                    FALLBACK_LOGGED.call_once(|| {
                        log::warn!(
                            "io_uring is not usable here ({e}); courier falls back to epoll. \
                             Set {TRANSPORT_ENV}=epoll to skip the probe."
                        )
                    });
                    Runtime::epoll()
                }
            },
        }
    }
}

impl Runtime {
    /// A runtime with the default [`Builder`] settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Starts a [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn epoll() -> io::Result<Runtime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Runtime {
            executor: Some(Executor::Epoll {
                runtime,
                local: tokio::task::LocalSet::new(),
            }),
            backend: Backend::Epoll,
            modes: UringModes::plain(crate::Transport::Epoll),
        })
    }

    /// Creates a tokio-uring runtime and proves the ring works by completing
    /// one NOP: some sandboxes allow `io_uring_setup` but refuse
    /// `io_uring_enter`, which only shows once something is submitted.
    fn uring(entries: u32) -> io::Result<Runtime> {
        let runtime = std::panic::catch_unwind(|| {
            let rt = tokio_uring::Runtime::new(tokio_uring::builder().entries(entries))?;
            rt.block_on(tokio_uring::no_op())?;
            Ok::<_, io::Error>(rt)
        })
        .map_err(|_| io::Error::other("io_uring probe panicked"))??;
        Ok(Runtime {
            executor: Some(Executor::Uring(tokio::task::LocalSet::new(), runtime)),
            backend: Backend::Uring,
            modes: UringModes::plain(crate::Transport::Uring),
        })
    }

    /// Sets up registered buffers or zero-copy send on this io_uring
    /// runtime; what the kernel refuses stays plain (logged once).
    fn with_variant(mut self, requested: crate::Transport) -> io::Result<Runtime> {
        if let Some(Executor::Uring(_, rt)) = &self.executor {
            let modes = rt.block_on(UringModes::setup(requested));
            self.modes = modes;
        }
        Ok(self)
    }

    /// What this runtime drives: the backend and, on io_uring, the buffer
    /// variant that actually runs (after any fallback).
    pub fn transport(&self) -> crate::Transport {
        self.modes.transport()
    }

    /// The backend this runtime drives.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `future` to completion on this thread. Tasks it spawns with
    /// [`spawn`] run alongside it. Syscall counters ([`crate::stats()`]) start
    /// from zero.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        struct Reset(Option<Backend>);
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT_BACKEND.with(|b| b.set(self.0));
            }
        }
        let _reset = Reset(CURRENT_BACKEND.with(|b| b.replace(Some(self.backend))));
        let _modes = self.modes.enter();
        crate::stats::reset();
        match &self.executor {
            Some(Executor::Uring(local, rt)) => {
                let body = std::pin::pin!(local.run_until(future));
                rt.block_on(RepollWhenWoken::new(body))
            }
            Some(Executor::Epoll { runtime, local }) => {
                let body = std::pin::pin!(local.run_until(future));
                runtime.block_on(RepollWhenWoken::new(body))
            }
            None => unreachable!("the executor is only taken while dropping"),
        }
    }
}

/// Runs `future` on a new runtime chosen by [`Builder::new`] (io_uring when
/// usable, else epoll; [`TRANSPORT_ENV`] forces one).
///
/// # Panics
/// When no runtime can be created at all (epoll failing too) or when
/// `COURIER_TRANSPORT` holds an unknown value; use [`Builder::build`] to
/// handle those as errors.
pub fn run<F: Future>(future: F) -> F::Output {
    let rt = Runtime::new().unwrap_or_else(|e| panic!("courier: cannot start a runtime: {e}"));
    rt.block_on(future)
}

/// Spawns a task on the current courier runtime (any backend).
///
/// Tasks need not be `Send`: everything runs on the runtime's thread.
///
/// # Panics
/// Outside a courier runtime (or any tokio `LocalSet`).
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(future)
}

/// How many times in a row [`RepollWhenWoken`] polls its future again
/// before it lets the runtime poll its IO driver: bounds how long the
/// sockets go unpolled (each poll runs at most one `LocalSet` tick).
const MAX_REPOLLS: usize = 3;

/// Polls the root future (on epoll: `LocalSet::run_until(body)`) again at
/// once when it was woken while being polled, instead of returning
/// `Pending` and letting tokio see a woken `block_on` future.
///
/// Why: a task spawned in the `LocalSet` (a connection's reader) that
/// wakes the `block_on` body (a publisher waiting for its answer) runs
/// inside the body's poll, so without this tokio's current-thread
/// scheduler finds the `block_on` future woken with no task of its own
/// queued and polls the IO driver with a zero timeout (`epoll_wait(.., 0)`,
/// tokio's `park_yield`) before polling the body again: one syscall per
/// request/response round trip (strace of `courier-bench worker --scenario
/// nsq-publish --batch 1 --transport epoll`: sendto, epoll_wait,
/// recvfrom, epoll_wait(0)). Polling again right away skips it; the
/// driver is still polled after at most [`MAX_REPOLLS`] extra polls, and
/// every wake that comes while the future is not being polled (the IO
/// driver, other threads, timers) goes straight to the runtime's waker as
/// before (wakes before the next poll coalesce). A wake is never lost:
/// it is either seen by the polling loop (state `WOKEN`) or forwarded.
/// `scripts/nsq_syscalls.sh` checks the count (3 per round trip on epoll).
///
/// On io_uring, tokio-uring's own `LocalSet` ticks its tasks after the
/// future it is given, so a task's wake would always arrive between polls:
/// there courier's tasks run in a `LocalSet` of ours nested inside it, under
/// this wrapper (NSQ PUB on io_uring: 5 -> 4 syscalls per round trip; NSQ
/// consume 100k: 1990 -> 815 syscalls; NATS publish unchanged; strace
/// counts in /work/notes/issue-9-nsq.md).
struct RepollWhenWoken<F> {
    future: F,
    shared: Arc<RootWake>,
    /// The waker handed to the future (one allocation, stable, so
    /// `will_wake` comparisons in the future keep working).
    waker: Waker,
}

/// Not being polled: wakes go to the runtime's waker.
const IDLE: u8 = 0;
/// Being polled: a wake is recorded and the poll loop polls again.
const POLLING: u8 = 1;
/// Woken while being polled.
const WOKEN: u8 = 2;

struct RootWake {
    state: AtomicU8,
    /// The runtime's waker for the root future.
    outer: AtomicWaker,
}

impl Wake for RootWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // The poll loop sees it when the current poll returns.
            Ok(_) | Err(WOKEN) => {}
            // Not being polled: the runtime must poll the root again.
            Err(_) => self.outer.wake(),
        }
    }
}

impl<F: Future + Unpin> RepollWhenWoken<F> {
    fn new(future: F) -> Self {
        let shared = Arc::new(RootWake {
            state: AtomicU8::new(IDLE),
            outer: AtomicWaker::new(),
        });
        RepollWhenWoken {
            future,
            waker: Waker::from(shared.clone()),
            shared,
        }
    }
}

impl<F: Future + Unpin> Future for RepollWhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before polling, so a wake forwarded from another
        // thread during the poll reaches the current waker.
        this.shared.outer.register(cx.waker());
        let mut inner = Context::from_waker(&this.waker);
        let mut repolls = 0;
        loop {
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(out) = Pin::new(&mut this.future).poll(&mut inner) {
                this.shared.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
            if this
                .shared
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
            // Woken during the poll.
            if repolls == MAX_REPOLLS {
                this.shared.state.store(IDLE, Ordering::Release);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            repolls += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wakes the runtime would get.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A future that wakes its own waker on the polls listed in `wake_on`
    /// (0-based) and is ready on poll `ready_on`; records its waker.
    struct Script {
        polls: usize,
        wake_on: Vec<usize>,
        ready_on: usize,
        waker: Rc<RefCell<Option<Waker>>>,
    }

    impl Future for Script {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            let n = self.polls;
            self.polls += 1;
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            if n == self.ready_on {
                return Poll::Ready(n);
            }
            if self.wake_on.contains(&n) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    fn script(wake_on: Vec<usize>, ready_on: usize) -> (Script, Rc<RefCell<Option<Waker>>>) {
        let waker = Rc::new(RefCell::new(None));
        let s = Script {
            polls: 0,
            wake_on,
            ready_on,
            waker: waker.clone(),
        };
        (s, waker)
    }

    #[test]
    fn a_wake_during_the_poll_polls_again_without_waking_the_runtime() {
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let outer_waker = Waker::from(outer.clone());
        let mut cx = Context::from_waker(&outer_waker);
        // Woken on its first poll, ready on the second: one runtime poll.
        let (s, _) = script(vec![0], 1);
        let mut f = RepollWhenWoken::new(s);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(1));
        assert_eq!(outer.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_wake_between_polls_goes_to_the_runtime() {
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let outer_waker = Waker::from(outer.clone());
        let mut cx = Context::from_waker(&outer_waker);
        let (s, inner) = script(vec![], 2);
        let mut f = RepollWhenWoken::new(s);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Pending);
        assert_eq!(outer.0.load(Ordering::SeqCst), 0);
        let waker = inner.borrow_mut().take().expect("polled");
        waker.wake_by_ref();
        assert_eq!(outer.0.load(Ordering::SeqCst), 1);
        // A second wake before the runtime polled again coalesces with the
        // first (the poll it asked for is still to come).
        waker.wake_by_ref();
        assert_eq!(outer.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Pending);
        assert_eq!(f.future.polls, 2);
        // From another thread (a waker may be sent anywhere).
        std::thread::spawn(move || waker.wake()).join().unwrap();
        assert_eq!(outer.0.load(Ordering::SeqCst), 2);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(2));
    }

    #[test]
    fn a_future_that_keeps_waking_itself_lets_the_runtime_run_between() {
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let outer_waker = Waker::from(outer.clone());
        let mut cx = Context::from_waker(&outer_waker);
        let (s, _) = script((0..100).collect(), 100);
        let mut f = RepollWhenWoken::new(s);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Pending);
        // 1 + MAX_REPOLLS polls, then the wake is handed to the runtime
        // (which polls its IO driver before polling again).
        assert_eq!(f.future.polls, 1 + MAX_REPOLLS);
        assert_eq!(outer.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Pending);
        assert_eq!(f.future.polls, 2 * (1 + MAX_REPOLLS));
        assert_eq!(outer.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_epoll_runtime_runs_a_body_woken_by_its_spawned_tasks() {
        let rt = Builder::new()
            .backend(BackendChoice::Epoll)
            .build()
            .unwrap();
        assert_eq!(ping_pong(&rt), 10_000);
    }

    #[test]
    fn the_uring_runtime_runs_a_body_woken_by_its_spawned_tasks() {
        let Ok(rt) = Builder::new().backend(BackendChoice::Uring).build() else {
            eprintln!("io_uring not usable here: skipped");
            return;
        };
        assert_eq!(ping_pong(&rt), 10_000);
        // Tasks spawned by one block_on still run in the next.
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        // The handle is awaited in the next block_on, on purpose.
        #[allow(clippy::async_yields_async)]
        let waiter = rt.block_on(async { spawn(async move { rx.await.unwrap() + 1 }) });
        let got = rt.block_on(async move {
            tx.send(41).unwrap();
            waiter.await.unwrap()
        });
        assert_eq!(got, 42);
    }

    /// A ping-pong between the block_on body and a spawned task: every
    /// round the task wakes the body from inside the body's poll.
    fn ping_pong(rt: &Runtime) -> u32 {
        rt.block_on(async {
            let (to_task, mut task_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let (to_body, mut body_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            spawn(async move {
                while let Some(n) = task_rx.recv().await {
                    to_body.send(n + 1).unwrap();
                }
            });
            let mut n = 0;
            for _ in 0..10_000 {
                to_task.send(n).unwrap();
                n = body_rx.recv().await.unwrap();
            }
            n
        })
    }
}
