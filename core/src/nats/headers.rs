//! NATS/1.0 header blocks: parsed in place (zero-copy) and written into
//! caller-chosen storage, without allocation.
//!
//! Wire form: `NATS/1.0[ status[ description]]\r\n(Name: Value\r\n)*\r\n`.

use crate::buf::CapacityError;

use super::error::HeaderError;

/// The version line every header block starts with.
pub const VERSION_LINE: &[u8] = b"NATS/1.0";
/// Status of the reply the server sends when a request found no subscriber.
pub const STATUS_NO_RESPONDERS: u16 = 503;

/// A parsed header block borrowing the receive buffer.
///
/// ```
/// use courier_core::nats::headers::Headers;
/// let h = Headers::parse(b"NATS/1.0\r\nUnit: celsius\r\n\r\n").unwrap();
/// assert_eq!(h.get("unit"), Some("celsius"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Headers<'a> {
    /// The whole block as received, version line included.
    raw: &'a [u8],
    /// The `Name: Value` lines (between the version line and the empty line).
    fields: &'a str,
    status: Option<u16>,
    description: &'a str,
}

impl<'a> Headers<'a> {
    /// Parses and validates a header block (all of it: the caller passes
    /// exactly the header bytes of an HMSG). Every field line must be a
    /// valid `Name: Value`; use this for headers about to be sent.
    pub fn parse(raw: &'a [u8]) -> Result<Self, HeaderError> {
        let headers = Self::parse_received(raw)?;
        for line in headers.field_lines() {
            let (name, value) = line.split_once(':').ok_or(HeaderError::InvalidName)?;
            validate_name(name.trim_end())?;
            validate_value(value)?;
        }
        Ok(headers)
    }

    /// Parses a received header block leniently: the version line, status
    /// and final empty line are checked, but field lines that are not
    /// `Name: Value` (another client's bug) are skipped by the iterator
    /// instead of failing the whole message.
    pub fn parse_received(raw: &'a [u8]) -> Result<Self, HeaderError> {
        let rest = raw
            .strip_prefix(VERSION_LINE)
            .ok_or(HeaderError::MissingVersionLine)?;
        let line_end = find_crlf(rest).ok_or(HeaderError::Unterminated)?;
        let (status_line, fields_and_end) = rest.split_at(line_end);
        let fields_and_end = fields_and_end.get(2..).unwrap_or_default();
        let status_line =
            core::str::from_utf8(status_line).map_err(|_| HeaderError::InvalidStatus)?;
        let (status, description) = parse_status(status_line)?;

        // The block ends with an empty line; an inline status-only block
        // (`NATS/1.0 503\r\n\r\n`) has no fields at all.
        let fields = fields_and_end
            .strip_suffix(b"\r\n")
            .ok_or(HeaderError::Unterminated)?;
        let fields = core::str::from_utf8(fields).map_err(|_| HeaderError::InvalidValue)?;
        if !fields.is_empty() && !fields.ends_with("\r\n") {
            return Err(HeaderError::Unterminated);
        }
        Ok(Headers {
            raw,
            fields,
            status,
            description,
        })
    }

    fn field_lines(&self) -> impl Iterator<Item = &'a str> {
        let body = self.fields.strip_suffix("\r\n").unwrap_or(self.fields);
        // `body.split("\r\n")`, without the generic substring searcher.
        let mut rest = Some(body);
        core::iter::from_fn(move || {
            let r = rest?;
            Some(match split_crlf(r) {
                Some((line, tail)) => {
                    rest = Some(tail);
                    line
                }
                None => {
                    rest = None;
                    r
                }
            })
        })
        .filter(|l| !l.is_empty())
    }

    /// The whole block as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Status code of the version line (`503` for no responders), if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Text after the status code (empty when there is none).
    pub fn description(&self) -> &'a str {
        self.description
    }

    /// True for the no-responders status (503).
    pub fn is_no_responders(&self) -> bool {
        self.status == Some(STATUS_NO_RESPONDERS)
    }

    /// Every `(name, value)` pair in order; values are trimmed.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter { rest: self.fields }
    }

    /// First value of `name` (compared case-insensitively, as nats.go's
    /// canonical MIME form makes names effectively case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.get_all(name).next()
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True when there are no `Name: Value` fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A header block known to pass the full check of [`Headers::parse`]:
/// built by [`CheckedBlock::check`], by [`HeaderWriter::checked`], or by a
/// courier writer that only writes valid blocks
/// ([`CheckedBlock::from_trusted_writer`]). Publishing one
/// (`Session::publish_checked`) skips the per-message re-check that a raw
/// `&[u8]` block gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedBlock<'a> {
    raw: &'a [u8],
}

impl<'a> CheckedBlock<'a> {
    /// Checks `raw` fully (as [`Headers::parse`]) once.
    pub fn check(raw: &'a [u8]) -> Result<Self, HeaderError> {
        Headers::parse(raw)?;
        Ok(CheckedBlock { raw })
    }

    /// For a block written by a courier writer whose every constructor
    /// validates names and values (the runtime's `HeaderMap`, the facade's
    /// envelope writer). Not re-checked in release builds: a wrong block
    /// would go on the wire as is and the server would close the
    /// connection with a parser error. Debug builds check it.
    pub fn from_trusted_writer(raw: &'a [u8]) -> Self {
        debug_assert!(Headers::parse(raw).is_ok(), "untrusted header block");
        CheckedBlock { raw }
    }

    /// The block's bytes, ready for `HPUB`.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over the fields of a [`Headers`].
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, rest) = split_crlf(self.rest).unwrap_or((self.rest, ""));
            self.rest = rest;
            // Lines were validated in `parse`; skipping is only a fallback.
            if let Some((name, value)) = line.split_once(':') {
                return Some((name.trim_end(), value.trim()));
            }
        }
    }
}

/// `s.split_once("\r\n")` by a byte scan: the generic substring searcher
/// (`StrSearcher`, set up anew for every call) was the largest cost of
/// reading and checking a header block, which is split a dozen times per
/// message.
fn split_crlf(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = b.get(from..)?.iter().position(|&c| c == b'\n') {
        let at = from + i;
        if at > 0 && b[at - 1] == b'\r' {
            // Both ends are ASCII, so char boundaries.
            return Some((s.get(..at - 1)?, s.get(at + 1..)?));
        }
        from = at + 1;
    }
    None
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn parse_status(line: &str) -> Result<(Option<u16>, &str), HeaderError> {
    let line = line.trim_start();
    if line.is_empty() {
        return Ok((None, ""));
    }
    let (code, description) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::InvalidStatus);
    }
    let code = code.parse().map_err(|_| HeaderError::InvalidStatus)?;
    Ok((Some(code), description.trim()))
}

fn validate_name(name: &str) -> Result<(), HeaderError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(HeaderError::InvalidName);
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), HeaderError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(HeaderError::InvalidValue);
    }
    Ok(())
}

/// Builds a header block in caller storage (`[u8; N]`, `&mut [u8]`, ...).
///
/// The block is complete after every call, so [`HeaderWriter::as_bytes`]
/// can be published at any time.
///
/// ```
/// use courier_core::nats::headers::HeaderWriter;
/// let mut w = HeaderWriter::new([0u8; 64]).unwrap();
/// w.insert("Unit", "celsius").unwrap();
/// assert_eq!(w.as_bytes(), b"NATS/1.0\r\nUnit: celsius\r\n\r\n");
/// ```
pub struct HeaderWriter<S> {
    storage: S,
    /// Bytes used, the final empty line included.
    len: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> HeaderWriter<S> {
    /// Starts an empty block (`NATS/1.0\r\n\r\n`, 12 bytes).
    pub fn new(storage: S) -> Result<Self, HeaderError> {
        let mut w = HeaderWriter { storage, len: 0 };
        w.write_at(0, &[VERSION_LINE, b"\r\n\r\n"])?;
        Ok(w)
    }

    /// Starts a block with a status line, e.g. `NATS/1.0 503\r\n\r\n`
    /// (responders rarely need this; the server writes 503 itself).
    pub fn with_status(storage: S, status: u16, description: &str) -> Result<Self, HeaderError> {
        if !(100..=999).contains(&status) {
            return Err(HeaderError::InvalidStatus);
        }
        validate_value(description)?;
        let mut digits = [0u8; 20];
        let code = crate::buf::format_decimal(u64::from(status), &mut digits);
        let mut w = HeaderWriter { storage, len: 0 };
        let space: &[u8] = if description.is_empty() { b"" } else { b" " };
        w.write_at(
            0,
            &[
                VERSION_LINE,
                b" ",
                code,
                space,
                description.as_bytes(),
                b"\r\n\r\n",
            ],
        )?;
        Ok(w)
    }

    /// Appends `name: value`. Names are kept as given (nats.go compares
    /// canonical MIME case; readers here compare case-insensitively).
    /// On error the block is unchanged.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        validate_name(name)?;
        validate_value(value)?;
        // Overwrite the final empty line, then put it back after the field.
        let at = self.len - 2;
        self.write_at(at, &[name.as_bytes(), b": ", value.as_bytes(), b"\r\n\r\n"])
    }

    /// The complete block, ready for `HPUB`.
    pub fn as_bytes(&self) -> &[u8] {
        self.storage.as_ref().get(..self.len).unwrap_or_default()
    }

    /// Length of the block in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the block has no fields and no status.
    pub fn is_empty(&self) -> bool {
        self.len == VERSION_LINE.len() + 4
    }

    /// The block as a [`CheckedBlock`] (the writer validated every field
    /// it wrote), to publish without a re-check.
    pub fn checked(&self) -> CheckedBlock<'_> {
        CheckedBlock {
            raw: self.as_bytes(),
        }
    }

    /// Parses the block back (for reading what was written).
    pub fn headers(&self) -> Headers<'_> {
        // The writer only ever produces valid blocks.
        Headers::parse(self.as_bytes()).unwrap_or(Headers {
            raw: b"",
            fields: "",
            status: None,
            description: "",
        })
    }

    fn write_at(&mut self, at: usize, parts: &[&[u8]]) -> Result<(), HeaderError> {
        let out = self.storage.as_mut();
        let needed = at + parts.iter().map(|p| p.len()).sum::<usize>();
        if needed > out.len() {
            return Err(HeaderError::Full(CapacityError {
                needed,
                capacity: out.len(),
            }));
        }
        let mut pos = at;
        for p in parts {
            out[pos..pos + p.len()].copy_from_slice(p);
            pos += p.len();
        }
        self.len = pos;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn parses_fields_case_insensitively() {
        let h = Headers::parse(b"NATS/1.0\r\nUnit: celsius\r\nX-Trace: a\r\nx-trace:  b \r\n\r\n")
            .unwrap();
        assert_eq!(h.status(), None);
        assert_eq!(h.get("UNIT"), Some("celsius"));
        assert_eq!(h.get("x-trace"), Some("a"));
        assert_eq!(h.get_all("X-TRACE").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.get("missing"), None);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("Unit", "celsius"), ("X-Trace", "a"), ("x-trace", "b")]
        );
    }

    #[test]
    fn parses_status_lines() {
        let h = Headers::parse(b"NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!(h.status(), Some(503));
        assert!(h.is_no_responders());
        assert_eq!(h.description(), "");
        assert!(h.is_empty());

        let h = Headers::parse(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")
            .unwrap();
        assert_eq!(h.status(), Some(408));
        assert_eq!(h.description(), "Request Timeout");
        assert_eq!(h.get("nats-pending-messages"), Some("1"));
    }

    #[test]
    fn rejects_bad_blocks() {
        assert_eq!(
            Headers::parse(b"HTTP/1.1\r\n\r\n"),
            Err(HeaderError::MissingVersionLine)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nA: b\r\n"),
            Err(HeaderError::Unterminated)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0 5x3\r\n\r\n"),
            Err(HeaderError::InvalidStatus)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nnocolon\r\n\r\n"),
            Err(HeaderError::InvalidName)
        );
        assert_eq!(Headers::parse(b"NATS/1.0"), Err(HeaderError::Unterminated));
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nBad Name: x\r\n\r\n"),
            Err(HeaderError::InvalidName)
        );
    }

    #[test]
    fn received_headers_skip_malformed_lines() {
        let h = Headers::parse_received(b"NATS/1.0\r\nnocolon\r\nBad Name: x\r\nGood: y\r\n\r\n")
            .unwrap();
        assert_eq!(h.get("good"), Some("y"));
        assert_eq!(h.get("bad name"), Some("x"));
        assert_eq!(h.iter().count(), 2);
        assert_eq!(
            Headers::parse_received(b"NATS/1.0\r\nA: b\r\n"),
            Err(HeaderError::Unterminated)
        );
    }

    #[test]
    fn writer_builds_exact_bytes() {
        let mut w = HeaderWriter::new([0u8; 64]).unwrap();
        assert_eq!(w.as_bytes(), b"NATS/1.0\r\n\r\n");
        assert!(w.is_empty());
        w.insert("Unit", "celsius").unwrap();
        w.insert("Room", "1").unwrap();
        assert_eq!(
            w.as_bytes(),
            b"NATS/1.0\r\nUnit: celsius\r\nRoom: 1\r\n\r\n"
        );
        assert_eq!(w.headers().get("room"), Some("1"));

        let w = HeaderWriter::with_status([0u8; 64], 503, "").unwrap();
        assert_eq!(w.as_bytes(), b"NATS/1.0 503\r\n\r\n");
        let w = HeaderWriter::with_status([0u8; 64], 408, "Request Timeout").unwrap();
        assert_eq!(w.as_bytes(), b"NATS/1.0 408 Request Timeout\r\n\r\n");
    }

    #[test]
    fn writer_rejects_bad_input_and_stays_intact() {
        let mut w = HeaderWriter::new([0u8; 24]).unwrap();
        assert_eq!(w.insert("a b", "x"), Err(HeaderError::InvalidName));
        assert_eq!(w.insert("a:b", "x"), Err(HeaderError::InvalidName));
        assert_eq!(w.insert("", "x"), Err(HeaderError::InvalidName));
        assert_eq!(w.insert("a", "x\r\ny"), Err(HeaderError::InvalidValue));
        assert_eq!(
            w.insert("Long", "0123456789"),
            Err(HeaderError::Full(CapacityError {
                needed: 30,
                capacity: 24
            }))
        );
        assert_eq!(w.as_bytes(), b"NATS/1.0\r\n\r\n");
        assert!(matches!(
            HeaderWriter::new([0u8; 4]),
            Err(HeaderError::Full(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(h) = Headers::parse(&bytes) {
                for (n, v) in h.iter() { let _ = (n, v); }
            }
        }

        #[test]
        fn split_crlf_is_split_once(s in "[a\r\n:\u{e9}]{0,24}") {
            prop_assert_eq!(split_crlf(&s), s.split_once("\r\n"));
        }

        /// Whatever the writer accepts (arbitrary names and values, bad
        /// bytes included, a status line too) passes the full check, so
        /// `HeaderWriter::checked` may skip it.
        #[test]
        fn writer_output_always_passes_the_full_check(
            status in proptest::option::of((100u16..1000, "[ -~\r\n]{0,8}")),
            fields in proptest::collection::vec(("[ -~\r\n\t:\u{e9}]{0,8}", "[ -~\r\n\t\u{e9}]{0,12}"), 0..8)
        ) {
            let w = match status {
                Some((code, d)) => HeaderWriter::with_status([0u8; 512], code, &d),
                None => HeaderWriter::new([0u8; 512]),
            };
            let Ok(mut w) = w else { return Ok(()) };
            for (n, v) in &fields { let _ = w.insert(n, v); }
            prop_assert_eq!(CheckedBlock::check(w.as_bytes()), Ok(w.checked()));
        }

        #[test]
        fn written_headers_read_back(
            fields in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[ -~]{0,12}"), 0..6)
        ) {
            let mut w = HeaderWriter::new([0u8; 512]).unwrap();
            for (n, v) in &fields { w.insert(n, v).unwrap(); }
            let h = Headers::parse(w.as_bytes()).unwrap();
            let read: Vec<_> = h.iter().collect();
            prop_assert_eq!(read.len(), fields.len());
            for ((n, v), (rn, rv)) in fields.iter().zip(read) {
                prop_assert_eq!(n.as_str(), rn);
                prop_assert_eq!(v.trim(), rv);
            }
        }
    }
}
