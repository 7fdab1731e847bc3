//! Publishes written to the socket but not yet confirmed by the server.
//!
//! Core NATS has no acknowledgements, but a PONG proves the server
//! processed everything written before its PING. The connection task feeds
//! every write through [`Unconfirmed::wrote`], which finds the publishes in
//! it (with the core's [`client_command`]) and counts them against the
//! earliest PING (flush or confirmation) that will be written after them;
//! a PONG confirms all publishes before its PING's position. On a disconnect, what is left is the count the client reports
//! ([`Event::Disconnected`](super::Event::Disconnected)`.unconfirmed_publishes`)
//! and, with [`ConnectOptions::resend_unconfirmed`](super::ConnectOptions::resend_unconfirmed),
//! the publishes it queues again (at-least-once).
//!
//! A confirmation PING goes out once `confirm_bytes` were written or
//! `confirm_interval` passed since the last one with publishes written, so
//! the unconfirmed window (and the memory kept for a resend) is bounded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use courier_core::nats::{client_command, PingId};

use super::options::Event;
use super::shared::{ConnectionState, Shared};
use super::url::ServerAddr;

/// Publishes written before a PING (and after the previous one): the
/// PONG to that PING confirms them all. Counting per PING, not per publish,
/// keeps the publish path free of per-message allocations.
struct Segment {
    /// Stream position of the PING (once written).
    boundary: u64,
    /// Publishes that end at or before `boundary`.
    count: usize,
}

/// A publish to queue again, parsed back from its wire form.
pub(crate) struct Resend<'a> {
    pub(crate) subject: &'a str,
    pub(crate) reply: Option<&'a str>,
    pub(crate) headers: Option<&'a [u8]>,
    pub(crate) payload: &'a [u8],
}

pub(crate) struct Unconfirmed {
    keep_wire: bool,
    confirm_bytes: u64,
    confirm_interval: Duration,
    /// Stream position of the first byte of `carry` / of the next write.
    position: u64,
    /// The start of a command split across writes.
    carry: Vec<u8>,
    /// One per PING in flight (flush or confirmation), oldest first.
    segments: VecDeque<Segment>,
    /// Publishes written after the newest PING's position.
    tail: usize,
    /// Resend only: each unconfirmed publish's end position and wire form.
    wires: VecDeque<(u64, Vec<u8>)>,
    /// Confirmation pings in flight: (id, position once written).
    pings: VecDeque<(PingId, u64)>,
    last_ping_position: u64,
    last_ping_at: Instant,
}

impl Unconfirmed {
    pub(crate) fn new(keep_wire: bool, confirm_bytes: usize, confirm_interval: Duration) -> Self {
        Unconfirmed {
            keep_wire,
            confirm_bytes: confirm_bytes as u64,
            confirm_interval,
            position: 0,
            carry: Vec::new(),
            segments: VecDeque::with_capacity(16),
            tail: 0,
            wires: VecDeque::new(),
            pings: VecDeque::with_capacity(16),
            last_ping_position: 0,
            last_ping_at: Instant::now(),
        }
    }

    /// Publishes written and not yet confirmed.
    pub(crate) fn count(&self) -> usize {
        self.segments.iter().map(|s| s.count).sum::<usize>() + self.tail
    }

    /// `bytes` were written, starting at stream position `start`.
    pub(crate) fn wrote(&mut self, start: u64, bytes: &[u8]) {
        if !self.carry.is_empty() && self.position + self.carry.len() as u64 == start {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(bytes);
            let base = self.position;
            self.scan(base, &joined);
        } else {
            self.carry.clear();
            self.scan(start, bytes);
        }
    }

    fn scan(&mut self, base: u64, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            match client_command(&bytes[at..]) {
                Some((len, is_publish)) => {
                    if is_publish {
                        let end = base + (at + len) as u64;
                        let wire = self.keep_wire.then(|| bytes[at..at + len].to_vec());
                        self.add(end, wire);
                    }
                    at += len;
                }
                None => {
                    self.carry.extend_from_slice(&bytes[at..]);
                    self.position = base + at as u64;
                    return;
                }
            }
        }
        self.position = base + bytes.len() as u64;
    }

    /// One publish ending at `end` was written.
    fn add(&mut self, end: u64, wire: Option<Vec<u8>>) {
        // The earliest PING written after it confirms it.
        match self.segments.iter_mut().find(|s| s.boundary >= end) {
            Some(segment) => segment.count += 1,
            None => self.tail += 1,
        }
        if let Some(wire) = wire {
            self.wires.push_back((end, wire));
        }
    }

    /// A whole publish written on its own (vectored), ending at `end`.
    pub(crate) fn wrote_publish(&mut self, end: u64, wire: impl FnOnce() -> Vec<u8>) {
        self.carry.clear();
        let wire = self.keep_wire.then(wire);
        self.add(end, wire);
        self.position = end;
    }

    /// A PING (flush or confirmation) was queued; it is written at
    /// `position`: its PONG will confirm every publish ending before.
    pub(crate) fn boundary(&mut self, position: u64) {
        if self.segments.back().is_some_and(|s| s.boundary >= position) {
            return;
        }
        let count = std::mem::take(&mut self.tail);
        self.segments.push_back(Segment {
            boundary: position,
            count,
        });
    }

    /// Whether a confirmation PING is due: publishes are unconfirmed, none
    /// is in flight, and enough bytes or time passed since the last one.
    pub(crate) fn ping_due(&self, written_bytes: u64) -> bool {
        self.pings.is_empty()
            && self.tail > 0
            && (written_bytes - self.last_ping_position >= self.confirm_bytes
                || self.last_ping_at.elapsed() >= self.confirm_interval)
    }

    /// A confirmation PING was queued; it is written at `position`.
    pub(crate) fn pinged(&mut self, id: PingId, position: u64) {
        self.pings.push_back((id, position));
        self.boundary(position);
        self.last_ping_position = position;
        self.last_ping_at = Instant::now();
    }

    /// The PONG to `ping` came: returns the position it confirms (0 when
    /// it was not a confirmation ping).
    pub(crate) fn pong(&mut self, ping: PingId) -> u64 {
        let mut confirmed = 0;
        while self.pings.front().is_some_and(|(id, _)| *id <= ping) {
            if let Some((_, at)) = self.pings.pop_front() {
                confirmed = confirmed.max(at);
            }
        }
        confirmed
    }

    /// Everything up to `position` reached the server.
    pub(crate) fn confirm(&mut self, position: u64) {
        while self
            .segments
            .front()
            .is_some_and(|s| s.boundary <= position)
        {
            self.segments.pop_front();
        }
        while self.wires.front().is_some_and(|(end, _)| *end <= position) {
            self.wires.pop_front();
        }
    }

    /// The connection is gone: returns the unconfirmed publishes' wire
    /// forms (empty unless resending) and their count, and starts over.
    pub(crate) fn take_lost(&mut self, next_position: u64) -> (Vec<Vec<u8>>, usize) {
        let count = self.count();
        let wires = self.wires.drain(..).map(|(_, w)| w).collect();
        self.segments.clear();
        self.tail = 0;
        self.carry.clear();
        self.pings.clear();
        self.position = next_position;
        self.last_ping_position = next_position;
        (wires, count)
    }
}

/// Parses a `PUB`/`HPUB` our encoder wrote back into its parts.
pub(crate) fn parse_publish(wire: &[u8]) -> Option<Resend<'_>> {
    let line_end = wire.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&wire[..line_end]).ok()?;
    let body = wire.get(line_end + 2..wire.len().checked_sub(2)?)?;
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["PUB", subject, rest @ ..] => {
            let reply = match rest {
                [_len] => None,
                [reply, _len] => Some(*reply),
                _ => return None,
            };
            Some(Resend {
                subject,
                reply,
                headers: None,
                payload: body,
            })
        }
        ["HPUB", subject, rest @ ..] => {
            let (reply, header_len) = match rest {
                [h, _total] => (None, h),
                [reply, h, _total] => (Some(*reply), h),
                _ => return None,
            };
            let header_len: usize = header_len.parse().ok()?;
            Some(Resend {
                subject,
                reply,
                headers: Some(body.get(..header_len)?),
                payload: body.get(header_len..)?,
            })
        }
        _ => None,
    }
}

/// Queues the unconfirmed publishes of a lost connection again
/// (`resend_unconfirmed`); returns how many were queued.
pub(crate) fn resend(sh: &mut Shared, server: &ServerAddr, wires: &[Vec<u8>]) -> usize {
    let mut resent = 0;
    for wire in wires {
        let queued = match parse_publish(wire) {
            Some(p) => sh
                .session
                .publish(p.subject, p.reply, p.headers, p.payload)
                .map_err(|e| e.to_string()),
            None => Err("it could not be parsed back".to_string()),
        };
        match queued {
            Ok(()) => resent += 1,
            Err(e) => {
                let message = format!(
                    "an unconfirmed publish written to {server} could not be queued again ({e}); \
                     it may be lost"
                );
                sh.emit(Event::Error { message });
            }
        }
    }
    resent
}

/// After a write: queue a confirmation PING if one is due, so the
/// unconfirmed window stays bounded.
pub(crate) fn confirmation_point(sh: &mut Shared) {
    if sh.connection_state() != ConnectionState::Connected
        && sh.connection_state() != ConnectionState::Draining
    {
        return;
    }
    let written = sh.statistics.written_bytes;
    if !sh.unconfirmed.ping_due(written) {
        return;
    }
    if let Ok(id) = sh.session.ping() {
        let position = written + sh.session.queued_bytes() as u64;
        sh.unconfirmed.pinged(id, position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_publishes_until_a_pong_confirms_them() {
        let mut u = Unconfirmed::new(true, 1 << 20, Duration::from_secs(60));
        let a = b"PUB a 1\r\nx\r\nPING\r\nPUB b 2\r\nyy\r\n";
        u.wrote(0, a);
        assert_eq!(u.count(), 2);
        u.pinged(PingId(1), a.len() as u64);
        // Split across writes: a publish counts once it is whole.
        let b = b"HPUB c r 12 13\r\nNATS/1.0\r\n\r\nz\r\n";
        u.wrote(a.len() as u64, &b[..10]);
        assert_eq!(u.count(), 2);
        u.wrote(a.len() as u64 + 10, &b[10..]);
        assert_eq!(u.count(), 3);
        let confirmed = u.pong(PingId(1));
        assert_eq!(confirmed, a.len() as u64);
        u.confirm(confirmed);
        assert_eq!(u.count(), 1);
        let (wires, count) = u.take_lost(100);
        assert_eq!(count, 1);
        let p = parse_publish(&wires[0]).expect("HPUB parses");
        assert_eq!(p.subject, "c");
        assert_eq!(p.reply, Some("r"));
        assert_eq!(p.headers, Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(p.payload, b"z");
        assert_eq!(u.count(), 0);
    }

    #[test]
    fn parses_pub_with_and_without_reply() {
        let p = parse_publish(b"PUB s 3\r\nabc\r\n").unwrap();
        assert_eq!(
            (p.subject, p.reply, p.headers, p.payload),
            ("s", None, None, &b"abc"[..])
        );
        let p = parse_publish(b"PUB s in.1 0\r\n\r\n").unwrap();
        assert_eq!(
            (p.subject, p.reply, p.payload),
            ("s", Some("in.1"), &b""[..])
        );
        assert!(parse_publish(b"PING\r\n").is_none());
    }

    proptest::proptest! {
        /// Publishes and PINGs written in arbitrary chunks: every publish
        /// is counted once, and each parses back to what was published.
        #[test]
        fn any_split_counts_every_publish_and_parses_it_back(
            msgs in proptest::collection::vec(
                ("[a-z]{1,8}", proptest::option::of("[a-z]{1,8}"), proptest::bool::ANY,
                 proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                1..20,
            ),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = Vec::new();
            for (i, (subject, reply, headers, payload)) in msgs.iter().enumerate() {
                let reply = reply.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
                if *headers {
                    let h = b"NATS/1.0\r\nK: v\r\n\r\n";
                    wire.extend_from_slice(
                        format!("HPUB {subject}{reply} {} {}\r\n", h.len(), h.len() + payload.len())
                            .as_bytes(),
                    );
                    wire.extend_from_slice(h);
                } else {
                    wire.extend_from_slice(
                        format!("PUB {subject}{reply} {}\r\n", payload.len()).as_bytes(),
                    );
                }
                wire.extend_from_slice(payload);
                wire.extend_from_slice(b"\r\n");
                if i % 3 == 0 {
                    wire.extend_from_slice(b"PING\r\n");
                }
            }
            let mut u = Unconfirmed::new(true, 1 << 20, Duration::from_secs(60));
            let (mut at, mut k) = (0usize, 0usize);
            while at < wire.len() {
                let n = cuts[k % cuts.len()].min(wire.len() - at);
                u.wrote(at as u64, &wire[at..at + n]);
                at += n;
                k += 1;
            }
            proptest::prop_assert_eq!(u.count(), msgs.len());
            let (wires, count) = u.take_lost(wire.len() as u64);
            proptest::prop_assert_eq!(count, msgs.len());
            for (w, (subject, reply, headers, payload)) in wires.iter().zip(&msgs) {
                let p = parse_publish(w).expect("parses back");
                proptest::prop_assert_eq!(p.subject, subject.as_str());
                proptest::prop_assert_eq!(p.reply, reply.as_deref());
                proptest::prop_assert_eq!(p.headers.is_some(), *headers);
                proptest::prop_assert_eq!(p.payload, payload.as_slice());
            }
        }
    }

    #[test]
    fn a_ping_is_due_after_enough_bytes() {
        let mut u = Unconfirmed::new(false, 20, Duration::from_secs(60));
        assert!(!u.ping_due(0));
        u.wrote(0, b"PUB a 1\r\nx\r\n");
        assert!(!u.ping_due(12));
        u.wrote(12, b"PUB a 1\r\nx\r\n");
        assert!(u.ping_due(24));
        u.pinged(PingId(3), 24);
        assert!(!u.ping_due(24), "one confirmation ping at a time");
    }
}
