//! io_uring backend (tokio-uring): the kernel reads into and writes from
//! buffers we own and lend for the duration of each operation.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;

use bytes::Bytes;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

pub(super) struct ReadHalf(Rc<TcpStream>);
pub(super) struct WriteHalf(Rc<TcpStream>);

pub(super) async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    crate::stats::record(|s| s.submissions += 1);
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let stream = Rc::new(stream);
    Ok((ReadHalf(stream.clone()), WriteHalf(stream)))
}

impl ReadHalf {
    /// Reads into `storage[spare]`. The storage is lent to the kernel and put
    /// back; if this future is dropped mid-read, `storage` is left empty and
    /// the caller reallocates it.
    pub(super) async fn read(
        &mut self,
        storage: &mut Vec<u8>,
        spare: Range<usize>,
    ) -> io::Result<usize> {
        let owned = std::mem::take(storage);
        crate::stats::record(|s| {
            s.reads += 1;
            s.submissions += 1;
        });
        let (res, slice) = self.0.read(owned.slice(spare)).await;
        *storage = slice.into_inner();
        res
    }
}

impl WriteHalf {
    pub(super) async fn write_all(&mut self, mut data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        // tokio-uring's write_all loops on short writes; count each SQE.
        let mut at = 0;
        while at < data.len() {
            crate::stats::record(|s| {
                s.writes += 1;
                s.submissions += 1;
            });
            let (res, slice) = self.0.write(data.slice(at..)).submit().await;
            data = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), data),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), data),
            }
        }
        (Ok(()), data)
    }

    pub(super) async fn write_vectored_all(
        &mut self,
        mut parts: Vec<Bytes>,
    ) -> (io::Result<()>, Vec<Bytes>) {
        parts.retain(|p| !p.is_empty());
        while !parts.is_empty() {
            crate::stats::record(|s| {
                s.writes += 1;
                s.submissions += 1;
            });
            let (res, back) = self.0.writev(parts).await;
            parts = back;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), parts),
                Ok(n) => super::advance_parts(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    parts.clear();
                    return (Err(e), parts);
                }
            }
        }
        (Ok(()), parts)
    }

    /// One `send(2)` with `MSG_DONTWAIT` now, outside the ring: the bytes
    /// the kernel took, or `WouldBlock` when the socket buffer is full.
    /// Saves a latency-bound caller the submission, the completion and the
    /// executor wake-up of a write SQE. The socket stays blocking for
    /// io_uring's sake; the flag makes only this call non-blocking.
    pub(super) fn try_write_now(&mut self, data: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        crate::stats::record(|s| s.writes += 1);
        let fd = self.0.as_raw_fd();
        // SAFETY: `fd` is the open socket `self.0` owns for this whole call,
        // and `data` is a live slice of `data.len()` readable bytes.
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }
}
