//! Syscall and byte counters of the runtime on the current thread.
//!
//! Counted where the transport issues the operation, so they measure what
//! the benchmark wants (syscalls or ring submissions per message), not what
//! the application asked for. They are per thread because a courier runtime
//! is single-threaded; [`crate::Runtime::block_on`] starts them from zero.

use std::cell::Cell;

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Read operations issued: `read(2)` calls on epoll (including ones that
    /// found no data), read SQEs on io_uring.
    pub reads: u64,
    /// Write operations issued: `write(2)`/`writev(2)` calls on epoll, write
    /// or writev SQEs on io_uring, plus direct non-blocking `send(2)` calls
    /// ([`crate::transport::WriteHalf::try_write_now`]) on either.
    pub writes: u64,
    /// io_uring submission queue entries pushed (reads + writes + connects);
    /// zero on epoll. tokio-uring batches entries into one `io_uring_enter`
    /// per executor park, so this is an upper bound on enter calls.
    pub submissions: u64,
    /// Bytes received from sockets.
    pub bytes_read: u64,
    /// Bytes handed to sockets.
    pub bytes_written: u64,
    /// TCP connections opened (first connects and reconnects).
    pub connects: u64,
    /// Reads and writes that went through registered buffers
    /// (`READ_FIXED`/`WRITE_FIXED`, [`crate::Transport::UringFixedBuffers`]);
    /// also counted in `reads`/`writes`.
    pub fixed_buffer_ops: u64,
    /// Zero-copy sends (`SEND_ZC`/`SENDMSG_ZC`,
    /// [`crate::Transport::UringZeroCopySend`]); also counted in `writes`.
    pub zero_copy_sends: u64,
}

thread_local! {
    static COUNTERS: Cell<Stats> = const { Cell::new(Stats {
        reads: 0, writes: 0, submissions: 0, bytes_read: 0, bytes_written: 0, connects: 0,
        fixed_buffer_ops: 0, zero_copy_sends: 0,
    }) };
}

/// The counters of the runtime running on this thread.
pub fn stats() -> Stats {
    COUNTERS.with(|c| c.get())
}

pub(crate) fn reset() {
    COUNTERS.with(|c| c.set(Stats::default()));
}

pub(crate) fn record(update: impl FnOnce(&mut Stats)) {
    COUNTERS.with(|c| {
        let mut s = c.get();
        update(&mut s);
        c.set(s);
    });
}
