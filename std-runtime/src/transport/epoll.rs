//! epoll backend (tokio's reactor): wait for readiness, then one
//! non-blocking syscall, so every syscall is counted, including the ones
//! that find the socket not ready.

use std::io::{self, IoSlice};
use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub(super) struct ReadHalf(OwnedReadHalf);
pub(super) struct WriteHalf(OwnedWriteHalf);

/// Most slices handed to one `writev(2)` (well under IOV_MAX).
const MAX_IOVECS: usize = 64;

pub(super) async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok((ReadHalf(r), WriteHalf(w)))
}

impl ReadHalf {
    pub(super) async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            crate::stats::record(|s| s.reads += 1);
            match self.0.try_read(out) {
                Ok(n) => return Ok(n),
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

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        // Sends FIN without waiting; the half stays usable for drop.
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match std::pin::Pin::new(&mut self.0).poll_shutdown(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Ok(()),
        }
    }
}
