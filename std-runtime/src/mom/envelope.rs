//! The envelope every facade message travels in, and its NSQ byte form
//! (NATS and AMQP carry the same fields as headers; see the module docs
//! of [`crate::mom`] for the tables).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::codec::{Compression, Serializer};
use super::Error;
use crate::nats::HeaderMap;

/// Magic of the NSQ envelope (`"MOM1"`).
pub const NSQ_MAGIC: &[u8; 4] = b"MOM1";
/// Fixed part of the NSQ envelope: magic, CRC, timestamp, compression and
/// four length bytes.
pub const NSQ_FIXED_LEN: usize = 4 + 4 + 8 + 1 + 4;

/// Header names on NATS (case as written; NATS headers are case-sensitive
/// on the wire and courier reads them case-insensitively). AMQP uses the
/// lowercase forms as keys of the `headers` table.
pub mod header {
    /// The message name (the routing key / subject / topic it was sent to).
    pub const NAME: &str = "Mom-Name";
    /// The message id (32 lowercase hex digits from courier).
    pub const ID: &str = "Mom-Id";
    /// Creation time, milliseconds since the Unix epoch, decimal.
    pub const TIMESTAMP: &str = "Mom-Timestamp";
    /// CRC-32C (Castagnoli) of the payload as carried, 8 lowercase hex digits.
    pub const CRC32C: &str = "Mom-Crc32c";
    /// `snappy`, `deflate` or `zlib`; absent when not compressed.
    pub const COMPRESSION: &str = "Mom-Compression";
    /// Content type (`application/json`...).
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// Content encoding (`utf-8`, `binary`).
    pub const CONTENT_ENCODING: &str = "Content-Encoding";
}

/// A text field of a received message (name, id, content type...): a
/// view into the bytes the message arrived in (the NATS header block),
/// shared rather than copied, or an owned string. Reads as a `&str`.
#[derive(Clone)]
pub struct Text(TextRepr);

#[derive(Clone)]
enum TextRepr {
    /// `block.as_bytes()[start..end]`, UTF-8 (it came from a `&str`).
    Header {
        block: HeaderMap,
        start: usize,
        end: usize,
    },
    Owned(String),
}

impl Text {
    /// `block.as_bytes()[range]`, which the caller found inside a `&str`
    /// view of the whole block at char boundaries (so it is UTF-8), without
    /// copying or comparing it.
    pub(crate) fn in_block(block: &HeaderMap, range: std::ops::Range<usize>) -> Text {
        debug_assert!(block
            .as_bytes()
            .get(range.clone())
            .is_some_and(|b| std::str::from_utf8(b).is_ok()));
        Text(TextRepr::Header {
            block: block.clone(),
            start: range.start,
            end: range.end,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextRepr::Header { block, start, end } => block
                .as_bytes()
                .get(*start..*end)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            TextRepr::Owned(s) => s,
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(TextRepr::Owned(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(TextRepr::Owned(s.to_string()))
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// A received message, checked (CRC-32C) and decompressed. Its fields
/// share the bytes the message arrived in where the backend allows (NATS:
/// header values and an uncompressed payload are not copied). Those views
/// keep the receive buffer they point into alive: copy out
/// (`payload().to_vec()`, `name.to_string()`) what you keep for long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The name it was sent with (routing key / subject / topic).
    pub name: Text,
    /// The id the sender gave it.
    pub message_id: Text,
    /// When the sender created it, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Content type as sent.
    pub content_type: Option<Text>,
    /// Content encoding as sent.
    pub content_encoding: Option<Text>,
    /// The compression it travelled with (already undone).
    pub compression: Compression,
    /// The payload (decompressed).
    pub payload: Bytes,
}

impl Envelope {
    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Deserializes the payload into `T` with the serializer its content
    /// type names (JSON when it names none it knows).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let s = self
            .content_type
            .as_deref()
            .and_then(Serializer::for_content_type)
            .unwrap_or(Serializer::Json);
        let s = if s == Serializer::Raw {
            Serializer::Json
        } else {
            s
        };
        s.deserialize(&self.payload)
    }
}

/// The fields a sender puts on one message, payload already serialized
/// and compressed.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub name: &'a str,
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub content_type: &'a str,
    pub content_encoding: &'a str,
    pub compression: Compression,
    /// Payload as carried (compressed): the caller's bytes when raw and
    /// not compressed (no copy).
    pub body: Cow<'a, [u8]>,
}

impl Outgoing<'_> {
    /// CRC-32C of the payload as carried.
    pub fn crc(&self) -> u32 {
        crc32c::crc32c(&self.body)
    }
}

/// Fields read from headers/properties on receipt, before the check.
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    pub name: Option<Text>,
    pub id: Option<Text>,
    pub timestamp_ms: Option<u64>,
    pub content_type: Option<Text>,
    pub content_encoding: Option<Text>,
    pub compression: Option<Text>,
    pub crc: Option<Text>,
}

impl Incoming {
    /// Verifies the CRC-32C of `body` (as carried) and decompresses (an
    /// uncompressed body is shared, not copied).
    pub fn open(self, fallback_name: &str, body: &Bytes) -> Result<Envelope, Error> {
        let name = self.name.unwrap_or_else(|| fallback_name.into());
        let id = self.id.unwrap_or_else(|| Text::from(String::new()));
        let crc = self.crc.ok_or_else(|| Error::NotAnEnvelope {
            name: name.to_string(),
            reason: format!("no {} header", header::CRC32C),
        })?;
        let expected = u32::from_str_radix(&crc, 16).map_err(|_| Error::NotAnEnvelope {
            name: name.to_string(),
            reason: format!("{} {crc:?} is not 8 hex digits", header::CRC32C),
        })?;
        let actual = crc32c::crc32c(body);
        if expected != actual {
            return Err(Error::Corrupted {
                name: name.to_string(),
                message_id: id.to_string(),
                expected,
                actual,
            });
        }
        let compression = match self.compression.as_deref() {
            None => Compression::None,
            Some(c) => Compression::from_kombu_header(c).ok_or_else(|| Error::NotAnEnvelope {
                name: name.to_string(),
                reason: format!("unknown compression {c:?}"),
            })?,
        };
        let payload = match compression {
            Compression::None => body.clone(),
            c => Bytes::from(c.decompress(body)?),
        };
        Ok(Envelope {
            payload,
            name,
            message_id: id,
            timestamp_ms: self.timestamp_ms.unwrap_or(0),
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            compression,
        })
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A message id: 32 lowercase hex digits (128 random bits), kept inline
/// (no allocation per message).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageId([u8; 32]);

impl std::ops::Deref for MessageId {
    type Target = str;
    fn deref(&self) -> &str {
        // Only hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId(s.as_bytes().try_into().expect("32 hex digits"))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `v` as `out.len()` lowercase hex digits (the low ones), most
/// significant first.
pub(crate) fn hex_into(mut v: u128, out: &mut [u8]) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// CRC-32C as the 8 lowercase hex digits the envelope carries.
pub(crate) fn crc_hex(crc: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    hex_into(u128::from(crc), &mut out);
    out
}

/// `v` in decimal, written at the end of `buf`; returns the digits.
pub(crate) fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// A fresh message id: 32 lowercase hex digits (128 random bits).
pub(crate) fn new_id() -> MessageId {
    let mut id = [0u8; 32];
    hex_into(fastrand::u128(..), &mut id);
    MessageId(id)
}

fn short_field(what: &str, s: &str) -> Result<u8, Error> {
    u8::try_from(s.len())
        .map_err(|_| Error::Serialize(format!("{what} is {} bytes; at most 255", s.len())))
}

/// Encodes the NSQ envelope (see the module docs' table) into `out`.
pub(crate) fn encode_nsq(m: &Outgoing<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    let lens = [
        short_field("the name", m.name)?,
        short_field("the message id", &m.id)?,
        short_field("the content type", m.content_type)?,
        short_field("the content encoding", m.content_encoding)?,
    ];
    out.clear();
    out.reserve(NSQ_FIXED_LEN + lens.iter().map(|&l| l as usize).sum::<usize>() + m.body.len());
    out.extend_from_slice(NSQ_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&m.timestamp_ms.to_be_bytes());
    out.push(m.compression.code());
    for (len, s) in lens
        .iter()
        .zip([m.name, &*m.id, m.content_type, m.content_encoding])
    {
        out.push(*len);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&m.body);
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Decodes and checks an NSQ envelope; `topic` names it in errors.
pub(crate) fn decode_nsq(topic: &str, bytes: &[u8]) -> Result<Envelope, Error> {
    let not = |reason: String| Error::NotAnEnvelope {
        name: topic.to_string(),
        reason,
    };
    if bytes.len() < NSQ_FIXED_LEN || &bytes[..4] != NSQ_MAGIC {
        return Err(not(format!(
            "{} bytes without the \"MOM1\" magic and fixed header",
            bytes.len()
        )));
    }
    let expected = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&bytes[8..]);
    // Best effort name and id for the report, from a header that may be bad.
    let mut r = Cursor { b: bytes, at: 17 };
    let name = r.field();
    let id = r.field();
    if expected != actual {
        return Err(Error::Corrupted {
            name: name
                .and_then(|n| std::str::from_utf8(n).ok())
                .unwrap_or(topic)
                .to_string(),
            message_id: id
                .and_then(|n| std::str::from_utf8(n).ok())
                .unwrap_or("")
                .to_string(),
            expected,
            actual,
        });
    }
    let timestamp_ms = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let compression = Compression::from_code(bytes[16])
        .ok_or_else(|| not(format!("compression code {}", bytes[16])))?;
    let ct = r.field();
    let ce = r.field();
    let text = |f: Option<&[u8]>, what: &str| -> Result<Text, Error> {
        let f = f.ok_or_else(|| not(format!("the {what} runs past the end")))?;
        std::str::from_utf8(f)
            .map(Text::from)
            .map_err(|_| not(format!("the {what} is not UTF-8")))
    };
    let name = text(name, "name")?;
    let message_id = text(id, "message id")?;
    let ct = text(ct, "content type")?;
    let ce = text(ce, "content encoding")?;
    let body = &bytes[r.at..];
    Ok(Envelope {
        payload: Bytes::from(compression.decompress(body)?),
        name,
        message_id,
        timestamp_ms,
        content_type: (!ct.is_empty()).then_some(ct),
        content_encoding: (!ce.is_empty()).then_some(ce),
        compression,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = *self.b.get(self.at)? as usize;
        let f = self.b.get(self.at + 1..self.at + 1 + len)?;
        self.at += 1 + len;
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn out(body: &[u8], c: Compression) -> Outgoing<'static> {
        Outgoing {
            name: "orders.new",
            id: "0123456789abcdef0123456789abcdef".into(),
            timestamp_ms: 1_700_000_000_123,
            content_type: "application/json",
            content_encoding: "utf-8",
            compression: c,
            body: c.compress(body).unwrap().into(),
        }
    }

    #[test]
    fn nsq_envelope_bytes_are_as_documented() {
        let mut b = Vec::new();
        encode_nsq(&out(b"{}", Compression::None), &mut b).unwrap();
        assert_eq!(&b[..4], b"MOM1");
        assert_eq!(&b[8..16], &1_700_000_000_123u64.to_be_bytes());
        assert_eq!(b[16], 0);
        assert_eq!(b[17], 10);
        assert_eq!(&b[18..28], b"orders.new");
        assert_eq!(b[28], 32);
        assert_eq!(b.len(), NSQ_FIXED_LEN + 10 + 32 + 16 + 5 + 2);
        assert_eq!(&b[b.len() - 2..], b"{}");
        assert_eq!(
            u32::from_be_bytes(b[4..8].try_into().unwrap()),
            crc32c::crc32c(&b[8..])
        );
        let e = decode_nsq("t", &b).unwrap();
        assert_eq!(e.name, "orders.new");
        assert_eq!(&e.payload[..], b"{}");
        assert_eq!(e.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn a_flipped_bit_is_reported_corrupted() {
        let mut b = Vec::new();
        encode_nsq(&out(b"hello world", Compression::Zlib), &mut b).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x10;
        match decode_nsq("t", &b) {
            Err(Error::Corrupted {
                name,
                expected,
                actual,
                ..
            }) => {
                assert_eq!(name, "orders.new");
                assert_ne!(expected, actual);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_nsq("t", b"hello"),
            Err(Error::NotAnEnvelope { .. })
        ));
    }

    #[test]
    fn text_is_a_view_of_the_header_block() {
        let h = HeaderMap::new().with("Mom-Name", "orders.eu").unwrap();
        let at = h
            .as_bytes()
            .windows(9)
            .position(|w| w == b"orders.eu")
            .unwrap();
        let t = Text::in_block(&h, at..at + 9);
        assert!(matches!(t.0, TextRepr::Header { .. }));
        assert_eq!(t, "orders.eu");
        assert_eq!(t.as_ptr(), h.as_bytes()[at..].as_ptr(), "not a copy");
    }

    #[test]
    fn header_envelope_checks_crc() {
        let o = out(b"payload", Compression::Snappy);
        let inc = |crc: String| Incoming {
            name: Some("n".into()),
            crc: Some(crc.into()),
            compression: Some("snappy".into()),
            ..Default::default()
        };
        let body = Bytes::copy_from_slice(&o.body);
        let e = inc(format!("{:08x}", o.crc())).open("x", &body).unwrap();
        assert_eq!(&e.payload[..], b"payload");
        assert!(matches!(
            inc(format!("{:08x}", o.crc() ^ 1)).open("x", &body),
            Err(Error::Corrupted { .. })
        ));
    }

    proptest! {
        #[test]
        fn nsq_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_nsq("t", &bytes);
            let mut with_magic = b"MOM1".to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_nsq("t", &with_magic);
        }

        #[test]
        fn nsq_round_trip(body in proptest::collection::vec(any::<u8>(), 0..500), c in 0u8..4) {
            let c = Compression::from_code(c).unwrap();
            let mut b = Vec::new();
            encode_nsq(&out(&body, c), &mut b).unwrap();
            let e = decode_nsq("t", &b).unwrap();
            prop_assert_eq!(e.payload, body);
            prop_assert_eq!(e.compression, c);
        }
    }
}
