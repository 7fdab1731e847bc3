//! Publishes written to the socket but not yet confirmed by the server.
//!
//! Core NATS has no acknowledgements, but a PONG proves the server
//! processed everything written before its PING. The connection task feeds
//! every write through [`Unconfirmed::wrote`], which KEEPS the written
//! bytes (one append, no parsing); a PONG confirms everything before its
//! PING's position and drops those bytes unread. Only when a count is
//! needed (a lost connection, `Client::unconfirmed_publishes`, "is a
//! confirmation PING due") are the kept bytes walked with
//! the core's [`client_command`]: the hot publish path parses nothing. On a
//! disconnect, what is left is the count the client reports
//! ([`Event::Disconnected`](super::Event::Disconnected)`.unconfirmed_publishes`)
//! and, with [`ConnectOptions::resend_unconfirmed`](super::ConnectOptions::resend_unconfirmed),
//! the publishes it queues again (at-least-once).
//!
//! A confirmation PING goes out once `confirm_bytes` were written or
//! `confirm_interval` passed since the last one with publishes written, so
//! the unconfirmed window (and the bytes kept for it) is bounded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use courier_core::nats::{client_command, PingId};

use super::options::Event;
use super::shared::{ConnectionState, Shared};
use super::url::ServerAddr;

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
    /// Written, unconfirmed bytes, from `kept[skip..]`; they start at a
    /// command boundary (a publish cut by a write is kept whole once its
    /// end is written, and not counted before).
    kept: Vec<u8>,
    /// Bytes at the front of `kept` already confirmed (dropped lazily so a
    /// confirmation does not move the rest every time).
    skip: usize,
    /// Stream position of `kept[skip]`.
    kept_start: u64,
    /// Publishes counted one by one, oldest first: vectored publishes (their
    /// payload never enters `kept`) and those of kept bytes walked before a
    /// gap. Each with its end position and, when resending, its wire form.
    whole: VecDeque<(u64, Option<Vec<u8>>)>,
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
            kept: Vec::new(),
            skip: 0,
            kept_start: 0,
            whole: VecDeque::new(),
            pings: VecDeque::with_capacity(16),
            last_ping_position: 0,
            last_ping_at: Instant::now(),
        }
    }

    /// Publishes written and not yet confirmed (walks the kept bytes).
    pub(crate) fn count(&self) -> usize {
        let mut n = self.whole.len();
        each_publish(&self.kept[self.skip..], |_, _| n += 1);
        n
    }

    /// Where the kept bytes end: the next contiguous write starts here.
    fn kept_end(&self) -> u64 {
        self.kept_start + (self.kept.len() - self.skip) as u64
    }

    /// `bytes` were written, starting at stream position `start`.
    pub(crate) fn wrote(&mut self, start: u64, bytes: &[u8]) {
        if start != self.kept_end() {
            self.rebase(start);
        }
        if self.kept.capacity() - self.kept.len() < bytes.len() {
            // Grow once to twice the confirmation window (a PING is due
            // after `confirm_bytes`; its PONG comes a round trip later)
            // instead of doubling whenever a window is the largest yet: the
            // publish path must not allocate in the steady state
            // (tests/alloc_per_message.rs). An allocation this large is
            // mapped lazily, so capacity never written costs no memory.
            let want = (self.kept.len() + bytes.len()).max(2 * self.confirm_bytes as usize);
            self.kept.reserve(want - self.kept.len());
        }
        self.kept.extend_from_slice(bytes);
    }

    /// The next write starts at `start`, not where the kept bytes end (a
    /// vectored publish went in between, or a new connection): the kept
    /// publishes are counted one by one now (the rare path) and the bytes
    /// start over. A command cut at the end of the kept bytes was never
    /// completed: it is not counted, as before.
    fn rebase(&mut self, start: u64) {
        let base = self.kept_start;
        let keep_wire = self.keep_wire;
        let whole = &mut self.whole;
        each_publish(&self.kept[self.skip..], |at, wire| {
            whole.push_back((base + at as u64, keep_wire.then(|| wire.to_vec())));
        });
        self.kept.clear();
        self.skip = 0;
        self.kept_start = start;
    }

    /// A whole publish written on its own (vectored), ending at `end`.
    pub(crate) fn wrote_publish(&mut self, end: u64, wire: impl FnOnce() -> Vec<u8>) {
        let wire = self.keep_wire.then(wire);
        self.rebase(end);
        self.whole.push_back((end, wire));
    }

    /// Whether a confirmation PING is due: none is in flight, publishes are
    /// unconfirmed, and enough bytes or time passed since the last one.
    /// Kept bytes without a publish (PONGs, SUBs) are dropped here, so an
    /// idle connection keeps them one interval at most.
    pub(crate) fn ping_due(&mut self, written_bytes: u64) -> bool {
        self.pings.is_empty()
            && (written_bytes - self.last_ping_position >= self.confirm_bytes
                || self.last_ping_at.elapsed() >= self.confirm_interval)
            && self.holds_a_publish()
    }

    /// Whether a written publish is unconfirmed: usually the first kept
    /// command is one, so this stops at once.
    fn holds_a_publish(&mut self) -> bool {
        if !self.whole.is_empty() {
            return true;
        }
        let kept = &self.kept[self.skip..];
        let mut at = 0;
        while let Some((len, is_publish)) = client_command(&kept[at..]) {
            if is_publish {
                return true;
            }
            at += len;
        }
        // Only other commands, and maybe the start of one: keep that start.
        self.skip += at;
        self.kept_start += at as u64;
        self.compact();
        false
    }

    /// A confirmation PING was queued; it is written at `position`.
    pub(crate) fn pinged(&mut self, id: PingId, position: u64) {
        self.pings.push_back((id, position));
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

    /// Everything up to `position` reached the server: the kept bytes
    /// before it are dropped unread (a PING's position is a command
    /// boundary).
    pub(crate) fn confirm(&mut self, position: u64) {
        while self.whole.front().is_some_and(|(end, _)| *end <= position) {
            self.whole.pop_front();
        }
        if position <= self.kept_start {
            return;
        }
        if position >= self.kept_end() {
            self.kept.clear();
            self.skip = 0;
            self.kept_start = position;
            return;
        }
        let n = (position - self.kept_start) as usize;
        self.skip += n;
        self.kept_start = position;
        self.compact();
    }

    /// Gives the confirmed front of `kept` back once it is most of it.
    fn compact(&mut self) {
        if self.skip == self.kept.len() {
            self.kept.clear();
            self.skip = 0;
        } else if self.skip > self.kept.len() / 2 {
            self.kept.drain(..self.skip);
            self.skip = 0;
        }
    }

    /// The connection is gone: returns the unconfirmed publishes' wire
    /// forms (empty unless resending) and their count, and starts over.
    pub(crate) fn take_lost(&mut self, next_position: u64) -> (Vec<Vec<u8>>, usize) {
        self.rebase(next_position);
        let count = self.whole.len();
        let wires = self.whole.drain(..).filter_map(|(_, w)| w).collect();
        self.pings.clear();
        self.last_ping_position = next_position;
        (wires, count)
    }
}

/// Calls `f(end, wire)` for every whole publish in `bytes` (which start at
/// a command boundary), `end` being its end offset in `bytes`. A command
/// cut at the end is not whole: not counted.
fn each_publish(bytes: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut at = 0;
    while let Some((len, is_publish)) = client_command(&bytes[at..]) {
        if is_publish {
            f(at + len, &bytes[at..at + len]);
        }
        at += len;
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
    fn a_pong_drops_the_confirmed_bytes_and_keeps_the_rest() {
        let mut u = Unconfirmed::new(false, 1 << 20, Duration::from_secs(60));
        let one = b"PUB a 1\r\nx\r\n";
        u.wrote(0, one);
        u.wrote(12, b"PING\r\n");
        u.wrote(18, one);
        u.wrote(30, b"PUB a 1\r\nx");
        assert_eq!(u.count(), 2, "the cut publish is not whole yet");
        u.confirm(18);
        assert_eq!(u.count(), 1);
        assert_eq!(&u.kept[u.skip..], b"PUB a 1\r\nx\r\nPUB a 1\r\nx");
        u.confirm(30);
        assert_eq!(u.count(), 0);
        u.wrote(40, b"\r\n");
        assert_eq!(u.count(), 1, "whole once its end is written");
        u.confirm(42);
        assert_eq!((u.count(), u.kept.len()), (0, 0), "nothing kept");
    }

    #[test]
    fn a_vectored_publish_between_writes_keeps_the_order() {
        let mut u = Unconfirmed::new(true, 1 << 20, Duration::from_secs(60));
        u.wrote(0, b"PUB a 1\r\nx\r\n");
        // A vectored publish of 14 bytes, then the buffer again.
        u.wrote_publish(26, || b"PUB v 2\r\nvv\r\n".to_vec());
        u.wrote(26, b"PUB b 1\r\ny\r\n");
        assert_eq!(u.count(), 3);
        let (wires, count) = u.take_lost(38);
        assert_eq!(count, 3);
        let subjects: Vec<_> = wires
            .iter()
            .map(|w| parse_publish(w).unwrap().subject.to_string())
            .collect();
        assert_eq!(subjects, ["a", "v", "b"]);
        // Confirming past the vectored publish drops it too.
        u.wrote(38, b"PUB c 1\r\nz\r\n");
        u.wrote_publish(64, || b"PUB w 2\r\nww\r\n".to_vec());
        u.confirm(64);
        assert_eq!(u.count(), 0);
    }

    #[test]
    fn kept_bytes_without_a_publish_are_dropped_when_a_ping_would_be_due() {
        let mut u = Unconfirmed::new(false, 20, Duration::from_secs(60));
        for i in 0..10u64 {
            u.wrote(i * 6, b"PONG\r\n");
        }
        assert!(!u.ping_due(60), "no publish: no confirmation ping");
        assert_eq!(u.kept.len() - u.skip, 0, "and the PONGs are not kept");
        u.wrote(60, b"PUB a 1\r\nx\r\n");
        assert!(u.ping_due(72));
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
