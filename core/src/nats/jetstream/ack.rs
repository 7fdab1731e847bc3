//! Consumer acknowledgements: the metadata JetStream puts in a delivered
//! message's reply subject, and the ack bodies published to it.
//!
//! Reply subject layouts (`$JS.ACK.` then dot-separated tokens):
//! - v1, 9 tokens: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
//! - v2, 11 or more tokens: `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<random>...]`
//!   where the domain `_` means none.

use core::fmt::Write as _;
use core::time::Duration;

use super::api::SliceWriter;
use super::error::JsError;

/// What a consumer message's reply subject says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckMetadata<'a> {
    /// JetStream domain (v2 layout with a domain other than `_`).
    pub domain: Option<&'a str>,
    /// Account hash (v2 layout).
    pub account_hash: Option<&'a str>,
    /// Stream name.
    pub stream: &'a str,
    /// Consumer name.
    pub consumer: &'a str,
    /// How many times it was delivered (1 on the first delivery).
    pub delivered: u64,
    /// Sequence in the stream.
    pub stream_seq: u64,
    /// Sequence in the consumer.
    pub consumer_seq: u64,
    /// When it was stored, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Messages still pending for the consumer after this one.
    pub pending: u64,
}

const NOT_ACK: JsError = JsError::NotJetStreamMessage {
    reason: "the reply subject does not start with $JS.ACK.",
};

fn number(token: &str) -> Result<u64, JsError> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(JsError::NotJetStreamMessage {
            reason: "a numeric token of the $JS.ACK subject is not a number",
        });
    }
    token.parse().map_err(|_| JsError::NotJetStreamMessage {
        reason: "a numeric token of the $JS.ACK subject overflows u64",
    })
}

impl<'a> AckMetadata<'a> {
    /// Parses a reply subject in the v1 or v2 layout.
    pub fn parse(reply: &'a str) -> Result<Self, JsError> {
        let rest = reply.strip_prefix("$JS.ACK.").ok_or(NOT_ACK)?;
        let mut tokens: [&str; 12] = [""; 12];
        let mut n = 0;
        for t in rest.split('.') {
            if n < tokens.len() {
                tokens[n] = t;
            }
            n += 1;
        }
        // n counts tokens after `$JS.ACK` (total minus 2).
        let (domain, account_hash, t) = match n {
            7 => (None, None, &tokens[..7]),
            n if n >= 9 => {
                let domain = match tokens[0] {
                    "_" | "" => None,
                    d => Some(d),
                };
                (domain, Some(tokens[1]), &tokens[2..9])
            }
            _ => {
                return Err(JsError::NotJetStreamMessage {
                    reason: "a $JS.ACK subject has 9 tokens (v1) or 11 or more (v2)",
                })
            }
        };
        if t[0].is_empty() || t[1].is_empty() {
            return Err(JsError::NotJetStreamMessage {
                reason: "empty stream or consumer token in the $JS.ACK subject",
            });
        }
        Ok(AckMetadata {
            domain,
            account_hash,
            stream: t[0],
            consumer: t[1],
            delivered: number(t[2])?,
            stream_seq: number(t[3])?,
            consumer_seq: number(t[4])?,
            timestamp_ns: number(t[5])?,
            pending: number(t[6])?,
        })
    }
}

/// An acknowledgement, published (or requested, for a confirmed ack) to
/// the message's reply subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind<'a> {
    /// `+ACK`: processed; never redelivered.
    Ack,
    /// `-NAK`: redeliver, after `delay` when given (`-NAK {"delay":ns}`).
    Nak(Option<Duration>),
    /// `+WPI`: still working; restarts the ack wait timer.
    InProgress,
    /// `+TERM`: never redeliver (optionally with a reason).
    Term(Option<&'a str>),
}

impl AckKind<'_> {
    /// Writes the ack body into `buf`.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], JsError> {
        let capacity = buf.len();
        let mut w = SliceWriter::new(buf);
        let res = match *self {
            AckKind::Ack => w.write_str("+ACK"),
            AckKind::Nak(None) => w.write_str("-NAK"),
            AckKind::Nak(Some(d)) => write!(
                w,
                "-NAK {{\"delay\":{}}}",
                u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
            ),
            AckKind::InProgress => w.write_str("+WPI"),
            AckKind::Term(None) => w.write_str("+TERM"),
            AckKind::Term(Some(reason)) => write!(w, "+TERM {reason}"),
        };
        res.map_err(|_| JsError::BufferTooSmall {
            what: "ack body",
            capacity,
        })?;
        Ok(w.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_layout() {
        let m = AckMetadata::parse("$JS.ACK.ORDERS.proc.3.1042.17.1700000000123456789.5").unwrap();
        assert_eq!(
            m,
            AckMetadata {
                domain: None,
                account_hash: None,
                stream: "ORDERS",
                consumer: "proc",
                delivered: 3,
                stream_seq: 1042,
                consumer_seq: 17,
                timestamp_ns: 1_700_000_000_123_456_789,
                pending: 5,
            }
        );
    }

    #[test]
    fn v2_layout_with_and_without_domain() {
        let m = AckMetadata::parse("$JS.ACK.hub.ACCHASH.S.c.1.2.3.4.0.rnd").unwrap();
        assert_eq!(m.domain, Some("hub"));
        assert_eq!(m.account_hash, Some("ACCHASH"));
        assert_eq!((m.stream, m.consumer), ("S", "c"));
        assert_eq!(
            (
                m.delivered,
                m.stream_seq,
                m.consumer_seq,
                m.timestamp_ns,
                m.pending
            ),
            (1, 2, 3, 4, 0)
        );
        let m = AckMetadata::parse("$JS.ACK._.H.S.c.1.2.3.4.0").unwrap();
        assert_eq!(m.domain, None);
        // Future servers may append tokens.
        let m = AckMetadata::parse("$JS.ACK._.H.S.c.1.2.3.4.0.r.extra").unwrap();
        assert_eq!(m.pending, 0);
    }

    #[test]
    fn bad_subjects_are_typed_errors() {
        for bad in [
            "_INBOX.x.y",
            "$JS.ACK.S.c.1.2.3.4",
            "$JS.ACK.S.c.1.2.3.4.5.6",
            "$JS.ACK.S.c.x.2.3.4.5",
            "$JS.ACK.S.c.-1.2.3.4.5",
            "$JS.ACK..c.1.2.3.4.5",
            "$JS.ACK.S.c.1.2.3.4.99999999999999999999999",
        ] {
            assert!(
                matches!(
                    AckMetadata::parse(bad),
                    Err(JsError::NotJetStreamMessage { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn ack_bodies() {
        let mut buf = [0u8; 64];
        assert_eq!(AckKind::Ack.encode(&mut buf).unwrap(), b"+ACK");
        assert_eq!(AckKind::Nak(None).encode(&mut buf).unwrap(), b"-NAK");
        assert_eq!(
            AckKind::Nak(Some(Duration::from_millis(1500)))
                .encode(&mut buf)
                .unwrap(),
            br#"-NAK {"delay":1500000000}"#
        );
        assert_eq!(AckKind::InProgress.encode(&mut buf).unwrap(), b"+WPI");
        assert_eq!(AckKind::Term(None).encode(&mut buf).unwrap(), b"+TERM");
        assert_eq!(
            AckKind::Term(Some("bad input")).encode(&mut buf).unwrap(),
            b"+TERM bad input"
        );
        let mut small = [0u8; 6];
        assert!(matches!(
            AckKind::Nak(Some(Duration::from_secs(1))).encode(&mut small),
            Err(JsError::BufferTooSmall { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\$JS\\.ACK\\.[A-Za-z0-9_.]{0,80}") {
            let _ = AckMetadata::parse(&s);
        }

        #[test]
        fn v1_roundtrip(stream in "[A-Za-z0-9_-]{1,16}", consumer in "[A-Za-z0-9_-]{1,16}",
                        nums in proptest::array::uniform5(proptest::num::u64::ANY)) {
            let mut buf = [0u8; 256];
            let mut w = SliceWriter::new(&mut buf);
            write!(w, "$JS.ACK.{stream}.{consumer}.{}.{}.{}.{}.{}", nums[0], nums[1], nums[2], nums[3], nums[4]).unwrap();
            let s = w.into_str();
            let m = AckMetadata::parse(s).unwrap();
            proptest::prop_assert_eq!(m.stream, stream.as_str());
            proptest::prop_assert_eq!(m.consumer, consumer.as_str());
            proptest::prop_assert_eq!([m.delivered, m.stream_seq, m.consumer_seq, m.timestamp_ns, m.pending], nums);
        }
    }
}
