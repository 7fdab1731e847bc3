//! The session's transmit queue.
//!
//! One fixed buffer, three regions:
//!
//! ```text
//! start      sendable_end        end
//!   | sendable   |     held       |
//! ```
//!
//! *Sendable* bytes go to the current connection. *Held* bytes are
//! publishes made while not connected; they wait behind the handshake
//! (CONNECT, PING, re-subscriptions), which is inserted in front of them,
//! and are released once the handshake completes.
//!
//! On a reset (transport lost), the half-written command at the front is
//! dropped, session commands meant for the old connection (CONNECT, PING,
//! PONG, SUB, UNSUB) are dropped, and every whole publish not yet written
//! is kept, so nothing the application queued is lost just because the
//! transport failed before it was written. To find command boundaries the
//! queue parses its own (well-formed) output.

use crate::buf::CapacityError;

use super::commands::CommandSink;
use super::parser::parse_decimal;

/// What [`Session::start`](super::Session::start) did with the queued commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResetReport {
    /// Bytes dropped: the half-written command, session commands meant for
    /// the old connection (CONNECT, PING, PONG, SUB, UNSUB) and publishes
    /// that could not be kept.
    pub discarded_bytes: usize,
    /// Publishes dropped: one half written to the lost transport (the
    /// server discards an incomplete command) and, only if the kept ones
    /// plus the next handshake would not fit the transmit buffer, the
    /// newest ones. Zero means no publish was lost by the reset.
    pub discarded_publishes: usize,
    /// Whole publishes not yet written, kept (held) for the next connection.
    pub kept_publishes: usize,
}

pub(crate) struct Outbox<S> {
    storage: S,
    start: usize,
    sendable_end: usize,
    end: usize,
    /// First command start at or after `start` (commands before it were
    /// written whole or in part).
    boundary: usize,
    /// While a header-only publish is being written: the end of its prefix.
    /// Bytes after it wait until the driver sent the payload.
    vectored_end: Option<usize>,
    /// Whether the command ending at `boundary` (written in part when
    /// `start < boundary`) is a publish, for [`Outbox::reset`]'s count.
    partial_is_publish: bool,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> Outbox<S> {
    pub(crate) fn new(storage: S) -> Self {
        Outbox {
            storage,
            start: 0,
            sendable_end: 0,
            end: 0,
            boundary: 0,
            vectored_end: None,
            partial_is_publish: false,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Bytes queued (sendable and held).
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Bytes held back until the handshake completes.
    pub(crate) fn held_len(&self) -> usize {
        self.end - self.sendable_end
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes to write now.
    pub(crate) fn sendable(&self) -> &[u8] {
        let limit = self.vectored_end.unwrap_or(self.sendable_end);
        self.storage
            .as_ref()
            .get(self.start..limit.min(self.sendable_end))
            .unwrap_or_default()
    }

    /// The transport wrote `n` bytes of [`Outbox::sendable`].
    pub(crate) fn consume(&mut self, n: usize) {
        let limit = self.vectored_end.unwrap_or(self.sendable_end);
        self.start = (self.start + n).min(limit).min(self.sendable_end);
        if self.vectored_end.is_some_and(|v| self.start >= v) {
            self.vectored_end = None;
        }
        if self.start == self.end {
            // All written (the steady state of a publish loop): no partial
            // command to track, so skip walking the command boundaries.
            self.start = 0;
            self.sendable_end = 0;
            self.end = 0;
            self.boundary = 0;
            self.partial_is_publish = false;
            return;
        }
        while self.boundary < self.start {
            let rest = self
                .storage
                .as_ref()
                .get(self.boundary..self.end)
                .unwrap_or_default();
            match command_len(rest) {
                Some(len) => {
                    self.partial_is_publish = is_publish(rest);
                    self.boundary += len;
                }
                None => {
                    // Cannot happen with our own output; if it does, treat
                    // everything up to `start` as one command.
                    self.boundary = self.start;
                }
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.sendable_end = 0;
            self.end = 0;
            self.boundary = 0;
        }
    }

    /// Makes room for `len` more bytes at the end, or says how much is
    /// missing; `reserve` bytes must stay free afterwards.
    fn make_room(&mut self, len: usize, reserve: usize) -> Result<(), CapacityError> {
        let capacity = self.capacity();
        let needed = self.len().saturating_add(len).saturating_add(reserve);
        if needed > capacity {
            return Err(CapacityError { needed, capacity });
        }
        if len > capacity - self.end {
            let start = self.start;
            self.storage.as_mut().copy_within(start..self.end, 0);
            self.end -= start;
            self.sendable_end -= start;
            self.boundary -= start;
            self.vectored_end = self.vectored_end.map(|v| v - start);
            self.start = 0;
        }
        Ok(())
    }

    /// Queues a command for the current connection, in front of held bytes.
    pub(crate) fn push_sendable<F: FnOnce(&mut [u8])>(
        &mut self,
        len: usize,
        write: F,
    ) -> Result<(), CapacityError> {
        self.make_room(len, 0)?;
        let (at, end) = (self.sendable_end, self.end);
        let storage = self.storage.as_mut();
        if let Some(out) = storage.get_mut(end..end + len) {
            write(out);
        }
        if end > at {
            if let Some(region) = storage.get_mut(at..end + len) {
                region.rotate_right(len);
            }
        }
        self.end += len;
        self.sendable_end += len;
        Ok(())
    }

    /// Queues a publish behind everything, held until [`Outbox::release`];
    /// `reserve` bytes stay free for the handshake.
    pub(crate) fn push_held<F: FnOnce(&mut [u8])>(
        &mut self,
        len: usize,
        reserve: usize,
        write: F,
    ) -> Result<(), CapacityError> {
        self.make_room(len, reserve)?;
        let end = self.end;
        if let Some(out) = self.storage.as_mut().get_mut(end..end + len) {
            write(out);
        }
        self.end += len;
        Ok(())
    }

    /// Makes the held bytes sendable (the handshake completed).
    pub(crate) fn release(&mut self) {
        self.sendable_end = self.end;
    }

    /// Marks everything queued so far as the prefix of a header-only
    /// publish: later bytes wait until the prefix is written.
    pub(crate) fn mark_vectored(&mut self) {
        self.vectored_end = Some(self.sendable_end);
        self.boundary = self.sendable_end;
        self.partial_is_publish = true;
    }

    /// Number of publishes in the held region (only publishes are held).
    pub(crate) fn held_publishes(&self) -> usize {
        let storage = self.storage.as_ref();
        let mut at = self.sendable_end;
        let mut count = 0;
        while at < self.end {
            let rest = storage.get(at..self.end).unwrap_or_default();
            let Some(len) = command_len(rest) else { break };
            at += len;
            count += 1;
        }
        count
    }

    /// Drops what belonged to the old connection, keeps whole publishes not
    /// yet written (oldest first) up to `keep_limit` bytes, holds them for
    /// the next connection, and says what it discarded and kept.
    pub(crate) fn reset(&mut self, keep_limit: usize) -> ResetReport {
        let before = self.len();
        let mut discarded_publishes =
            usize::from(self.start < self.boundary && self.partial_is_publish);
        let mut kept_publishes = 0;
        let mut full = false;
        let (boundary, sendable_end, end) = (self.boundary, self.sendable_end, self.end);
        let storage = self.storage.as_mut();
        let mut write = 0;
        let mut read = boundary;
        while read < end {
            let rest = storage.get(read..end).unwrap_or_default();
            let Some(len) = command_len(rest) else { break };
            // Held bytes are publishes only; sendable ones may be anything.
            let publish = read >= sendable_end || is_publish(rest);
            if publish {
                // Oldest first: once one does not fit, newer ones are
                // dropped too, so what is kept stays in order.
                full |= write + len > keep_limit;
                if full {
                    discarded_publishes += 1;
                } else {
                    storage.copy_within(read..read + len, write);
                    write += len;
                    kept_publishes += 1;
                }
            }
            read += len;
        }
        self.start = 0;
        self.sendable_end = 0;
        self.end = write;
        self.boundary = 0;
        self.vectored_end = None;
        self.partial_is_publish = false;
        ResetReport {
            discarded_bytes: before - write,
            discarded_publishes,
            kept_publishes,
        }
    }
}

/// A [`CommandSink`] that queues into the sendable region.
pub(crate) struct Sendable<'o, S>(pub(crate) &'o mut Outbox<S>);

impl<S: AsRef<[u8]> + AsMut<[u8]>> CommandSink for Sendable<'_, S> {
    fn append<F: FnOnce(&mut [u8])>(&mut self, len: usize, write: F) -> Result<(), CapacityError> {
        self.0.push_sendable(len, write)
    }
}

/// A [`CommandSink`] that queues into the held region, keeping `reserve`
/// bytes free.
pub(crate) struct Held<'o, S> {
    pub(crate) outbox: &'o mut Outbox<S>,
    pub(crate) reserve: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> CommandSink for Held<'_, S> {
    fn append<F: FnOnce(&mut [u8])>(&mut self, len: usize, write: F) -> Result<(), CapacityError> {
        self.outbox.push_held(len, self.reserve, write)
    }
}

/// The client command our encoders wrote at the front of `bytes`: its
/// length and whether it is a publish (`PUB`/`HPUB`); `None` while `bytes`
/// holds less than one whole command. A driver scans what it wrote with
/// this to count the publishes written since the last confirmation point
/// (PING/PONG), and to keep them for a resend after a reconnect.
pub fn client_command(bytes: &[u8]) -> Option<(usize, bool)> {
    let len = command_len(bytes)?;
    (len <= bytes.len()).then(|| (len, is_publish(bytes)))
}

fn is_publish(command: &[u8]) -> bool {
    command.starts_with(b"PUB ") || command.starts_with(b"HPUB ")
}

/// Length of the command our encoders wrote at the front of `bytes`.
fn command_len(bytes: &[u8]) -> Option<usize> {
    let line_end = bytes.windows(2).position(|w| w == b"\r\n")? + 2;
    if !is_publish(bytes) {
        return Some(line_end);
    }
    let line = bytes.get(..line_end - 2)?;
    let size = line.rsplit(|&b| b == b' ').next()?;
    let size = usize::try_from(parse_decimal(size)?).ok()?;
    Some(line_end + size + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_command_finds_whole_commands_and_publishes() {
        let wire =
            b"PUB a 5\r\nhello\r\nPING\r\nHPUB b r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB c 3\r\nab";
        assert_eq!(client_command(wire), Some((16, true)));
        assert_eq!(client_command(&wire[16..]), Some((6, false)));
        assert_eq!(client_command(&wire[22..]), Some((32, true)));
        // A publish cut before its payload ends is not whole yet.
        assert_eq!(client_command(&wire[54..]), None);
        assert_eq!(&wire[54..58], b"PUB ");
        assert_eq!(client_command(b"PUB a 5\r\nhel"), None);
        assert_eq!(client_command(b"PIN"), None);
    }
    use crate::buf::TxBuf;
    use crate::nats::commands;

    fn outbox() -> Outbox<[u8; 128]> {
        Outbox::new([0u8; 128])
    }

    #[test]
    fn sendable_commands_go_before_held_ones() {
        let mut o = outbox();
        commands::publish(
            &mut Held {
                outbox: &mut o,
                reserve: 0,
            },
            "a",
            None,
            None,
            b"1",
        )
        .unwrap();
        assert_eq!(o.sendable(), b"");
        commands::ping(&mut Sendable(&mut o)).unwrap();
        commands::subscribe(&mut Sendable(&mut o), "s", None, 1).unwrap();
        assert_eq!(o.sendable(), b"PING\r\nSUB s 1\r\n");
        assert_eq!(o.held_len(), 12);
        o.release();
        assert_eq!(o.sendable(), b"PING\r\nSUB s 1\r\nPUB a 1\r\n1\r\n");
    }

    #[test]
    fn held_respects_reserve() {
        let mut o = Outbox::new([0u8; 32]);
        let mut held = Held {
            outbox: &mut o,
            reserve: 20,
        };
        commands::publish(&mut held, "a", None, None, b"1").unwrap();
        assert!(commands::publish(&mut held, "a", None, None, b"1").is_err());
        assert_eq!(o.len(), 12);
    }

    #[test]
    fn reset_keeps_whole_unwritten_publishes_only() {
        let mut o = outbox();
        let mut s = Sendable(&mut o);
        commands::publish(&mut s, "a", None, None, b"one").unwrap();
        commands::ping(&mut s).unwrap();
        commands::publish(&mut s, "b", None, Some(b"NATS/1.0\r\n\r\n"), b"two").unwrap();
        commands::subscribe(&mut s, "c", None, 4).unwrap();
        commands::publish(&mut s, "d", None, None, b"three").unwrap();
        // Half of the first publish went out.
        o.consume(5);
        let report = o.reset(usize::MAX);
        assert_eq!(o.sendable(), b"");
        o.release();
        assert_eq!(
            o.sendable(),
            &b"HPUB b 12 15\r\nNATS/1.0\r\n\r\ntwo\r\nPUB d 5\r\nthree\r\n"[..]
        );
        assert_eq!(
            report,
            ResetReport {
                discarded_bytes: 14 - 5 + 6 + 9,
                discarded_publishes: 1,
                kept_publishes: 2,
            }
        );
    }

    #[test]
    fn reset_honours_keep_limit_oldest_first() {
        let mut o = outbox();
        let mut s = Sendable(&mut o);
        commands::publish(&mut s, "a", None, None, b"1").unwrap();
        commands::publish(&mut s, "b", None, None, b"2").unwrap();
        assert_eq!(
            o.reset(20),
            ResetReport {
                discarded_bytes: 12,
                discarded_publishes: 1,
                kept_publishes: 1,
            }
        );
        o.release();
        assert_eq!(o.sendable(), b"PUB a 1\r\n1\r\n");
    }

    #[test]
    fn vectored_prefix_blocks_later_bytes_until_written() {
        let mut o = outbox();
        commands::publish_header_only(&mut Sendable(&mut o), "a", None, None, 3).unwrap();
        o.mark_vectored();
        commands::pong(&mut Sendable(&mut o)).unwrap();
        assert_eq!(o.sendable(), b"PUB a 3\r\n");
        o.consume(9);
        assert_eq!(o.sendable(), b"PONG\r\n");
        o.consume(6);
        assert!(o.is_empty());
    }

    #[test]
    fn compaction_keeps_regions() {
        let mut o = Outbox::new([0u8; 24]);
        commands::publish(&mut Sendable(&mut o), "a", None, None, b"1234").unwrap();
        o.consume(10);
        commands::publish(
            &mut Held {
                outbox: &mut o,
                reserve: 0,
            },
            "b",
            None,
            None,
            b"5",
        )
        .unwrap();
        commands::ping(&mut Sendable(&mut o)).unwrap();
        assert_eq!(o.sendable(), b"234\r\nPING\r\n");
        o.release();
        assert_eq!(o.sendable(), b"234\r\nPING\r\nPUB b 1\r\n5\r\n");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Publish { held: bool, payload_len: usize },
        Control,
        Consume(usize),
        Release,
        Reset,
    }

    fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (any::<bool>(), 0usize..20).prop_map(|(held, payload_len)| Op::Publish { held, payload_len }),
            2 => Just(Op::Control),
            3 => (0usize..25).prop_map(Op::Consume),
            1 => Just(Op::Release),
            1 => Just(Op::Reset),
        ]
    }

    proptest::proptest! {
        /// Model check: the wire always carries sendable commands in order,
        /// and a reset keeps exactly the publishes that were not started.
        #[test]
        fn outbox_matches_a_simple_model(ops in proptest::collection::vec(op_strategy(), 1..60)) {
            use std::vec::Vec;
            let mut o = Outbox::new([0u8; 160]);
            // Model: commands in the sendable region (with bytes already
            // written of the first one) and in the held region.
            let mut sendable: Vec<Vec<u8>> = Vec::new();
            let mut written = 0usize;
            let mut held: Vec<Vec<u8>> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Publish { held: to_held, payload_len } => {
                        next += 1;
                        let subject = std::format!("p{next}");
                        let payload = std::vec![b'x'; payload_len];
                        let mut bytes = TxBuf::new([0u8; 64]);
                        commands::publish(&mut bytes, &subject, None, None, &payload).unwrap();
                        let ok = if to_held {
                            commands::publish(&mut Held { outbox: &mut o, reserve: 0 }, &subject, None, None, &payload).is_ok()
                        } else {
                            commands::publish(&mut Sendable(&mut o), &subject, None, None, &payload).is_ok()
                        };
                        if ok {
                            if to_held { held.push(bytes.pending().to_vec()) } else { sendable.push(bytes.pending().to_vec()) }
                        }
                    }
                    Op::Control => {
                        if commands::ping(&mut Sendable(&mut o)).is_ok() {
                            sendable.push(b"PING\r\n".to_vec());
                        }
                    }
                    Op::Consume(n) => {
                        let pending: usize = sendable.iter().map(Vec::len).sum::<usize>() - written;
                        let n = n.min(pending);
                        o.consume(n);
                        written += n;
                        while sendable.first().is_some_and(|c| c.len() <= written) {
                            written -= sendable.remove(0).len();
                        }
                    }
                    Op::Release => {
                        o.release();
                        sendable.append(&mut held);
                    }
                    Op::Reset => {
                        let limit = 100;
                        let report = o.reset(limit);
                        let started = usize::from(written > 0);
                        let half_written_publish = started == 1
                            && sendable.first().is_some_and(|c| c.starts_with(b"PUB "));
                        let mut kept: Vec<Vec<u8>> = sendable
                            .drain(..)
                            .skip(started)
                            .filter(|c| c.starts_with(b"PUB "))
                            .collect();
                        kept.append(&mut held);
                        let mut total = 0;
                        let mut dropped = usize::from(half_written_publish);
                        for c in kept {
                            if total + c.len() > limit || dropped > usize::from(half_written_publish) {
                                dropped += 1;
                                continue;
                            }
                            total += c.len();
                            held.push(c);
                        }
                        proptest::prop_assert_eq!(report.discarded_publishes, dropped);
                        proptest::prop_assert_eq!(report.kept_publishes, held.len());
                        proptest::prop_assert_eq!(o.held_publishes(), held.len());
                        written = 0;
                    }
                }
                let expected: Vec<u8> = sendable.concat();
                proptest::prop_assert_eq!(o.sendable(), &expected[written..]);
                proptest::prop_assert_eq!(o.held_len(), held.iter().map(Vec::len).sum::<usize>());
            }
        }
    }
}
