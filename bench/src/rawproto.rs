//! Hand-rolled blocking protocol pieces that no client under test owns, so
//! every client meets the same counterpart: the NATS feeder for subscribe
//! runs, the NATS responder for request/reply, the NSQ prefiller for consume
//! runs, and the broker-bound ceilings (pre-encoded frames written to the
//! same nats-server and ended with a round trip; MSG bytes read from it
//! unparsed).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bytes per write for pre-encoded batches: large enough to amortise the
/// syscall, small enough to stay in cache.
const BATCH_BYTES: usize = 64 * 1024;

/// The payload every client sends: `size` bytes of `x`.
pub fn payload(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

/// One NATS `PUB subject size\r\npayload\r\n` frame.
pub fn nats_pub_frame(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// One NATS `MSG subject 1 size\r\npayload\r\n` frame, as a server sends it.
pub fn nats_msg_frame(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = format!("MSG {subject} 1 {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// `frame` repeated to fill about [`BATCH_BYTES`]; returns (bytes, frames in it).
fn batch_of(frame: &[u8]) -> (Vec<u8>, usize) {
    let per_batch = (BATCH_BYTES / frame.len()).max(1);
    (frame.repeat(per_batch), per_batch)
}

/// Writes `count` copies of `frame` in batches.
fn write_frames(out: &mut impl Write, frame: &[u8], count: u64) -> std::io::Result<()> {
    let (batch, per_batch) = batch_of(frame);
    let mut left = count;
    while left > 0 {
        let n = left.min(per_batch as u64) as usize;
        out.write_all(&batch[..n * frame.len()])?;
        left -= n as u64;
    }
    out.flush()
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("nats://")
}

/// A connected, handshaken NATS connection (INFO read, CONNECT + PING sent,
/// PONG seen).
pub struct RawNats {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

impl RawNats {
    /// Connects to `nats://host:port`.
    pub fn connect(url: &str) -> Result<Self, String> {
        let stream =
            TcpStream::connect(host_port(url)).map_err(|e| format!("connect {url}: {e}"))?;
        stream.set_nodelay(true).ok();
        let mut conn = RawNats {
            reader: BufReader::with_capacity(
                BATCH_BYTES,
                stream.try_clone().map_err(|e| e.to_string())?,
            ),
            writer: BufWriter::with_capacity(BATCH_BYTES, stream),
        };
        let info = conn.read_line()?;
        if !info.starts_with("INFO") {
            return Err(format!("expected INFO from {url}, got {info:?}"));
        }
        conn.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"courier-bench-raw\"}\r\n",
        )?;
        conn.round_trip()?;
        Ok(conn)
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("server closed the connection".into()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    /// PING, flush, and wait for PONG: everything sent before has been
    /// processed by the server.
    pub fn round_trip(&mut self) -> Result<(), String> {
        self.send(b"PING\r\n")?;
        self.writer.flush().map_err(|e| format!("write: {e}"))?;
        loop {
            let line = self.read_line()?;
            if line == "PONG" {
                return Ok(());
            }
            if line.starts_with("-ERR") {
                return Err(format!("server said {line}"));
            }
        }
    }
}

/// Publishes `count` messages of `size` bytes on `subject` as fast as the
/// socket takes them (pre-encoded batches), then round-trips so every one has
/// reached the server. Returns the time it took.
pub fn nats_feed(url: &str, subject: &str, size: usize, count: u64) -> Result<Duration, String> {
    let mut conn = RawNats::connect(url)?;
    let frame = nats_pub_frame(subject, &payload(size));
    let started = Instant::now();
    write_frames(&mut conn.writer, &frame, count).map_err(|e| format!("write: {e}"))?;
    conn.round_trip()?;
    Ok(started.elapsed())
}

/// Answers every request on `subject` with a reply of the request's size,
/// until the connection drops. Flushes whenever it has no more input
/// buffered, so replies are batched only when requests are.
pub fn nats_respond(url: &str, subject: &str) -> Result<(), String> {
    let mut conn = RawNats::connect(url)?;
    conn.send(format!("SUB {subject} 1\r\n").as_bytes())?;
    conn.round_trip()?;
    let mut line = Vec::with_capacity(256);
    let mut body = Vec::new();
    loop {
        if conn.reader.buffer().is_empty() {
            conn.writer.flush().map_err(|e| format!("write: {e}"))?;
        }
        line.clear();
        let n = conn
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        let text = std::str::from_utf8(&line)
            .map_err(|e| e.to_string())?
            .trim_end();
        let mut parts = text.split_ascii_whitespace();
        match parts.next() {
            Some("MSG") => {
                let fields: Vec<&str> = parts.collect();
                // MSG subject sid [reply] size
                let (reply, size) = match fields.as_slice() {
                    [_, _, reply, size] => (Some(*reply), size),
                    [_, _, size] => (None, size),
                    _ => return Err(format!("unexpected MSG line {text:?}")),
                };
                let size: usize = size.parse().map_err(|_| format!("bad size in {text:?}"))?;
                body.resize(size + 2, 0);
                conn.reader
                    .read_exact(&mut body)
                    .map_err(|e| e.to_string())?;
                if let Some(reply) = reply {
                    let head = format!("PUB {reply} {size}\r\n");
                    conn.send(head.as_bytes())?;
                    conn.send(&body)?;
                }
            }
            Some("PING") => conn.send(b"PONG\r\n")?,
            Some("-ERR") => return Err(format!("server said {text}")),
            _ => {}
        }
    }
}

/// The broker-bound subscribe ceiling: subscribes to `subject` on the
/// NATS server at `url` and reads the bytes of `count` `MSG` frames of
/// `size` bytes without parsing them. Returns the time from the first byte
/// to the last (the same clock as the clients' subscribe runs).
pub fn ceiling_subscribe(
    url: &str,
    subject: &str,
    size: usize,
    count: u64,
) -> Result<Duration, String> {
    let mut conn = RawNats::connect(url)?;
    conn.send(format!("SUB {subject} 1\r\n").as_bytes())?;
    conn.round_trip()?;
    let expected = nats_msg_frame(subject, &payload(size)).len() as u64 * count;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let mut started = None;
    while got < expected {
        let n = conn
            .reader
            .read(&mut buf)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("server closed after {got} of {expected} bytes"));
        }
        started.get_or_insert_with(Instant::now);
        got += n as u64;
        crate::worker::progress(got / (expected / count.max(1)).max(1));
    }
    Ok(started.map(|s| s.elapsed()).unwrap_or_default())
}

/// Publishes `count` NSQ messages of `size` bytes to `topic` with MPUB
/// batches of `batch` (PUB when `batch` is 1), waiting for each OK (the NSQ
/// V2 protocol by hand). Also the NSQ broker-bound ceiling.
pub fn nsq_prefill(
    addr: &str,
    topic: &str,
    size: usize,
    count: u64,
    batch: usize,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = BufWriter::with_capacity(BATCH_BYTES, stream);
    writer.write_all(b"  V2").map_err(|e| e.to_string())?;
    let body = payload(size);
    let mut left = count;
    while left > 0 {
        let n = left.min(batch as u64) as usize;
        let mut frame;
        if batch == 1 {
            // One message per command: PUB, as the clients' PUB runs send.
            frame = format!("PUB {topic}\n").into_bytes();
            frame.extend_from_slice(&(size as u32).to_be_bytes());
            frame.extend_from_slice(&body);
        } else {
            frame = format!("MPUB {topic}\n").into_bytes();
            let total = 4 + n * (4 + size);
            frame.extend_from_slice(&(total as u32).to_be_bytes());
            frame.extend_from_slice(&(n as u32).to_be_bytes());
            for _ in 0..n {
                frame.extend_from_slice(&(size as u32).to_be_bytes());
                frame.extend_from_slice(&body);
            }
        }
        writer.write_all(&frame).map_err(|e| e.to_string())?;
        writer.flush().map_err(|e| e.to_string())?;
        // Response frame: size (4), type (4), data.
        let mut head = [0u8; 8];
        reader
            .read_exact(&mut head)
            .map_err(|e| format!("nsqd reply: {e}"))?;
        let frame_size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let frame_type = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let mut data = vec![0u8; frame_size.saturating_sub(4)];
        reader
            .read_exact(&mut data)
            .map_err(|e| format!("nsqd reply: {e}"))?;
        if frame_type != 0 || data != b"OK" {
            return Err(format!(
                "nsqd answered MPUB with {:?}",
                String::from_utf8_lossy(&data)
            ));
        }
        left -= n as u64;
    }
    Ok(())
}
