//! TCP transport with one API over two backends: io_uring (tokio-uring,
//! owned buffers) and epoll (tokio).
//!
//! The API is shaped by io_uring: the kernel owns a buffer while an
//! operation is in flight, so reads go into a [`ReadBuffer`] the transport
//! lends to the kernel and gets back, and writes take an owned `Vec<u8>`
//! (or `Bytes` parts) and return it for reuse. The epoll backend follows the
//! same shape so the client above is written once.
//!
//! A connection is split into a [`ReadHalf`] and a [`WriteHalf`] so one task
//! can read while another writes.
//!
//! Cancellation: on io_uring, dropping a read or write future cancels the
//! operation but bytes the kernel already moved are lost with it. Callers
//! must await reads and writes to completion (courier's connection task
//! never races them in a `select!`); dropping is only fine when the
//! connection is being torn down anyway.

mod epoll;
mod uring;
mod uring_fixed;
mod uring_modes;
mod uring_zc;

pub(crate) use uring_modes::UringModes;
pub use uring_modes::{
    current_transport, Transport, FIXED_BUFFER_CONNECTIONS, FIXED_BUFFER_SIZE, ZERO_COPY_THRESHOLD,
};

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use courier_core::buf::RxBuf;

use crate::runtime::{current_backend, Backend};

/// A receive buffer the transport can lend to the kernel.
///
/// Holds received bytes in `data()`; reads append at the end, the parser
/// [`consume`](ReadBuffer::consume)s whole frames from the front. It never
/// grows: its capacity is the largest frame it can hold.
///
/// The bookkeeping is the core's [`RxBuf`] (one receive buffer for the
/// sans-IO drivers and the runtime); this adds what an io_uring read needs:
/// the storage is taken out for the read and put back, and a read that was
/// cancelled (storage never returned) is noticed and replaced.
pub struct ReadBuffer {
    rx: RxBuf<Vec<u8>>,
    capacity: usize,
}

impl std::fmt::Debug for ReadBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBuffer")
            .field("held", &self.rx.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl ReadBuffer {
    /// A zero-filled buffer of `capacity` bytes (allocated once).
    pub fn new(capacity: usize) -> Self {
        ReadBuffer {
            rx: RxBuf::new(vec![0; capacity]),
            capacity,
        }
    }

    /// Largest number of bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Received bytes not yet consumed.
    pub fn data(&self) -> &[u8] {
        self.rx.data()
    }

    /// Number of bytes not yet consumed.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Drops `n` parsed bytes from the front (clamped).
    pub fn consume(&mut self, n: usize) {
        self.rx.consume(n);
    }

    /// Forgets every held byte (new connection).
    pub fn clear(&mut self) {
        self.rx.clear();
    }

    /// True when the buffer is full of unconsumed bytes: the frame being
    /// received is larger than the capacity.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity
    }

    /// Copies as much of `data` as fits after the held bytes (decrypted
    /// TLS records); returns how many bytes were taken.
    pub fn append(&mut self, data: &[u8]) -> usize {
        let spare = self.prepare_spare();
        let n = data.len().min(spare.len());
        if let (Some(dst), Some(src)) = (
            self.rx.storage_mut().get_mut(spare.start..spare.start + n),
            data.get(..n),
        ) {
            dst.copy_from_slice(src);
        }
        self.rx.fill(n);
        n
    }

    /// Makes the spare room contiguous at the end and returns its range.
    fn prepare_spare(&mut self) -> std::ops::Range<usize> {
        if self.rx.capacity() != self.capacity {
            // A cancelled io_uring read kept the old storage; start afresh.
            *self.rx.storage_mut() = vec![0; self.capacity];
            self.rx.clear();
        }
        // Compact before the spare room gets small (not only when it is
        // gone), so reads stay large; the bytes moved are usually just the
        // tail of one partial frame.
        self.rx.spare_range((self.capacity / 4).max(1))
    }
}

enum ReadInner {
    Uring(uring::ReadHalf),
    Epoll(epoll::ReadHalf),
    /// Registered buffers or zero-copy send (see [`Transport`]).
    UringVariant(uring_modes::ReadHalf),
}

enum WriteInner {
    Uring(uring::WriteHalf),
    Epoll(epoll::WriteHalf),
    UringVariant(uring_modes::WriteHalf),
}

/// Receiving side of a TCP connection.
pub struct ReadHalf(ReadInner);

/// Sending side of a TCP connection.
pub struct WriteHalf(WriteInner);

/// Opens a TCP connection (TCP_NODELAY set) with the backend of the current
/// courier runtime, or epoll outside one (a plain tokio runtime).
pub async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    crate::stats::record(|s| s.connects += 1);
    match current_backend() {
        Some(Backend::Uring) if uring_modes::active_variant().is_some() => {
            let (r, w) = uring_modes::connect(addr).await?;
            Ok((
                ReadHalf(ReadInner::UringVariant(r)),
                WriteHalf(WriteInner::UringVariant(w)),
            ))
        }
        Some(Backend::Uring) => {
            let (r, w) = uring::connect(addr).await?;
            Ok((
                ReadHalf(ReadInner::Uring(r)),
                WriteHalf(WriteInner::Uring(w)),
            ))
        }
        _ => {
            let (r, w) = epoll::connect(addr).await?;
            Ok((
                ReadHalf(ReadInner::Epoll(r)),
                WriteHalf(WriteInner::Epoll(w)),
            ))
        }
    }
}

/// Opens a TCP connection (TCP_NODELAY set) on tokio's epoll reactor, which
/// both courier runtimes run, even on an io_uring runtime.
///
/// For a connection that waits for an answer to each write (request and
/// response, one at a time): an io_uring read that finds no data yet
/// completes through task work that interrupts the sleeping thread (its
/// `epoll_wait` returns `EINTR`, then the executor enters the ring and waits
/// again), about two syscalls more per round trip than a readiness wake-up
/// followed by one `recv`.
pub async fn connect_readiness(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    crate::stats::record(|s| s.connects += 1);
    let (r, w) = epoll::connect(addr).await?;
    Ok((
        ReadHalf(ReadInner::Epoll(r)),
        WriteHalf(WriteInner::Epoll(w)),
    ))
}

impl ReadHalf {
    /// Which backend carries this connection.
    pub fn backend(&self) -> Backend {
        match self.0 {
            ReadInner::Uring(_) | ReadInner::UringVariant(_) => Backend::Uring,
            ReadInner::Epoll(_) => Backend::Epoll,
        }
    }

    /// Reads once into the spare room of `buf`; `Ok(0)` is end of stream.
    ///
    /// Fails with `InvalidData` when `buf` is full of unconsumed bytes (the
    /// frame is larger than the buffer), instead of reporting a false EOF.
    pub async fn read(&mut self, buf: &mut ReadBuffer) -> io::Result<usize> {
        let spare = buf.prepare_spare();
        if spare.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "receive buffer full: a frame is larger than {} bytes",
                    buf.capacity
                ),
            ));
        }
        let storage = buf.rx.storage_mut();
        let n = match &mut self.0 {
            ReadInner::Uring(r) => r.read(storage, spare).await?,
            ReadInner::Epoll(r) => r.read(storage.get_mut(spare).unwrap_or(&mut [])).await?,
            ReadInner::UringVariant(r) => r.read(storage, spare).await?,
        };
        buf.rx.fill(n);
        crate::stats::record(|s| s.bytes_read += n as u64);
        Ok(n)
    }
}

impl WriteHalf {
    /// Writes every byte of `data` and hands the buffer back for reuse (its
    /// contents are unchanged; clear it yourself).
    pub async fn write_all(&mut self, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let len = data.len() as u64;
        let (res, data) = match &mut self.0 {
            WriteInner::Uring(w) => w.write_all(data).await,
            WriteInner::Epoll(w) => {
                let res = w.write_all(&data).await;
                (res, data)
            }
            WriteInner::UringVariant(w) => w.write_all(data).await,
        };
        if res.is_ok() {
            crate::stats::record(|s| s.bytes_written += len);
        }
        (res, data)
    }

    /// Writes every part in order with vectored writes (`writev`), so a
    /// large payload is sent from where it lies instead of being copied next
    /// to its header. Returns `parts` emptied, to reuse its allocation.
    pub async fn write_vectored_all(&mut self, parts: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let (res, parts) = match &mut self.0 {
            WriteInner::Uring(w) => w.write_vectored_all(parts).await,
            WriteInner::Epoll(w) => w.write_vectored_all(parts).await,
            WriteInner::UringVariant(w) => w.write_vectored_all(parts).await,
        };
        if res.is_ok() {
            crate::stats::record(|s| s.bytes_written += len);
        }
        (res, parts)
    }

    /// One non-blocking write attempt right now, from the caller's task, with
    /// no submission and no wait: returns how many leading bytes of `data`
    /// the kernel took (all of them when the socket buffer has room), or an
    /// error of kind `WouldBlock` when it took none or this transport has no
    /// direct path (the registered-buffer and zero-copy io_uring variants).
    ///
    /// For latency-bound request/response traffic: a command written here
    /// skips the writer task's wake-up and, on io_uring, a write SQE and its
    /// completion. Never call it while a [`WriteHalf::write_all`] on the same
    /// half may be in flight (bytes would interleave): the `&mut self`
    /// receiver makes that a borrow error for one owner.
    pub fn try_write_now(&mut self, data: &[u8]) -> io::Result<usize> {
        let res = match &mut self.0 {
            WriteInner::Uring(w) => w.try_write_now(data),
            WriteInner::Epoll(w) => w.try_write_now(data),
            WriteInner::UringVariant(_) => Err(io::ErrorKind::WouldBlock.into()),
        };
        if let Ok(n) = res {
            crate::stats::record(|s| s.bytes_written += n as u64);
        }
        res
    }

    /// Closes the sending direction (the peer reads end of stream).
    pub fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.0 {
            WriteInner::Uring(w) => w.shutdown(),
            WriteInner::Epoll(w) => w.shutdown(),
            WriteInner::UringVariant(w) => w.shutdown(),
        }
    }
}

/// Drops fully written parts and advances a partly written one.
fn advance_parts(parts: &mut Vec<Bytes>, mut written: usize) {
    let mut done = 0;
    for part in parts.iter_mut() {
        if written >= part.len() {
            written -= part.len();
            done += 1;
        } else {
            let _ = part.split_to(written);
            break;
        }
    }
    parts.drain(..done);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_written_parts_and_splits_the_partial_one() {
        let mut parts = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        advance_parts(&mut parts, 4);
        assert_eq!(
            parts,
            vec![Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]
        );
        advance_parts(&mut parts, 4);
        assert!(parts.is_empty());
    }

    #[test]
    fn read_buffer_compacts_when_the_spare_room_gets_small() {
        let mut buf = ReadBuffer::new(8);
        let spare = buf.prepare_spare();
        assert_eq!(spare, 0..8);
        assert_eq!(buf.append(b"abcdefghi"), 8);
        buf.consume(6);
        assert_eq!(buf.prepare_spare(), 2..8);
        assert_eq!(buf.data(), b"gh");
        assert!(!buf.is_full());
        // Plenty of room left: no move.
        let mut buf = ReadBuffer::new(8);
        assert_eq!(buf.append(b"abcd"), 4);
        buf.consume(1);
        assert_eq!(buf.prepare_spare(), 4..8);
        assert_eq!(buf.data(), b"bcd");
    }

    #[test]
    fn read_buffer_replaces_storage_a_cancelled_read_kept() {
        let mut buf = ReadBuffer::new(8);
        assert_eq!(buf.append(b"abc"), 3);
        // What a dropped io_uring read future leaves behind.
        drop(std::mem::take(buf.rx.storage_mut()));
        assert_eq!(buf.data(), b"");
        assert_eq!(buf.prepare_spare(), 0..8);
        assert_eq!(buf.append(b"xyz"), 3);
        assert_eq!(buf.data(), b"xyz");
        assert_eq!(buf.capacity(), 8);
    }
}
