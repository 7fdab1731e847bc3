//! Encoders of client operations.
//!
//! Every encoder validates first and then appends one whole command to a
//! [`CommandSink`] (a [`TxBuf`] or the session's transmit queue): either all
//! of its bytes are written or none, so a full buffer never leaves half a
//! command on the wire.

use serde::Serialize;

use crate::buf::{decimal_len, format_decimal, CapacityError, TxBuf};

use super::error::{Error, SubjectError};
#[cfg(doc)]
use super::subject::validate_publish;
use super::subject::{validate_queue_group, validate_subscribe};

/// The end of every command and of every payload.
pub const CRLF: &[u8] = b"\r\n";
/// Longest CONNECT line this encoder builds (JSON included).
pub const CONNECT_MAX: usize = 2048;
/// `lang` sent in CONNECT.
pub const LANG: &str = "rust";
/// `version` sent in CONNECT: this crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Somewhere whole commands can be appended.
pub trait CommandSink {
    /// Appends exactly `len` bytes filled in by `write`, or nothing (and
    /// says how much room was needed).
    fn append<F: FnOnce(&mut [u8])>(&mut self, len: usize, write: F) -> Result<(), CapacityError>;
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> CommandSink for TxBuf<S> {
    fn append<F: FnOnce(&mut [u8])>(&mut self, len: usize, write: F) -> Result<(), CapacityError> {
        TxBuf::append(self, len, write)
    }
}

/// Appends the concatenation of `parts` as one command.
pub fn append_parts<T: CommandSink + ?Sized>(
    sink: &mut T,
    parts: &[&[u8]],
) -> Result<(), CapacityError> {
    let len = parts.iter().map(|p| p.len()).sum();
    sink.append(len, |out| {
        let mut at = 0;
        for part in parts {
            if let Some(dst) = out.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
    })
}

/// The CONNECT fields (see the NATS client protocol). `None` fields are
/// left out of the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Connect<'a> {
    /// `+OK` after every command.
    pub verbose: bool,
    /// Strict subject checking.
    pub pedantic: bool,
    /// The client requires TLS.
    pub tls_required: bool,
    /// Client name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// Client language ([`LANG`]).
    pub lang: &'a str,
    /// Client version ([`VERSION`]).
    pub version: &'a str,
    /// Protocol version: 1 = INFO updates, headers, no responders.
    pub protocol: u8,
    /// Receive own publishes.
    pub echo: bool,
    /// Headers support.
    pub headers: bool,
    /// 503 replies when a request has no responders.
    pub no_responders: bool,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<&'a str>,
    /// Token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<&'a str>,
    /// Public nkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<&'a str>,
    /// Signature of the server's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<&'a str>,
}

impl Default for Connect<'_> {
    fn default() -> Self {
        Connect {
            verbose: false,
            pedantic: false,
            tls_required: false,
            name: None,
            lang: LANG,
            version: VERSION,
            protocol: 1,
            echo: true,
            headers: true,
            no_responders: true,
            user: None,
            pass: None,
            auth_token: None,
            jwt: None,
            nkey: None,
            sig: None,
        }
    }
}

/// `CONNECT {json}\r\n`. Fails with [`Error::BufferFull`] when the line
/// exceeds [`CONNECT_MAX`] or the sink. Written straight into the sink
/// (no scratch line on the stack).
pub fn connect<T: CommandSink + ?Sized>(sink: &mut T, fields: &Connect<'_>) -> Result<(), Error> {
    let len = connect_line_len(fields)?;
    Ok(sink.append(len, |out| {
        super::connect_json::write_connect_line(fields, out);
    })?)
}

/// The length of the whole `CONNECT {json}\r\n` line for `fields`;
/// [`Error::BufferFull`] beyond [`CONNECT_MAX`].
pub fn connect_line_len(fields: &Connect<'_>) -> Result<usize, Error> {
    let len = super::connect_json::connect_line_len(fields);
    if len > CONNECT_MAX {
        return Err(Error::BufferFull(CapacityError {
            needed: len,
            capacity: CONNECT_MAX,
        }));
    }
    Ok(len)
}

/// Writes the whole `CONNECT {json}\r\n` line into `out` and returns its
/// length (for callers that place the line themselves); nothing useful is
/// written and [`Error::BufferFull`] says the line's length when it does
/// not fit.
#[cfg(test)]
pub fn encode_connect_line(fields: &Connect<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let len = super::connect_json::write_connect_line(fields, out);
    if len > out.len() {
        return Err(Error::BufferFull(CapacityError {
            needed: len,
            capacity: out.len(),
        }));
    }
    Ok(len)
}

/// `PING\r\n`.
pub fn ping<T: CommandSink + ?Sized>(sink: &mut T) -> Result<(), Error> {
    Ok(append_parts(sink, &[b"PING\r\n"])?)
}

/// `PONG\r\n`.
pub fn pong<T: CommandSink + ?Sized>(sink: &mut T) -> Result<(), Error> {
    Ok(append_parts(sink, &[b"PONG\r\n"])?)
}

/// `PUB <subject> [reply] <#bytes>\r\n<payload>\r\n`, or
/// `HPUB <subject> [reply] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n`
/// when `headers` (a complete NATS/1.0 block) is given.
#[cfg(test)]
pub fn publish<T: CommandSink + ?Sized>(
    sink: &mut T,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
) -> Result<(), Error> {
    write_publish(
        sink,
        subject,
        reply,
        headers,
        false,
        payload.len(),
        Some(payload),
    )?;
    Ok(())
}

/// Like [`publish`] but appends only the control line (and the headers)
/// for a payload of `payload_len` bytes, so a driver can send the payload
/// from its own memory (vectored or registered-buffer write). Returns the
/// trailer the driver must send right after the payload (`\r\n`, 2 bytes).
/// (The session calls `write_publish` itself, with its `checked` flag.)
#[cfg(test)]
pub fn publish_header_only<T: CommandSink + ?Sized>(
    sink: &mut T,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload_len: usize,
) -> Result<&'static [u8], Error> {
    write_publish(sink, subject, reply, headers, false, payload_len, None)?;
    Ok(CRLF)
}

/// Validates a publish and returns the bytes it puts on the wire.
pub fn publish_size(
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload_len: usize,
) -> Result<usize, Error> {
    check_publish_subject(subject)?;
    if let Some(r) = reply {
        check_publish_subject(r)?;
    }
    let header_len = headers.map(<[u8]>::len);
    Ok(control_line_len(subject, reply, header_len, payload_len)
        + CRLF.len()
        + header_len.unwrap_or(0)
        + payload_len
        + CRLF.len())
}

/// Checks a publish subject (or reply subject) in ONE pass over its bytes,
/// with the rules and error precedence of [`validate_publish`]: empty,
/// then whitespace or control bytes anywhere, then the first bad token
/// (empty, or a whole-token `*` / `>`). The publish path runs this for
/// every message, so it avoids `validate_publish`'s separate byte scan and
/// `split('.')` walk (the `prop_check_matches_validate_publish` proptest
/// keeps the two equal).
fn check_publish_subject(subject: &str) -> Result<(), SubjectError> {
    let bytes = subject.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(SubjectError::Empty);
    };
    // Fast path, eight bytes at a time: nothing that could be an error (a
    // forbidden byte, a wildcard character, a doubled or outer `.`) means
    // the subject is valid. Anything suspicious takes the exact walk below.
    if first != b'.' && last != b'.' && !suspicious_words(bytes) {
        return Ok(());
    }
    let mut first_bad_token = None;
    let mut token_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if forbidden(b) {
            return Err(SubjectError::Whitespace);
        }
        if b == b'.' {
            if first_bad_token.is_none() {
                first_bad_token = bad_publish_token(bytes.get(token_start..i).unwrap_or_default());
            }
            token_start = i + 1;
        }
    }
    if first_bad_token.is_none() {
        first_bad_token = bad_publish_token(bytes.get(token_start..).unwrap_or_default());
    }
    first_bad_token.map_or(Ok(()), Err)
}

/// Space, tab, CR, LF, every other control byte, and DEL.
#[inline(always)]
fn forbidden(b: u8) -> bool {
    (b <= b' ') | (b == 0x7f)
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
const DOTS: u64 = u64::from_le_bytes([b'.'; 8]);

/// Non-zero when some byte of `x` is below `n` (exact as to whether one
/// is, for `n <= 128`; bytes >= 0x80 never count).
#[inline(always)]
fn any_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

/// Non-zero when some byte of `x` equals `b` (exact as to whether one is).
#[inline(always)]
fn any_equal(x: u64, b: u8) -> u64 {
    any_below(x ^ (ONES * u64::from(b)), 1)
}

/// Whether `bytes` hold anything that could make a publish subject
/// invalid: a byte below `!` or DEL, a `*` or `>`, or two `.` in a row.
/// Never false for a subject [`validate_publish`] rejects, apart from a
/// leading or trailing `.`, which the caller checks. SWAR: eight bytes per
/// step, no branch per byte.
fn suspicious_words(bytes: &[u8]) -> bool {
    let mut found = 0u64;
    let mut prev_last = 0u64; // the byte before this word (0: not a dot)
    let mut check = |x: u64| {
        // Byte i of `shifted` is byte i-1 of the subject.
        let shifted = (x << 8) | prev_last;
        prev_last = x >> 56;
        found |= any_below(x, b' ' + 1)
            | any_equal(x, 0x7f)
            | any_equal(x, b'*')
            | any_equal(x, b'>')
            | any_below((x ^ DOTS) | (shifted ^ DOTS), 1);
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        check(u64::from_le_bytes(w));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Padding `a` is harmless: not suspicious, not a dot.
        let mut w = [b'a'; 8];
        if let Some(dst) = w.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        check(u64::from_le_bytes(w));
    }
    found != 0
}

fn bad_publish_token(token: &[u8]) -> Option<SubjectError> {
    match token {
        [] => Some(SubjectError::EmptyToken),
        [b'*'] | [b'>'] => Some(SubjectError::WildcardInPublish),
        _ => None,
    }
}

/// Length of `PUB <subject> [reply] <#bytes>` (or the HPUB line), without
/// its CRLF.
fn control_line_len(
    subject: &str,
    reply: Option<&str>,
    header_len: Option<usize>,
    payload_len: usize,
) -> usize {
    let reply_len = reply.map_or(0, |r| r.len() + 1);
    match header_len {
        Some(h) => {
            b"HPUB ".len()
                + subject.len()
                + 1
                + reply_len
                + decimal_len(h as u64)
                + 1
                + decimal_len(h.saturating_add(payload_len) as u64)
        }
        None => b"PUB ".len() + subject.len() + 1 + reply_len + decimal_len(payload_len as u64),
    }
}

/// Copies `bytes` to `out[*at..]` and moves `at` past them.
#[inline(always)]
fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(*at..*at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    *at += bytes.len();
}

/// Writes `n` as exactly `digits` decimal digits at `out[*at..]` (the
/// caller sized it with [`decimal_len`]) and moves `at` past them.
#[inline(always)]
fn put_decimal(out: &mut [u8], at: &mut usize, n: usize, digits: usize) {
    if let Some(dst) = out.get_mut(*at..*at + digits) {
        let mut n = n;
        for d in dst.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    *at += digits;
}

/// The PUB/HPUB encoder: each subject is checked in one pass, the command
/// is sized arithmetically, and the bytes are written straight into the
/// sink's room (two `memcpy`s for subject and payload, the rest inline)
/// instead of gathering a dozen slices and copying each. `checked`: the
/// block is a `CheckedBlock`'s, already checked.
pub(crate) fn write_publish<T: CommandSink + ?Sized>(
    sink: &mut T,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    checked: bool,
    payload_len: usize,
    payload: Option<&[u8]>,
) -> Result<(), Error> {
    check_publish_subject(subject)?;
    if let Some(r) = reply {
        check_publish_subject(r)?;
    }
    if let Some(h) = headers.filter(|_| !checked) {
        super::headers::Headers::parse(h)?;
    }
    let header_len = headers.map(<[u8]>::len);
    let headers = headers.unwrap_or_default();
    let len = control_line_len(subject, reply, header_len, payload_len)
        + CRLF.len()
        + headers.len()
        + payload.map_or(0, |p| p.len() + CRLF.len());
    sink.append(len, |out| {
        let mut at = 0;
        let op: &[u8] = if header_len.is_some() {
            b"HPUB "
        } else {
            b"PUB "
        };
        put(out, &mut at, op);
        put(out, &mut at, subject.as_bytes());
        put(out, &mut at, b" ");
        if let Some(r) = reply {
            put(out, &mut at, r.as_bytes());
            put(out, &mut at, b" ");
        }
        if let Some(h) = header_len {
            put_decimal(out, &mut at, h, decimal_len(h as u64));
            put(out, &mut at, b" ");
            let total = h.saturating_add(payload_len);
            put_decimal(out, &mut at, total, decimal_len(total as u64));
        } else {
            put_decimal(out, &mut at, payload_len, decimal_len(payload_len as u64));
        }
        put(out, &mut at, CRLF);
        put(out, &mut at, headers);
        if let Some(p) = payload {
            put(out, &mut at, p);
            put(out, &mut at, CRLF);
        }
    })?;
    Ok(())
}

/// `SUB <subject> [queue group] <sid>\r\n`.
pub fn subscribe<T: CommandSink + ?Sized>(
    sink: &mut T,
    subject: &str,
    queue: Option<&str>,
    sid: u64,
) -> Result<(), Error> {
    let len = subscribe_size(subject, queue, sid)?;
    sink.append(len, |out| {
        let mut at = 0;
        put(out, &mut at, b"SUB ");
        put(out, &mut at, subject.as_bytes());
        put(out, &mut at, b" ");
        if let Some(q) = queue {
            put(out, &mut at, q.as_bytes());
            put(out, &mut at, b" ");
        }
        put_decimal_u64(out, &mut at, sid);
        put(out, &mut at, CRLF);
    })?;
    Ok(())
}

/// Validates a subscription and returns the bytes its SUB puts on the wire.
pub fn subscribe_size(subject: &str, queue: Option<&str>, sid: u64) -> Result<usize, Error> {
    validate_subscribe(subject)?;
    if let Some(q) = queue {
        validate_queue_group(q)?;
    }
    Ok(sub_len(subject, queue, sid))
}

/// Bytes of `SUB <subject> [queue] <sid>\r\n` (no validation).
pub(crate) fn sub_len(subject: &str, queue: Option<&str>, sid: u64) -> usize {
    b"SUB ".len()
        + subject.len()
        + 1
        + queue.map_or(0, |q| q.len() + 1)
        + decimal_len(sid)
        + CRLF.len()
}

/// `UNSUB <sid>[ <max>]\r\n`: unsubscribe now, or after `max` messages in
/// total.
pub fn unsubscribe<T: CommandSink + ?Sized>(
    sink: &mut T,
    sid: u64,
    max: Option<u64>,
) -> Result<(), Error> {
    sink.append(unsubscribe_size(sid, max), |out| {
        let mut at = 0;
        put(out, &mut at, b"UNSUB ");
        put_decimal_u64(out, &mut at, sid);
        if let Some(m) = max {
            put(out, &mut at, b" ");
            put_decimal_u64(out, &mut at, m);
        }
        put(out, &mut at, CRLF);
    })?;
    Ok(())
}

/// The bytes `UNSUB <sid>[ <max>]\r\n` puts on the wire.
pub fn unsubscribe_size(sid: u64, max: Option<u64>) -> usize {
    b"UNSUB ".len() + decimal_len(sid) + max.map_or(0, |m| 1 + decimal_len(m)) + CRLF.len()
}

/// The bytes `PING\r\n` (and `PONG\r\n`) put on the wire.
pub const PING_SIZE: usize = 6;

/// [`put_decimal`] of a `u64`, sized here.
#[inline(always)]
fn put_decimal_u64(out: &mut [u8], at: &mut usize, n: u64) {
    let mut digits = [0u8; 20];
    put(out, at, format_decimal(n, &mut digits));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::error::{HeaderError, SubjectError};

    fn encoded(f: impl FnOnce(&mut TxBuf<[u8; 512]>) -> Result<(), Error>) -> std::vec::Vec<u8> {
        let mut tx = TxBuf::new([0u8; 512]);
        f(&mut tx).unwrap();
        tx.pending().to_vec()
    }

    #[test]
    fn ping_pong() {
        assert_eq!(encoded(ping), b"PING\r\n");
        assert_eq!(encoded(pong), b"PONG\r\n");
    }

    #[test]
    fn pub_and_hpub_exact_bytes() {
        assert_eq!(
            encoded(|t| publish(t, "a.b", None, None, b"hello")),
            b"PUB a.b 5\r\nhello\r\n"
        );
        assert_eq!(
            encoded(|t| publish(t, "a.b", Some("_INBOX.x.1"), None, b"")),
            b"PUB a.b _INBOX.x.1 0\r\n\r\n"
        );
        let headers = b"NATS/1.0\r\nUnit: C\r\n\r\n";
        assert_eq!(
            encoded(|t| publish(t, "a", None, Some(headers), b"hi")),
            b"HPUB a 21 23\r\nNATS/1.0\r\nUnit: C\r\n\r\nhi\r\n"
        );
        assert_eq!(
            encoded(|t| publish(t, "a", Some("r"), Some(headers), b"")),
            b"HPUB a r 21 21\r\nNATS/1.0\r\nUnit: C\r\n\r\n\r\n"
        );
        assert_eq!(publish_size("a.b", None, None, 5).unwrap(), 18);
        assert_eq!(publish_size("a", None, Some(headers), 2).unwrap(), 39);
    }

    #[test]
    fn header_only_publish_leaves_payload_to_the_driver() {
        let mut tx = TxBuf::new([0u8; 64]);
        let trailer = publish_header_only(&mut tx, "a", None, None, 1000).unwrap();
        assert_eq!(tx.pending(), b"PUB a 1000\r\n");
        assert_eq!(trailer, b"\r\n");
        let mut tx = TxBuf::new([0u8; 64]);
        let trailer =
            publish_header_only(&mut tx, "a", Some("r"), Some(b"NATS/1.0\r\n\r\n"), 3).unwrap();
        assert_eq!(tx.pending(), b"HPUB a r 12 15\r\nNATS/1.0\r\n\r\n");
        assert_eq!(trailer.len(), 2);
    }

    #[test]
    fn sub_unsub_exact_bytes() {
        assert_eq!(encoded(|t| subscribe(t, "a.*", None, 1)), b"SUB a.* 1\r\n");
        assert_eq!(
            encoded(|t| subscribe(t, "a.>", Some("workers"), 42)),
            b"SUB a.> workers 42\r\n"
        );
        assert_eq!(encoded(|t| unsubscribe(t, 42, None)), b"UNSUB 42\r\n");
        assert_eq!(encoded(|t| unsubscribe(t, 7, Some(20))), b"UNSUB 7 20\r\n");
    }

    #[test]
    fn connect_exact_json() {
        let fields = Connect {
            name: Some("edge-1"),
            version: "0.1.0",
            ..Connect::default()
        };
        assert_eq!(
            std::str::from_utf8(&encoded(|t| connect(t, &fields))).unwrap(),
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"edge-1\",\
             \"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"echo\":true,\"headers\":true,\
             \"no_responders\":true}\r\n"
        );
        let fields = Connect {
            verbose: true,
            version: "0.1.0",
            user: Some("al\"ice"),
            pass: Some("s3cr\\t"),
            auth_token: Some("tok"),
            jwt: Some("J"),
            nkey: Some("N"),
            sig: Some("S"),
            echo: false,
            ..Connect::default()
        };
        assert_eq!(
            std::str::from_utf8(&encoded(|t| connect(t, &fields))).unwrap(),
            "CONNECT {\"verbose\":true,\"pedantic\":false,\"tls_required\":false,\
             \"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"echo\":false,\"headers\":true,\
             \"no_responders\":true,\"user\":\"al\\\"ice\",\"pass\":\"s3cr\\\\t\",\"auth_token\":\"tok\",\
             \"jwt\":\"J\",\"nkey\":\"N\",\"sig\":\"S\"}\r\n"
        );
    }

    #[test]
    fn connect_line_too_long_is_typed() {
        let mut out = [0u8; 40];
        // The error says the whole line's length, not just "one more".
        let whole = connect_line_len(&Connect::default()).unwrap();
        assert!(whole > 150, "{whole}");
        assert_eq!(
            encode_connect_line(&Connect::default(), &mut out),
            Err(Error::BufferFull(CapacityError {
                needed: whole,
                capacity: 40
            }))
        );
        let long = "n".repeat(CONNECT_MAX);
        let fields = Connect {
            name: Some(&long),
            ..Connect::default()
        };
        assert_eq!(
            connect_line_len(&fields),
            Err(Error::BufferFull(CapacityError {
                needed: whole + ",'name':''".len() + CONNECT_MAX,
                capacity: CONNECT_MAX
            }))
        );
        let mut tx = TxBuf::new([0u8; 32]);
        assert!(matches!(
            connect(&mut tx, &Connect::default()),
            Err(Error::BufferFull(_))
        ));
        assert!(tx.is_empty());
    }

    #[test]
    fn invalid_input_is_rejected_before_writing() {
        let mut tx = TxBuf::new([0u8; 64]);
        assert_eq!(
            publish(&mut tx, "a.*", None, None, b"x"),
            Err(Error::InvalidSubject(SubjectError::WildcardInPublish))
        );
        assert_eq!(
            publish(&mut tx, "a", Some("bad reply"), None, b"x"),
            Err(Error::InvalidSubject(SubjectError::Whitespace))
        );
        assert_eq!(
            publish(&mut tx, "a", None, Some(b"garbage"), b"x"),
            Err(Error::InvalidHeader(HeaderError::MissingVersionLine))
        );
        assert_eq!(
            subscribe(&mut tx, "a b", None, 1),
            Err(Error::InvalidSubject(SubjectError::Whitespace))
        );
        assert_eq!(
            subscribe(&mut tx, "a", Some("q*"), 1),
            Err(Error::InvalidSubject(SubjectError::InvalidQueueGroup))
        );
        assert!(tx.is_empty());
    }

    #[test]
    fn one_pass_subject_check_keeps_the_error_precedence() {
        use crate::nats::subject::validate_publish;
        for s in [
            "",
            "a",
            "a.b",
            ".a",
            "a.",
            "a..b",
            "*",
            "a.*",
            "a.>",
            "a.>.b",
            "a*",
            "a.b>",
            "a b",
            "a.\tb",
            ".*",
            "*.",
            "a. .b",
            "..*",
            "a.\x7f",
            "é.ü",
            ">x.*",
            "abcdefg..x",
            "abcdefgh.",
            "abcdefgh.*",
            "abcdefghijklmno\x01",
            "abcdefgh>",
            "abcdefgh.x",
        ] {
            assert_eq!(check_publish_subject(s), validate_publish(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_check_matches_validate_publish(s in "[ab.*> \t\x7f\x01é]{0,20}") {
            proptest::prop_assert_eq!(
                check_publish_subject(&s),
                crate::nats::subject::validate_publish(&s)
            );
        }

        #[test]
        fn prop_publish_bytes_match_the_protocol(
            subject in "[a-z]{1,8}(\\.[a-z0-9_]{1,8}){0,3}",
            reply in proptest::option::of("_INBOX\\.[a-z0-9]{1,12}"),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            with_headers in proptest::bool::ANY,
        ) {
            let headers: &[u8] = b"NATS/1.0\r\nK: v\r\n\r\n";
            let mut tx = TxBuf::new([0u8; 512]);
            publish(&mut tx, &subject, reply.as_deref(), with_headers.then_some(headers), &payload)
                .unwrap();
            let reply_part = reply.as_ref().map(|r| std::format!("{r} ")).unwrap_or_default();
            let mut expected = if with_headers {
                std::format!(
                    "HPUB {subject} {reply_part}{} {}\r\n",
                    headers.len(),
                    headers.len() + payload.len()
                )
                .into_bytes()
            } else {
                std::format!("PUB {subject} {reply_part}{}\r\n", payload.len()).into_bytes()
            };
            if with_headers {
                expected.extend_from_slice(headers);
            }
            expected.extend_from_slice(&payload);
            expected.extend_from_slice(b"\r\n");
            proptest::prop_assert_eq!(tx.pending(), &expected[..]);
            proptest::prop_assert_eq!(
                publish_size(&subject, reply.as_deref(), with_headers.then_some(headers), payload.len())
                    .unwrap(),
                expected.len()
            );
        }
    }

    #[test]
    fn sub_unsub_ping_sizes_match_the_wire() {
        let cases: [(&str, Option<&str>, u64); 3] = [
            ("a", None, 1),
            ("telemetry.>", Some("workers"), 42),
            ("x.*", None, u64::MAX),
        ];
        for (subject, queue, sid) in cases {
            let wire = encoded(|t| subscribe(t, subject, queue, sid));
            assert_eq!(subscribe_size(subject, queue, sid).unwrap(), wire.len());
            for max in [None, Some(0), Some(7), Some(u64::MAX)] {
                let wire = encoded(|t| unsubscribe(t, sid, max));
                assert_eq!(unsubscribe_size(sid, max), wire.len(), "{wire:?}");
            }
        }
        assert_eq!(
            encoded(|t| subscribe(t, "telemetry.>", Some("workers"), 42)),
            b"SUB telemetry.> workers 42\r\n"
        );
        assert_eq!(encoded(|t| unsubscribe(t, 9, Some(10))), b"UNSUB 9 10\r\n");
        assert_eq!(encoded(|t| unsubscribe(t, 9, None)), b"UNSUB 9\r\n");
        assert_eq!(encoded(ping).len(), PING_SIZE);
        assert_eq!(encoded(pong).len(), PING_SIZE);
        assert!(subscribe_size("a b", None, 1).is_err());
        assert!(subscribe_size("a", Some("q q"), 1).is_err());
    }

    #[test]
    fn full_buffer_writes_nothing() {
        let mut tx = TxBuf::new([0u8; 16]);
        publish(&mut tx, "a", None, None, b"1").unwrap();
        assert_eq!(tx.pending(), b"PUB a 1\r\n1\r\n");
        assert_eq!(
            publish(&mut tx, "a", None, None, b"2"),
            Err(Error::BufferFull(CapacityError {
                needed: 24,
                capacity: 16
            }))
        );
        assert_eq!(
            subscribe(&mut tx, "abc", None, 1),
            Err(Error::BufferFull(CapacityError {
                needed: 23,
                capacity: 16
            }))
        );
        assert_eq!(tx.pending(), b"PUB a 1\r\n1\r\n");
        let huge = [b'x'; 100];
        assert_eq!(
            publish(&mut TxBuf::new([0u8; 16]), "a", None, None, &huge),
            Err(Error::BufferFull(CapacityError {
                needed: 113,
                capacity: 16
            }))
        );
    }
}
