//! The AMQP broker ceiling: a blocking socket, the handshake written by
//! hand, then basic.publish frames (method + header + body) pre-encoded
//! once and written in 64 KiB batches on a channel in confirm mode, keeping
//! at most `window` unconfirmed, acks parsed in place. No client library:
//! what RabbitMQ takes when the client costs nothing. Also prefills queues
//! for the consume scenarios.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A blocking connection with one open channel (1) in confirm mode.
pub struct RawAmqp {
    sock: TcpStream,
    buf: Vec<u8>,
    frame_max: u32,
}

fn short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(0xCE);
}

fn method(out: &mut Vec<u8>, channel: u16, class: u16, id: u16, args: &[u8]) {
    let mut p = Vec::with_capacity(4 + args.len());
    p.extend_from_slice(&class.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(args);
    frame(out, 1, channel, &p);
}

/// `host:port`, user, password and vhost of an `amqp://` URL.
fn parse_url(url: &str) -> Result<(String, String, String, String), String> {
    let rest = url
        .strip_prefix("amqp://")
        .ok_or_else(|| format!("{url}: not amqp://"))?;
    let (auth, rest) = rest.split_once('@').unwrap_or(("guest:guest", rest));
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let vhost = match vhost {
        "" | "%2f" | "%2F" => "/".to_string(),
        v => v.to_string(),
    };
    Ok((hostport.into(), user.into(), pass.into(), vhost))
}

impl RawAmqp {
    /// Connects, logs in, opens channel 1, selects confirms and declares
    /// `queue` (non-durable).
    pub fn connect(url: &str, queue: &str) -> Result<Self, String> {
        let (hostport, user, pass, vhost) = parse_url(url)?;
        let sock = TcpStream::connect(&hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
        sock.set_nodelay(true).ok();
        sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let mut c = RawAmqp {
            sock,
            buf: Vec::with_capacity(1 << 16),
            frame_max: 131_072,
        };
        c.send(b"AMQP\x00\x00\x09\x01")?;
        c.expect(10, 10)?; // connection.start
        let mut a = vec![0, 0, 0, 0]; // client properties: empty table
        short(&mut a, "PLAIN");
        let resp = format!("\0{user}\0{pass}");
        a.extend_from_slice(&(resp.len() as u32).to_be_bytes());
        a.extend_from_slice(resp.as_bytes());
        short(&mut a, "en_US");
        let mut out = Vec::new();
        method(&mut out, 0, 10, 11, &a);
        c.send(&out)?;
        let tune = c.expect(10, 30)?;
        let channel_max = u16::from_be_bytes([tune[0], tune[1]]);
        let server_max = u32::from_be_bytes([tune[2], tune[3], tune[4], tune[5]]);
        c.frame_max = if server_max == 0 {
            131_072
        } else {
            server_max.min(131_072)
        };
        let mut a = Vec::new();
        a.extend_from_slice(&channel_max.to_be_bytes());
        a.extend_from_slice(&c.frame_max.to_be_bytes());
        a.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats
        let mut out = Vec::new();
        method(&mut out, 0, 10, 31, &a);
        let mut a = Vec::new();
        short(&mut a, &vhost);
        short(&mut a, "");
        a.push(0);
        method(&mut out, 0, 10, 40, &a);
        c.send(&out)?;
        c.expect(10, 41)?;
        let mut out = Vec::new();
        method(&mut out, 1, 20, 10, &[0]);
        method(&mut out, 1, 85, 10, &[0]);
        let mut a = vec![0, 0];
        short(&mut a, queue);
        a.push(0); // passive, durable, exclusive, auto-delete, nowait: off
        a.extend_from_slice(&[0, 0, 0, 0]);
        method(&mut out, 1, 50, 10, &a);
        c.send(&out)?;
        c.expect(20, 11)?;
        c.expect(85, 11)?;
        c.expect(50, 11)?;
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sock
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads until one whole frame is buffered; returns (type, channel, payload).
    fn next_frame(&mut self) -> Result<(u8, u16, Vec<u8>), String> {
        loop {
            if self.buf.len() >= 7 {
                let size = u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]])
                    as usize;
                if self.buf.len() >= size + 8 {
                    let kind = self.buf[0];
                    let channel = u16::from_be_bytes([self.buf[1], self.buf[2]]);
                    let payload = self.buf[7..7 + size].to_vec();
                    self.buf.drain(..size + 8);
                    return Ok((kind, channel, payload));
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self
                .sock
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the broker closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The arguments of the next method, which must be (class, id).
    fn expect(&mut self, class: u16, id: u16) -> Result<Vec<u8>, String> {
        let (kind, _, p) = self.next_frame()?;
        let got = (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        );
        if kind != 1 || got != (class, id) {
            return Err(format!(
                "expected method {class}.{id}, got frame type {kind} method {}.{} ({})",
                got.0,
                got.1,
                String::from_utf8_lossy(&p)
            ));
        }
        Ok(p[4..].to_vec())
    }

    /// Reads confirms until the highest confirmed tag is at least `tag`;
    /// returns the highest confirmed tag. A nack is an error.
    fn confirmed_through(&mut self, mut acked: u64, tag: u64) -> Result<u64, String> {
        while acked < tag {
            let (kind, _, p) = self.next_frame()?;
            if kind != 1 || p.len() < 12 {
                continue; // heartbeats are off; nothing else is expected
            }
            let m = (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            );
            let t = u64::from_be_bytes(p[4..12].try_into().expect("8 bytes"));
            match m {
                (60, 80) => acked = acked.max(t),
                (60, 120) => return Err(format!("publish {t} nacked")),
                (20, 40) => return Err(format!("channel closed: {}", String::from_utf8_lossy(&p))),
                _ => {}
            }
        }
        Ok(acked)
    }

    /// Publishes `n` messages of `size` bytes to `queue`, pre-encoded,
    /// keeping at most `window` unconfirmed; returns when all are
    /// confirmed. Tags continue from `first_tag` (1 on a fresh channel).
    pub fn publish(
        &mut self,
        queue: &str,
        size: usize,
        n: u64,
        window: u64,
        first_tag: u64,
    ) -> Result<Duration, String> {
        let mut one = Vec::new();
        let mut a = vec![0, 0];
        short(&mut a, "");
        short(&mut a, queue);
        a.push(0);
        method(&mut one, 1, 60, 40, &a);
        let mut h = Vec::new();
        h.extend_from_slice(&60u16.to_be_bytes());
        h.extend_from_slice(&0u16.to_be_bytes());
        h.extend_from_slice(&(size as u64).to_be_bytes());
        h.extend_from_slice(&0u16.to_be_bytes());
        frame(&mut one, 2, 1, &h);
        let body = vec![b'x'; size];
        for piece in body.chunks(self.frame_max as usize - 8) {
            frame(&mut one, 3, 1, piece);
        }
        let per_batch = (65536 / one.len()).max(1) as u64;
        let batch: Vec<u8> = one.repeat(per_batch.min(window).max(1) as usize);
        let started = Instant::now();
        let (mut sent, mut acked) = (0u64, first_tag - 1);
        let last = first_tag - 1 + n;
        while sent < n {
            let in_flight = (first_tag - 1 + sent) - acked;
            let room = window.saturating_sub(in_flight);
            if room == 0 {
                acked = self.confirmed_through(acked, acked + 1)?;
                continue;
            }
            let k = room.min(n - sent).min(per_batch.min(window).max(1));
            self.send(&batch[..k as usize * one.len()])?;
            sent += k;
        }
        self.confirmed_through(acked, last)?;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_address_credentials_and_vhost() {
        assert_eq!(
            parse_url("amqp://guest:pw@127.0.0.1:5672/%2f").unwrap(),
            (
                "127.0.0.1:5672".into(),
                "guest".into(),
                "pw".into(),
                "/".into()
            )
        );
        assert_eq!(
            parse_url("amqp://u:p@h:1/vh").unwrap(),
            ("h:1".into(), "u".into(), "p".into(), "vh".into())
        );
        assert!(parse_url("http://h").is_err());
    }

    #[test]
    fn a_method_frame_is_type_channel_size_payload_and_end_octet() {
        let mut out = Vec::new();
        method(&mut out, 1, 85, 10, &[0]);
        assert_eq!(out, [1, 0, 1, 0, 0, 0, 5, 0, 85, 0, 10, 0, 0xCE]);
    }
}
