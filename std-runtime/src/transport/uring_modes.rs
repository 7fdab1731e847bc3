//! The io_uring variants beyond plain owned buffers: registered (fixed)
//! buffers and zero-copy send. A runtime is built with one of them; the
//! kernel may refuse it (buffer registration over `RLIMIT_MEMLOCK`,
//! `IORING_OP_SEND_ZC` unknown or unsupported by the socket), in which case
//! the runtime runs plain io_uring and says so once in the log.
//! [`current_transport`] reports what actually runs, for benchmark reports.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Once;

use bytes::Bytes;
use tokio_uring::buf::fixed::FixedBufPool;

use super::{uring_fixed, uring_zc};
use crate::runtime::Backend;

/// The transport a runtime actually drives: the backend plus, on io_uring,
/// how buffers are handed to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// tokio's epoll reactor.
    Epoll,
    /// io_uring with owned buffers lent to the kernel per operation.
    Uring,
    /// io_uring with buffers registered once per runtime
    /// (`IORING_OP_READ_FIXED` / `IORING_OP_WRITE_FIXED`).
    UringFixedBuffers,
    /// io_uring with zero-copy send (`IORING_OP_SEND_ZC`) for writes of at
    /// least [`ZERO_COPY_THRESHOLD`] bytes, plain writes below.
    UringZeroCopySend,
}

/// Writes at least this large go out with `IORING_OP_SEND_ZC` on
/// [`Transport::UringZeroCopySend`]; smaller ones are copied as usual.
///
/// Pinning pages and waiting for the kernel's release notification costs
/// more than copying small writes. Measured here (loopback, where the kernel
/// copies on delivery anyway, `examples/transport_modes.rs sweep` with
/// `COURIER_ZC_THRESHOLD=0`, best of 3): zero copy reached ~50% of plain
/// writes' throughput at 4-8 KiB, ~65-75% at 16-64 KiB and about par
/// (90-113%) at 256 KiB-1 MiB; the kernel documentation puts the break-even
/// on a real NIC around 10 KB. 64 KiB keeps the session's batches of small
/// messages on plain writes and sends the payloads the NATS client already
/// writes from where they lie (`publish_bytes`, 64 KiB and up) zero-copy.
/// `COURIER_ZC_THRESHOLD=<bytes>` overrides it, to tune for a given NIC.
pub const ZERO_COPY_THRESHOLD: usize = 64 * 1024;

/// Size of each registered buffer; a connection on
/// [`Transport::UringFixedBuffers`] holds one for receiving and one for
/// sending.
pub const FIXED_BUFFER_SIZE: usize = 128 * 1024;

/// Connections one runtime can run on registered buffers at once (later ones
/// use plain buffers and a warning says so). 16 pairs of 128 KiB lock 4 MiB,
/// under the common 8 MiB `RLIMIT_MEMLOCK`.
pub const FIXED_BUFFER_CONNECTIONS: usize = 16;

impl Transport {
    /// The kernel interface underneath.
    pub fn backend(self) -> Backend {
        match self {
            Transport::Epoll => Backend::Epoll,
            _ => Backend::Uring,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Epoll => "epoll",
            Transport::Uring => "io_uring",
            Transport::UringFixedBuffers => "io_uring+fixed-buffers",
            Transport::UringZeroCopySend => "io_uring+send-zc",
        })
    }
}

/// The transport state of one runtime: shared with the thread while the
/// runtime runs, so a refusal found mid-run (SEND_ZC failing on the first
/// real socket) changes what the runtime reports.
#[derive(Clone)]
pub(crate) struct UringModes {
    transport: Rc<Cell<Transport>>,
    pool: Option<FixedBufPool<Vec<u8>>>,
    /// A zero-copy send failed inside tokio-uring (see [`zero_copy_broke`]):
    /// the driver keeps an operation that never completes, so dropping the
    /// ring would wait forever.
    driver_poisoned: Rc<Cell<bool>>,
}

thread_local! {
    static ACTIVE: RefCell<Option<UringModes>> = const { RefCell::new(None) };
}

static FIXED_REFUSED_LOGGED: Once = Once::new();
static ZC_REFUSED_LOGGED: Once = Once::new();
static ZC_BROKE_LOGGED: Once = Once::new();

/// The transport of the runtime running on this thread, if any: which
/// backend and io_uring variant actually carries the bytes (after any
/// fallback), e.g. for a benchmark report.
pub fn current_transport() -> Option<Transport> {
    ACTIVE.with(|a| a.borrow().as_ref().map(|m| m.transport.get()))
}

impl UringModes {
    /// A runtime without io_uring variants (epoll, or plain io_uring).
    pub(crate) fn plain(transport: Transport) -> Self {
        UringModes {
            transport: Rc::new(Cell::new(transport)),
            pool: None,
            driver_poisoned: Rc::new(Cell::new(false)),
        }
    }

    /// Sets up `requested` on the io_uring runtime this runs in (call it
    /// inside its `block_on`): registers the buffer pool or proves SEND_ZC
    /// works on a loopback socket. A refusal gives plain io_uring, logged once.
    pub(crate) async fn setup(requested: Transport) -> Self {
        match requested {
            Transport::UringFixedBuffers => match register_pool() {
                Ok(pool) => UringModes {
                    pool: Some(pool),
                    ..Self::plain(requested)
                },
                Err(e) => {
                    FIXED_REFUSED_LOGGED.call_once(|| {
                        log::warn!(
                            "io_uring buffer registration refused ({e}); courier runs plain \
                             io_uring instead of registered buffers (raise RLIMIT_MEMLOCK, \
                             `ulimit -l`, to allow {} KiB)",
                            2 * FIXED_BUFFER_SIZE * FIXED_BUFFER_CONNECTIONS / 1024
                        )
                    });
                    Self::plain(Transport::Uring)
                }
            },
            Transport::UringZeroCopySend => {
                let modes = Self::plain(requested);
                // Entered, so a probe lost inside tokio-uring marks this
                // runtime's driver.
                let guard = modes.enter();
                if let Err(e) = uring_zc::probe().await {
                    log_zero_copy_refused(&e);
                    modes.transport.set(Transport::Uring);
                }
                drop(guard);
                modes
            }
            other => Self::plain(other),
        }
    }

    /// True when the io_uring driver holds an operation that will never
    /// complete (a zero-copy send that failed inside tokio-uring): the
    /// runtime must then be leaked instead of dropped, since tokio-uring's
    /// drop waits for every operation.
    pub(crate) fn driver_poisoned(&self) -> bool {
        self.driver_poisoned.get()
    }

    /// What this runtime drives now.
    pub(crate) fn transport(&self) -> Transport {
        self.transport.get()
    }

    /// Makes this the state of the runtime running on this thread until the
    /// guard drops (nested runtimes restore the outer one).
    pub(crate) fn enter(&self) -> EnterGuard {
        EnterGuard(ACTIVE.with(|a| a.replace(Some(self.clone()))))
    }
}

/// Restores the previous thread state on drop.
pub(crate) struct EnterGuard(Option<UringModes>);

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        ACTIVE.with(|a| *a.borrow_mut() = previous);
    }
}

fn register_pool() -> io::Result<FixedBufPool<Vec<u8>>> {
    // Zero-filled (not just reserved) so every byte is initialized and a
    // checked-out buffer can be written through `DerefMut` at any length.
    let pool = FixedBufPool::new(
        std::iter::repeat_with(|| vec![0u8; FIXED_BUFFER_SIZE]).take(2 * FIXED_BUFFER_CONNECTIONS),
    );
    pool.register()?;
    Ok(pool)
}

fn log_zero_copy_refused(e: &io::Error) {
    ZC_REFUSED_LOGGED.call_once(|| {
        log::warn!(
            "io_uring zero-copy send (IORING_OP_SEND_ZC) refused ({e}); courier sends with plain \
             io_uring writes instead (needs Linux 6.0+ and a TCP socket)"
        )
    });
}

/// SEND_ZC failed with an error that means "not supported here" (not a
/// broken connection): the runtime switches to plain writes for good.
pub(super) fn zero_copy_refused(e: &io::Error) {
    log_zero_copy_refused(e);
    ACTIVE.with(|a| {
        if let Some(m) = a.borrow().as_ref() {
            if m.transport.get() == Transport::UringZeroCopySend {
                m.transport.set(Transport::Uring);
            }
        }
    });
}

/// A zero-copy send failed inside tokio-uring 0.5, which unwraps the
/// error of a completion flagged "more" (the kernel reports a broken
/// connection that way) and loses track of the operation. The runtime stops
/// using SEND_ZC (plain writes from now on, so the loss happens once) and
/// remembers that its driver cannot be dropped cleanly.
pub(super) fn zero_copy_broke() {
    ZC_BROKE_LOGGED.call_once(|| {
        log::warn!(
            "a zero-copy send failed on a broken connection, which tokio-uring 0.5 cannot \
             report cleanly; courier uses plain io_uring writes for the rest of this runtime, \
             whose ring is leaked at drop instead of waiting forever for the lost operation"
        )
    });
    ACTIVE.with(|a| {
        if let Some(m) = a.borrow().as_ref() {
            m.driver_poisoned.set(true);
            if m.transport.get() == Transport::UringZeroCopySend {
                m.transport.set(Transport::Uring);
            }
        }
    });
}

/// True when errors of this kind mean the kernel or socket does not do
/// SEND_ZC at all.
pub(super) fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EINVAL | libc_errno::EOPNOTSUPP | libc_errno::ENOSYS)
    )
}

/// The errno values we test for (Linux, every architecture courier runs on).
mod libc_errno {
    pub const EINVAL: i32 = 22;
    pub const ENOSYS: i32 = 38;
    pub const EOPNOTSUPP: i32 = 95;
}

/// Which io_uring variant new connections of this thread's runtime use.
pub(super) fn active_variant() -> Option<Transport> {
    match current_transport() {
        Some(t @ (Transport::UringFixedBuffers | Transport::UringZeroCopySend)) => Some(t),
        _ => None,
    }
}

fn active_pool() -> Option<FixedBufPool<Vec<u8>>> {
    ACTIVE.with(|a| a.borrow().as_ref().and_then(|m| m.pool.clone()))
}

pub(super) enum ReadHalf {
    Fixed(uring_fixed::ReadHalf),
    ZeroCopy(uring_zc::ReadHalf),
}

pub(super) enum WriteHalf {
    Fixed(uring_fixed::WriteHalf),
    ZeroCopy(uring_zc::WriteHalf),
}

/// Connects with the variant of this thread's runtime (zero-copy send
/// unless registered buffers are active).
pub(super) async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    match (active_variant(), active_pool()) {
        (Some(Transport::UringFixedBuffers), Some(pool)) => {
            let (r, w) = uring_fixed::connect(addr, &pool).await?;
            Ok((ReadHalf::Fixed(r), WriteHalf::Fixed(w)))
        }
        _ => {
            let (r, w) = uring_zc::connect(addr).await?;
            Ok((ReadHalf::ZeroCopy(r), WriteHalf::ZeroCopy(w)))
        }
    }
}

impl ReadHalf {
    pub(super) async fn read(
        &mut self,
        storage: &mut Vec<u8>,
        spare: std::ops::Range<usize>,
    ) -> io::Result<usize> {
        match self {
            ReadHalf::Fixed(r) => r.read(storage, spare).await,
            ReadHalf::ZeroCopy(r) => r.read(storage, spare).await,
        }
    }
}

impl WriteHalf {
    pub(super) async fn write_all(&mut self, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            WriteHalf::Fixed(w) => w.write_all(data).await,
            WriteHalf::ZeroCopy(w) => w.write_all(data).await,
        }
    }

    pub(super) async fn write_vectored_all(
        &mut self,
        parts: Vec<Bytes>,
    ) -> (io::Result<()>, Vec<Bytes>) {
        match self {
            WriteHalf::Fixed(w) => w.write_vectored_all(parts).await,
            WriteHalf::ZeroCopy(w) => w.write_vectored_all(parts).await,
        }
    }

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Fixed(w) => w.shutdown(),
            WriteHalf::ZeroCopy(w) => w.shutdown(),
        }
    }
}
