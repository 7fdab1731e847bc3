//! io_uring with zero-copy send (`IORING_OP_SEND_ZC` / `SENDMSG_ZC`, Linux
//! 6.0+): writes of at least
//! [`ZERO_COPY_THRESHOLD`](super::uring_modes::ZERO_COPY_THRESHOLD) bytes
//! are sent from the caller's pages, which the kernel pins until the data
//! left (a second completion, the notification, hands the buffer back);
//! smaller writes and all reads are plain io_uring operations.
//!
//! tokio-uring 0.5 exposes `send_zc`/`sendmsg_zc` on `UdpSocket` only, but
//! the opcode works on any connected socket, so each connection opens a
//! second descriptor of its TCP socket (`dup`) wrapped as a tokio-uring
//! `UdpSocket` for the zero-copy sends.
//!
//! tokio-uring 0.5 assumes a first completion flagged "more" never carries
//! an error, but the kernel reports e.g. `EPIPE` that way when the peer is
//! gone, and tokio-uring then panics inside the poll and loses track of the
//! operation. The send is therefore polled under `catch_unwind`: such a
//! panic becomes an I/O error for this connection, the runtime switches to
//! plain writes for good (so it happens at most once) and leaks its ring at
//! drop, because tokio-uring's drop would wait forever for the lost
//! operation. The panic message still reaches stderr through the panic
//! hook.
//!
//! On loopback the kernel copies anyway when it delivers to the local
//! receiver, so zero copy only pays on a real NIC.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use bytes::Bytes;
use futures::FutureExt;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpStream, UdpSocket};

use super::uring_fixed::{plain_read, plain_write_all, plain_write_vectored_all};
use super::uring_modes::{
    current_transport, is_unsupported, zero_copy_broke, zero_copy_refused, Transport,
    ZERO_COPY_THRESHOLD,
};

pub(super) struct ReadHalf(Rc<TcpStream>);

pub(super) struct WriteHalf {
    stream: Rc<TcpStream>,
    /// The same socket through a second descriptor, for SEND_ZC.
    zc: UdpSocket,
}

/// A blocking std socket as tokio-uring wants it, plus the `UdpSocket` view
/// of a duplicate descriptor for the zero-copy opcodes.
fn split_for_zero_copy(std_stream: std::net::TcpStream) -> io::Result<(TcpStream, UdpSocket)> {
    // io_uring hands EAGAIN to the caller on O_NONBLOCK sockets instead of
    // waiting for readiness itself.
    std_stream.set_nonblocking(false)?;
    let dup: OwnedFd = std_stream.try_clone()?.into();
    let zc = UdpSocket::from_std(std::net::UdpSocket::from(dup));
    Ok((TcpStream::from_std(std_stream), zc))
}

pub(super) async fn connect(addr: SocketAddr) -> io::Result<(ReadHalf, WriteHalf)> {
    crate::stats::record(|s| s.submissions += 1);
    // tokio's connect (the tokio-uring runtime runs a tokio reactor too)
    // yields a std socket we can duplicate without unsafe code.
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (stream, zc) = split_for_zero_copy(stream.into_std()?)?;
    let stream = Rc::new(stream);
    Ok((ReadHalf(stream.clone()), WriteHalf { stream, zc }))
}

/// Proves SEND_ZC works here: one byte over a loopback TCP connection.
pub(super) async fn probe() -> io::Result<()> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (_server, _) = listener.accept()?;
    let (_stream, zc) = split_for_zero_copy(client)?;
    match AssertUnwindSafe(zc.send_zc(vec![0u8; 1]))
        .catch_unwind()
        .await
    {
        Ok((Ok(1), _)) => Ok(()),
        Ok((Ok(n), _)) => Err(io::Error::other(format!(
            "SEND_ZC probe sent {n} bytes instead of 1"
        ))),
        Ok((Err(e), _)) => Err(e),
        Err(_) => {
            // The probe's operation is lost inside tokio-uring: this ring
            // must not be dropped, and no zero-copy for it.
            zero_copy_broke();
            Err(io::Error::other("SEND_ZC probe failed inside tokio-uring"))
        }
    }
}

/// Environment variable overriding [`ZERO_COPY_THRESHOLD`] (bytes), for
/// measuring where zero copy starts to pay on a given NIC.
const THRESHOLD_ENV: &str = "COURIER_ZC_THRESHOLD";

fn threshold() -> usize {
    static THRESHOLD: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THRESHOLD.get_or_init(|| {
        std::env::var(THRESHOLD_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(ZERO_COPY_THRESHOLD)
    })
}

fn zero_copy_on() -> bool {
    current_transport() == Some(Transport::UringZeroCopySend)
}

fn broken_mid_send() -> io::Error {
    zero_copy_broke();
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "zero-copy send failed: the connection broke during the send",
    )
}

impl ReadHalf {
    pub(super) async fn read(
        &mut self,
        storage: &mut Vec<u8>,
        spare: Range<usize>,
    ) -> io::Result<usize> {
        plain_read(&self.0, storage, spare).await
    }
}

impl WriteHalf {
    pub(super) async fn write_all(&mut self, mut data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut at = 0;
        while at < data.len() {
            if data.len() - at < threshold() || !zero_copy_on() {
                return plain_write_all(&self.stream, data, at).await;
            }
            crate::stats::record(|s| {
                s.writes += 1;
                s.submissions += 1;
                s.zero_copy_sends += 1;
            });
            let sent = AssertUnwindSafe(self.zc.send_zc(data.slice(at..)))
                .catch_unwind()
                .await;
            let Ok((res, slice)) = sent else {
                return (Err(broken_mid_send()), Vec::new());
            };
            data = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), data),
                Ok(n) => at += n,
                Err(e) if is_unsupported(&e) => zero_copy_refused(&e),
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
            let total: usize = parts.iter().map(Bytes::len).sum();
            if total < threshold() || !zero_copy_on() {
                return plain_write_vectored_all(&self.stream, parts).await;
            }
            crate::stats::record(|s| {
                s.writes += 1;
                s.submissions += 1;
                s.zero_copy_sends += 1;
            });
            let sent = AssertUnwindSafe(self.zc.sendmsg_zc(parts, None, None::<Vec<u8>>))
                .catch_unwind()
                .await;
            let Ok((res, back, _)) = sent else {
                return (Err(broken_mid_send()), Vec::new());
            };
            parts = back;
            match res {
                Ok(0) => {
                    parts.clear();
                    return (Err(io::ErrorKind::WriteZero.into()), parts);
                }
                Ok(n) => super::advance_parts(&mut parts, n),
                Err(e) if is_unsupported(&e) => zero_copy_refused(&e),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    parts.clear();
                    return (Err(e), parts);
                }
            }
        }
        (Ok(()), parts)
    }

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}
