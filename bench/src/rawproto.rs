//! Hand-rolled blocking protocol pieces that no client under test owns, so
//! every client meets the same counterpart: the NATS feeder for subscribe
//! runs, the NATS responder for request/reply, the NSQ prefiller for consume
//! runs, and the raw loopback TCP ceiling (pre-encoded frames written to a
//! socket that only drains, and read from a socket that only writes).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
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

/// A loopback listener that accepts connections and throws away whatever
/// arrives: the far end of the raw publish ceiling.
pub struct DrainServer {
    /// Address to connect to.
    pub addr: SocketAddr,
    _accept: JoinHandle<()>,
}

impl DrainServer {
    /// Listens on 127.0.0.1 and a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind drain server");
        let addr = listener.local_addr().expect("drain server address");
        let accept = thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut sink = vec![0u8; 256 * 1024];
                    while let Ok(n) = stream.read(&mut sink) {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        DrainServer {
            addr,
            _accept: accept,
        }
    }
}

/// A loopback listener that writes `count` pre-encoded `MSG` frames to each
/// connection and closes it: the far end of the raw subscribe ceiling.
pub struct SourceServer {
    /// Address to connect to.
    pub addr: SocketAddr,
    _accept: JoinHandle<()>,
}

impl SourceServer {
    /// Listens on 127.0.0.1 and a free port.
    pub fn start(size: usize, count: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind source server");
        let addr = listener.local_addr().expect("source server address");
        let frame = nats_msg_frame("bench.ceiling", &payload(size));
        let accept = thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let frame = frame.clone();
                thread::spawn(move || {
                    let mut stream = stream;
                    let _ = write_frames(&mut stream, &frame, count);
                });
            }
        });
        SourceServer {
            addr,
            _accept: accept,
        }
    }
}

/// The publish ceiling: writes `count` pre-encoded PUB frames to `addr` (a
/// [`DrainServer`]). Returns the time it took.
pub fn ceiling_publish(addr: &str, size: usize, count: u64) -> Result<Duration, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let frame = nats_pub_frame("bench.ceiling", &payload(size));
    let started = Instant::now();
    write_frames(&mut stream, &frame, count).map_err(|e| format!("write: {e}"))?;
    Ok(started.elapsed())
}

/// The subscribe ceiling: reads `count` MSG frames' worth of bytes from `addr`
/// (a [`SourceServer`]) without parsing. Returns the time from connecting
/// (the source starts writing on accept) to the last byte.
pub fn ceiling_subscribe(addr: &str, size: usize, count: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let expected = nats_msg_frame("bench.ceiling", &payload(size)).len() as u64 * count;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < expected {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("source closed after {got} of {expected} bytes"));
        }
        got += n as u64;
    }
    Ok(started.elapsed())
}

/// Publishes `count` NSQ messages of `size` bytes to `topic` with MPUB
/// batches of `batch`, waiting for each OK (the NSQ V2 protocol by hand).
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
        let mut frame = format!("MPUB {topic}\n").into_bytes();
        let total = 4 + n * (4 + size);
        frame.extend_from_slice(&(total as u32).to_be_bytes());
        frame.extend_from_slice(&(n as u32).to_be_bytes());
        for _ in 0..n {
            frame.extend_from_slice(&(size as u32).to_be_bytes());
            frame.extend_from_slice(&body);
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
