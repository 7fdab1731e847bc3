//! io_uring with registered (fixed) buffers: each connection checks out one
//! receive and one transmit buffer from the runtime's registered pool and
//! keeps them for its lifetime, so the kernel maps them once at registration
//! instead of on every operation (`IORING_OP_READ_FIXED` /
//! `IORING_OP_WRITE_FIXED`).
//!
//! The transport API hands over the caller's own buffers (`ReadBuffer`,
//! `Vec<u8>`, `Bytes`), which are not registered, so bytes are copied
//! between them and the registered pair: a copy for the cheaper per-op
//! mapping, which is the trade the benchmark measures.
//!
//! A connection that finds the pool empty (more than
//! [`FIXED_BUFFER_CONNECTIONS`](super::uring_modes::FIXED_BUFFER_CONNECTIONS)
//! at once, logged once) runs on plain owned buffers until a buffer is free
//! again; so does one whose buffer went with a cancelled operation (the
//! buffer returns to the pool when the kernel completes it).

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Once;

use bytes::Bytes;
use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::uring_modes::{FIXED_BUFFER_CONNECTIONS, FIXED_BUFFER_SIZE};

pub(super) struct ReadHalf {
    stream: Rc<TcpStream>,
    rx: Option<FixedBuf>,
    pool: FixedBufPool<Vec<u8>>,
}

pub(super) struct WriteHalf {
    stream: Rc<TcpStream>,
    tx: Option<FixedBuf>,
    pool: FixedBufPool<Vec<u8>>,
}

/// The connection's registered buffer, or a free one from the pool if it
/// has none (pool was empty at connect, or a cancelled operation took it).
fn checked_out(slot: &mut Option<FixedBuf>, pool: &FixedBufPool<Vec<u8>>) -> Option<FixedBuf> {
    slot.take().or_else(|| pool.try_next(FIXED_BUFFER_SIZE))
}

static POOL_EMPTY_LOGGED: Once = Once::new();

pub(super) async fn connect(
    addr: SocketAddr,
    pool: &FixedBufPool<Vec<u8>>,
) -> io::Result<(ReadHalf, WriteHalf)> {
    crate::stats::record(|s| s.submissions += 1);
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let stream = Rc::new(stream);
    let rx = pool.try_next(FIXED_BUFFER_SIZE);
    let tx = pool.try_next(FIXED_BUFFER_SIZE);
    if rx.is_none() || tx.is_none() {
        POOL_EMPTY_LOGGED.call_once(|| {
            log::warn!(
                "all {FIXED_BUFFER_CONNECTIONS} registered buffer pairs are in use; further \
                 connections of this runtime use plain io_uring buffers"
            )
        });
    }
    Ok((
        ReadHalf {
            stream: stream.clone(),
            rx,
            pool: pool.clone(),
        },
        WriteHalf {
            stream,
            tx,
            pool: pool.clone(),
        },
    ))
}

impl ReadHalf {
    /// Reads into `storage[spare]` through the registered receive buffer
    /// (at most its size per operation).
    pub(super) async fn read(
        &mut self,
        storage: &mut Vec<u8>,
        spare: Range<usize>,
    ) -> io::Result<usize> {
        let Some(rx) = checked_out(&mut self.rx, &self.pool) else {
            return plain_read(&self.stream, storage, spare).await;
        };
        let want = spare.len().min(rx.len());
        crate::stats::record(|s| {
            s.reads += 1;
            s.submissions += 1;
            s.fixed_buffer_ops += 1;
        });
        let (res, slice) = self.stream.read_fixed(rx.slice(..want)).await;
        let rx = self.rx.insert(slice.into_inner());
        let n = res?;
        let (Some(from), Some(to)) = (rx.get(..n), storage.get_mut(spare.start..spare.start + n))
        else {
            return Err(io::Error::other(
                "io_uring reported more bytes read than the buffer holds",
            ));
        };
        to.copy_from_slice(from);
        Ok(n)
    }
}

pub(super) async fn plain_read(
    stream: &TcpStream,
    storage: &mut Vec<u8>,
    spare: Range<usize>,
) -> io::Result<usize> {
    let owned = std::mem::take(storage);
    crate::stats::record(|s| {
        s.reads += 1;
        s.submissions += 1;
    });
    let (res, slice) = stream.read(owned.slice(spare)).await;
    *storage = slice.into_inner();
    res
}

impl WriteHalf {
    pub(super) async fn write_all(&mut self, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut at = 0;
        while at < data.len() {
            let Some(mut tx) = checked_out(&mut self.tx, &self.pool) else {
                return plain_write_all(&self.stream, data, at).await;
            };
            let chunk = &data[at..data.len().min(at + tx.len())];
            tx[..chunk.len()].copy_from_slice(chunk);
            let (res, tx) = write_fixed_all(&self.stream, tx, chunk.len()).await;
            self.tx = Some(tx);
            if let Err(e) = res {
                return (Err(e), data);
            }
            at += chunk.len();
        }
        (Ok(()), data)
    }

    /// Gathers the parts into the registered transmit buffer, a buffer-full
    /// at a time, and writes each fill.
    pub(super) async fn write_vectored_all(
        &mut self,
        mut parts: Vec<Bytes>,
    ) -> (io::Result<()>, Vec<Bytes>) {
        parts.retain(|p| !p.is_empty());
        while !parts.is_empty() {
            let Some(mut tx) = checked_out(&mut self.tx, &self.pool) else {
                return plain_write_vectored_all(&self.stream, parts).await;
            };
            let mut filled = 0;
            for part in &parts {
                let room = tx.len() - filled;
                let take = part.len().min(room);
                tx[filled..filled + take].copy_from_slice(&part[..take]);
                filled += take;
                if filled == tx.len() {
                    break;
                }
            }
            let (res, tx) = write_fixed_all(&self.stream, tx, filled).await;
            self.tx = Some(tx);
            if let Err(e) = res {
                parts.clear();
                return (Err(e), parts);
            }
            super::advance_parts(&mut parts, filled);
        }
        (Ok(()), parts)
    }

    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

/// Writes `tx[..len]` with WRITE_FIXED, looping on short writes, and gives
/// the buffer back.
async fn write_fixed_all(
    stream: &TcpStream,
    mut tx: FixedBuf,
    len: usize,
) -> (io::Result<()>, FixedBuf) {
    let mut at = 0;
    while at < len {
        crate::stats::record(|s| {
            s.writes += 1;
            s.submissions += 1;
            s.fixed_buffer_ops += 1;
        });
        let (res, slice) = stream.write_fixed(tx.slice(at..len)).await;
        tx = slice.into_inner();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), tx),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), tx),
        }
    }
    (Ok(()), tx)
}

pub(super) async fn plain_write_all(
    stream: &TcpStream,
    mut data: Vec<u8>,
    mut at: usize,
) -> (io::Result<()>, Vec<u8>) {
    while at < data.len() {
        crate::stats::record(|s| {
            s.writes += 1;
            s.submissions += 1;
        });
        let (res, slice) = stream.write(data.slice(at..)).submit().await;
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

pub(super) async fn plain_write_vectored_all(
    stream: &TcpStream,
    mut parts: Vec<Bytes>,
) -> (io::Result<()>, Vec<Bytes>) {
    while !parts.is_empty() {
        crate::stats::record(|s| {
            s.writes += 1;
            s.submissions += 1;
        });
        let (res, back) = stream.writev(parts).await;
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
