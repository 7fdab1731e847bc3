//! Received messages and header maps, owned but cheap: every part of a
//! message is a `Bytes` window into a large shared chunk (see [`Slab`]), so
//! receiving does not allocate per message.

use std::fmt;

use bytes::{Bytes, BytesMut};
use courier_core::nats::headers::{CheckedBlock, HeaderWriter, Headers};

use super::Error;

/// A NATS header block (`NATS/1.0` + `Name: Value` lines), owned.
///
/// Names compare case-insensitively on lookup and keep their spelling on
/// the wire.
#[derive(Clone)]
pub struct HeaderMap {
    /// The complete wire block, final empty line included.
    raw: Bytes,
    /// Every line passed the full check when it was written (built by
    /// [`HeaderMap::new`]/[`HeaderMap::insert`] or the facade's writer), so
    /// a publish skips the core's per-message re-check. False for a
    /// received block (read leniently: it may hold bad lines).
    checked: bool,
}

impl PartialEq for HeaderMap {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for HeaderMap {}

impl Default for HeaderMap {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            m.entry(&k, &v);
        }
        m.finish()
    }
}

impl HeaderMap {
    /// An empty block.
    pub fn new() -> Self {
        HeaderMap {
            raw: Bytes::from_static(b"NATS/1.0\r\n\r\n"),
            checked: true,
        }
    }

    /// Adds `name: value` (a name may repeat). Fails on a name with spaces or
    /// `:`, or a value with CR/LF, leaving the map unchanged.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<&mut Self, Error> {
        // Validate with the core's writer so both sides agree on the rules.
        let mut check = HeaderWriter::new(vec![0u8; 16 + name.len() + value.len()])
            .map_err(|e| Error::Protocol(e.into()))?;
        check
            .insert(name, value)
            .map_err(|e| Error::Protocol(e.into()))?;
        let mut raw = Vec::with_capacity(self.raw.len() + name.len() + value.len() + 4);
        raw.extend_from_slice(&self.raw[..self.raw.len() - 2]);
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value.as_bytes());
        raw.extend_from_slice(b"\r\n\r\n");
        // A checked field appended to a checked block keeps it checked.
        self.raw = Bytes::from(raw);
        Ok(self)
    }

    /// Builder form of [`HeaderMap::insert`].
    pub fn with(mut self, name: &str, value: &str) -> Result<Self, Error> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// A received block (not trusted for a re-publish).
    pub(crate) fn from_raw(raw: Bytes) -> Self {
        HeaderMap {
            raw,
            checked: false,
        }
    }

    /// A block from courier's own writer that writes only valid lines
    /// (the facade's envelope); debug builds check that it is.
    pub(crate) fn from_checked_raw(raw: Bytes) -> Self {
        debug_assert!(Headers::parse(&raw).is_ok(), "invalid block from a writer");
        HeaderMap { raw, checked: true }
    }

    /// True when the block was built valid (publishes skip the re-check).
    #[cfg(test)]
    pub(crate) fn is_checked(&self) -> bool {
        self.checked
    }

    /// The block to publish: a [`CheckedBlock`] when it was built valid
    /// (no re-check), else the raw bytes the core checks.
    pub(crate) fn publish_form(&self) -> Block<'_> {
        if self.checked {
            Block::Checked(CheckedBlock::from_trusted_writer(&self.raw))
        } else {
            Block::Raw(&self.raw)
        }
    }

    fn parsed(&self) -> Option<Headers<'_>> {
        Headers::parse(&self.raw).ok()
    }

    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.parsed()?.get(name)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.parsed().into_iter().flat_map(move |h| h.get_all(name))
    }

    /// Every `(name, value)` pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.parsed().into_iter().flat_map(|h| h.iter())
    }

    /// Status code of the version line (503 = no responders), if any.
    pub fn status(&self) -> Option<u16> {
        self.parsed()?.status()
    }

    /// The wire block, ready for `HPUB`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// True when there are no fields and no status.
    pub fn is_empty(&self) -> bool {
        self.parsed().is_none_or(|h| h.is_empty())
    }
}

/// A header block on its way to `HPUB`: checked once when written, or raw
/// (checked by the core on every publish).
#[derive(Clone, Copy)]
pub(crate) enum Block<'a> {
    Checked(CheckedBlock<'a>),
    Raw(&'a [u8]),
}

impl<'a> Block<'a> {
    pub(crate) fn as_bytes(self) -> &'a [u8] {
        match self {
            Block::Checked(c) => c.as_bytes(),
            Block::Raw(r) => r,
        }
    }
}

/// A message delivered to a subscriber or as a reply.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    subject: Bytes,
    reply: Option<Bytes>,
    headers: Option<HeaderMap>,
    /// The payload bytes.
    pub payload: Bytes,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject())
            .field("reply", &self.reply())
            .field("headers", &self.headers)
            .field("payload", &self.payload)
            .finish()
    }
}

fn as_str(b: &Bytes) -> &str {
    // Subjects come from the core as &str, so they are UTF-8.
    std::str::from_utf8(b).unwrap_or("")
}

impl Message {
    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        as_str(&self.subject)
    }

    /// Where a reply goes, if the publisher asked for one.
    pub fn reply(&self) -> Option<&str> {
        self.reply.as_ref().map(as_str)
    }

    /// The headers, if it was published with some.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }

    /// Header status code (e.g. 503), if any.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(|h| h.status())
    }
}

/// Copies received messages into large shared chunks and hands out `Bytes`
/// windows: one allocation per chunk (plus one shared header) instead of
/// several per message. A chunk is freed when the last message in it drops.
pub(crate) struct Slab {
    chunk: BytesMut,
    chunk_size: usize,
}

impl Slab {
    pub(crate) fn new(chunk_size: usize) -> Self {
        Slab {
            chunk: BytesMut::new(),
            chunk_size,
        }
    }

    fn copy(&mut self, bytes: &[u8]) -> Bytes {
        self.chunk.extend_from_slice(bytes);
        self.chunk.split().freeze()
    }

    /// Builds an owned [`Message`] from parts borrowed from the receive buffer.
    pub(crate) fn message(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Message {
        let total = subject.len()
            + reply.map_or(0, str::len)
            + headers.map_or(0, <[u8]>::len)
            + payload.len();
        if self.chunk.capacity() - self.chunk.len() < total {
            self.chunk = BytesMut::with_capacity(self.chunk_size.max(total));
        }
        Message {
            subject: self.copy(subject.as_bytes()),
            reply: reply.map(|r| self.copy(r.as_bytes())),
            headers: headers.map(|h| HeaderMap::from_raw(self.copy(h))),
            payload: self.copy(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_round_trips_through_the_wire_form() {
        let h = HeaderMap::new()
            .with("Unit", "celsius")
            .unwrap()
            .with("Unit", "kelvin")
            .unwrap();
        assert_eq!(
            h.as_bytes(),
            b"NATS/1.0\r\nUnit: celsius\r\nUnit: kelvin\r\n\r\n"
        );
        assert_eq!(h.get("unit"), Some("celsius"));
        assert_eq!(h.get_all("UNIT").collect::<Vec<_>>(), ["celsius", "kelvin"]);
        assert!(HeaderMap::new().insert("bad name", "v").is_err());
        assert!(HeaderMap::new().insert("k", "a\r\nb").is_err());
    }

    #[test]
    fn slab_shares_one_chunk_between_messages() {
        let mut slab = Slab::new(1024);
        let a = slab.message("a.b", Some("_INBOX.x"), None, b"hello");
        let b = slab.message("c", None, Some(b"NATS/1.0 503\r\n\r\n"), b"");
        assert_eq!(a.subject(), "a.b");
        assert_eq!(a.reply(), Some("_INBOX.x"));
        assert_eq!(&a.payload[..], b"hello");
        assert_eq!(b.status(), Some(503));
        // Both live in the same chunk: the payload pointers are adjacent.
        let gap = b.subject.as_ptr() as usize - a.payload.as_ptr() as usize;
        assert_eq!(gap, 5);
    }

    #[test]
    fn built_maps_publish_checked_received_ones_raw() {
        let built = HeaderMap::new().with("Unit", "C").unwrap();
        assert!(matches!(built.publish_form(), Block::Checked(_)));
        assert!(Headers::parse(built.as_bytes()).is_ok());
        // A received block may hold lines the full check refuses: it stays
        // raw (checked by the core) even after a valid insert.
        let mut got = HeaderMap::from_raw(Bytes::from_static(b"NATS/1.0\r\nnocolon\r\n\r\n"));
        got.insert("A", "b").unwrap();
        assert!(matches!(got.publish_form(), Block::Raw(_)));
        assert_eq!(got, HeaderMap::from_raw(got.raw.clone()));
    }
}
