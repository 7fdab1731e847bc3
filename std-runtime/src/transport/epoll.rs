//! epoll backend (tokio's reactor): wait for readiness, then one
//! non-blocking syscall, so every syscall is counted, including the ones
//! that find the socket not ready.
//!
//! Both halves share the tokio `TcpStream` (single-threaded runtime, so an
//! `Rc`) because clearing read readiness after a short read needs
//! `TcpStream::try_io`, which tokio's owned split halves do not offer.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::rc::Rc;

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

pub(super) struct ReadHalf(Rc<TcpStream>);
pub(super) struct WriteHalf(Rc<TcpStream>);

/// Most slices handed to one `writev(2)` (well under IOV_MAX).
const MAX_IOVECS: usize = 64;

pub(super) async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let stream = Rc::new(stream);
    Ok((ReadHalf(stream.clone()), WriteHalf(stream)))
}

impl ReadHalf {
    pub(super) async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            crate::stats::record(|s| s.reads += 1);
            match self.0.try_read(out) {
                Ok(n) => {
                    if n > 0 && n < out.len() {
                        // A short read drained the socket: forget the
                        // readiness now instead of learning it from one more
                        // read(2) that fails with EAGAIN. Safe with
                        // edge-triggered epoll: bytes arriving after this
                        // read raise a new event. (tokio's own `poll_read`
                        // does the same.)
                        let _ = self.0.try_io(Interest::READABLE, || {
                            Err::<(), _>(io::ErrorKind::WouldBlock.into())
                        });
                    }
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl WriteHalf {
    pub(super) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            self.0.writable().await?;
            crate::stats::record(|s| s.writes += 1);
            match self.0.try_write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(super) async fn write_vectored_all(
        &mut self,
        mut parts: Vec<Bytes>,
    ) -> (io::Result<()>, Vec<Bytes>) {
        parts.retain(|p| !p.is_empty());
        while !parts.is_empty() {
            if let Err(e) = self.0.writable().await {
                parts.clear();
                return (Err(e), parts);
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = parts.len().min(MAX_IOVECS);
            for (slot, part) in slices.iter_mut().zip(parts.iter()) {
                *slot = IoSlice::new(part);
            }
            crate::stats::record(|s| s.writes += 1);
            match self.0.try_write_vectored(&slices[..count]) {
                Ok(0) => {
                    parts.clear();
                    return (Err(io::ErrorKind::WriteZero.into()), parts);
                }
                Ok(n) => super::advance_parts(&mut parts, n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    parts.clear();
                    return (Err(e), parts);
                }
            }
        }
        (Ok(()), parts)
    }

    /// One non-blocking write attempt now, without waiting for readiness:
    /// the bytes the kernel took, or `WouldBlock`.
    pub(super) fn try_write_now(&mut self, data: &[u8]) -> io::Result<usize> {
        crate::stats::record(|s| s.writes += 1);
        self.0.try_write(data)
    }

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        // Sends FIN without waiting. shutdown(2) acts on the socket, not the
        // descriptor, so a short-lived duplicate (std's safe API) does it.
        let fd = self.0.as_fd().try_clone_to_owned()?;
        std::net::TcpStream::from(fd).shutdown(Shutdown::Write)
    }
}
