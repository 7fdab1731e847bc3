//! Encoders for the commands a client sends to nsqd.
//!
//! Every encoder appends one whole command to a [`TxBuf`] or nothing at all
//! (the buffer's all-or-nothing rule), and validates names and sizes before
//! writing so nsqd never has to reject a command with a fatal error.
//!
//! Bodies (PUB, DPUB, MPUB) can be copied into the buffer, or only their
//! header written (`*_header`) so the driver sends the body from the
//! caller's slice with a vectored write.

use core::fmt;

use serde::Serialize;

use crate::buf::{decimal_len, format_decimal, CapacityError, TxBuf};
use crate::nsq::frame::MessageId;

/// The 4-byte protocol magic a client writes first: two spaces and `V2`.
pub const MAGIC_V2: &[u8; 4] = b"  V2";

/// Longest IDENTIFY JSON body the encoder produces (serialised on the stack).
pub const IDENTIFY_BODY_MAX: usize = 1024;

/// Longest topic or channel name nsqd accepts (including `#ephemeral`).
pub const MAX_NAME_LEN: usize = 64;

/// Suffix that makes a topic or channel ephemeral (not persisted to disk).
pub const EPHEMERAL_SUFFIX: &str = "#ephemeral";

/// IDENTIFY settings, serialised as nsqd's JSON body.
///
/// `None` fields are left out so nsqd keeps its defaults. nsqd's special
/// values apply: `-1` disables heartbeats / output buffering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Identify<'a> {
    /// Identifier shown in nsqadmin (go-nsq uses the short hostname).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// Hostname shown in nsqadmin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<&'a str>,
    /// Client library name/version, e.g. `courier/0.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// Ask nsqd to answer with its settings as JSON (needed for TLS,
    /// compression, auth and `max_rdy_count`); otherwise it answers `OK`.
    pub feature_negotiation: bool,
    /// Milliseconds between heartbeats (1000..=nsqd's max), `-1` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<i64>,
    /// Bytes nsqd buffers before writing to this client, `-1` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_buffer_size: Option<i64>,
    /// Milliseconds nsqd waits before flushing its buffer, `-1` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_buffer_timeout: Option<i64>,
    /// Upgrade the connection to TLS after the IDENTIFY response.
    pub tls_v1: bool,
    /// Wrap the connection in framed snappy.
    pub snappy: bool,
    /// Wrap the connection in raw DEFLATE.
    pub deflate: bool,
    /// DEFLATE level 1..=nsqd's `--max-deflate-level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deflate_level: Option<u8>,
    /// Percentage (0..=99) of messages nsqd should send this client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u8>,
    /// Milliseconds before nsqd redelivers an un-FINished message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_timeout: Option<u32>,
}

/// Which name a [`NameError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NameKind {
    /// A topic name.
    Topic,
    /// A channel name.
    Channel,
}

/// Why a topic or channel name is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NameProblem {
    /// The name is empty (or only `#ephemeral`).
    Empty,
    /// The name is longer than 64 bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A byte outside `[.a-zA-Z0-9_-]` (before an optional `#ephemeral`).
    InvalidByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the name.
        at: usize,
    },
}

/// A topic or channel name nsqd would reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NameError {
    /// Topic or channel.
    pub kind: NameKind,
    /// What is wrong.
    pub problem: NameProblem,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NameKind::Topic => "topic",
            NameKind::Channel => "channel",
        };
        match self.problem {
            NameProblem::Empty => write!(f, "{kind} name is empty")?,
            NameProblem::TooLong { len } => {
                write!(f, "{kind} name is {len} bytes, longer than {MAX_NAME_LEN}")?
            }
            NameProblem::InvalidByte { byte, at } => write!(
                f,
                "{kind} name has the byte {:?} at offset {at}",
                byte as char
            )?,
        }
        write!(
            f,
            "; use 1-64 characters from [.a-zA-Z0-9_-], optionally ending in {EPHEMERAL_SUFFIX}"
        )
    }
}

impl core::error::Error for NameError {}

/// Checks a name the way nsqd does: 1..=64 bytes of `[.a-zA-Z0-9_-]`,
/// optionally followed by `#ephemeral` (counted in the 64).
pub fn validate_name(name: &str, kind: NameKind) -> Result<(), NameError> {
    let err = |problem| Err(NameError { kind, problem });
    if name.len() > MAX_NAME_LEN {
        return err(NameProblem::TooLong { len: name.len() });
    }
    let base = name.strip_suffix(EPHEMERAL_SUFFIX).unwrap_or(name);
    if base.is_empty() {
        return err(NameProblem::Empty);
    }
    if let Some((at, &byte)) = base
        .as_bytes()
        .iter()
        .enumerate()
        .find(|(_, &b)| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    {
        return err(NameProblem::InvalidByte { byte, at });
    }
    Ok(())
}

/// A command that could not be encoded. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandError {
    /// The transmit buffer has no room: flush it (if `needed <= capacity`)
    /// or use a bigger one.
    Capacity(CapacityError),
    /// A topic or channel name nsqd would reject.
    InvalidName(NameError),
    /// PUB/DPUB with an empty body, or an MPUB containing an empty message:
    /// nsqd rejects these and closes the connection.
    EmptyMessage,
    /// MPUB with no messages.
    EmptyBatch,
    /// A body longer than the 4-byte size prefix can express.
    BodyTooLarge {
        /// The body's length.
        len: usize,
    },
    /// The IDENTIFY JSON does not fit in [`IDENTIFY_BODY_MAX`] bytes.
    IdentifyTooLarge,
    /// An IDENTIFY setting nsqd would reject (it answers `E_BAD_BODY` and
    /// hangs up); the text names the field and the accepted values.
    InvalidIdentify(&'static str),
}

impl From<CapacityError> for CommandError {
    fn from(e: CapacityError) -> Self {
        CommandError::Capacity(e)
    }
}

impl From<NameError> for CommandError {
    fn from(e: NameError) -> Self {
        CommandError::InvalidName(e)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Capacity(e) => write!(
                f,
                "command does not fit in the transmit buffer ({e}); flush pending bytes or use a bigger transmit buffer"
            ),
            CommandError::InvalidName(e) => write!(f, "{e}"),
            CommandError::EmptyMessage => f.write_str(
                "cannot publish an empty message: nsqd rejects it and closes the connection",
            ),
            CommandError::EmptyBatch => f.write_str("MPUB needs at least one message"),
            CommandError::BodyTooLarge { len } => write!(
                f,
                "body of {len} bytes exceeds the protocol's 2 GiB limit (and nsqd's --max-body-size)"
            ),
            CommandError::IdentifyTooLarge => write!(
                f,
                "IDENTIFY JSON exceeds {IDENTIFY_BODY_MAX} bytes; shorten client_id, hostname or user_agent"
            ),
            CommandError::InvalidIdentify(rule) => write!(f, "invalid IDENTIFY setting: {rule}"),
        }
    }
}

impl core::error::Error for CommandError {}

impl Identify<'_> {
    /// Checks the settings nsqd validates regardless of its configuration
    /// (upper limits depend on nsqd's flags and are checked by nsqd).
    pub fn validate(&self) -> Result<(), CommandError> {
        let rule = |ok: bool, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(CommandError::InvalidIdentify(rule))
            }
        };
        rule(
            matches!(self.heartbeat_interval, None | Some(-1 | 0) | Some(1000..)),
            "heartbeat_interval must be -1 (disabled), 0 (nsqd's default) or at least 1000 ms",
        )?;
        rule(
            matches!(self.output_buffer_size, None | Some(-1 | 0) | Some(64..)),
            "output_buffer_size must be -1 (disabled), 0 (nsqd's default) or at least 64 bytes",
        )?;
        rule(
            matches!(self.output_buffer_timeout, None | Some(-1..)),
            "output_buffer_timeout must be -1 (disabled), 0 (nsqd's default) or a positive number of ms",
        )?;
        rule(
            matches!(self.sample_rate, None | Some(0..=99)),
            "sample_rate must be 0..=99 percent",
        )?;
        rule(
            matches!(self.msg_timeout, None | Some(0) | Some(1000..)),
            "msg_timeout must be 0 (nsqd's default) or at least 1000 ms",
        )?;
        rule(
            matches!(self.deflate_level, None | Some(1..=9)),
            "deflate_level must be 1..=9",
        )?;
        rule(
            !(self.snappy && self.deflate),
            "snappy and deflate cannot both be enabled; pick one",
        )
    }
}

/// One piece of a command.
enum Part<'a> {
    Bytes(&'a [u8]),
    Decimal(u64),
    Size(u32),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::Decimal(n) => decimal_len(*n),
            Part::Size(_) => 4,
        }
    }
}

/// Appends the concatenation of `parts` as one command.
fn append<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    parts: &[Part<'_>],
) -> Result<(), CommandError> {
    let len = parts.iter().map(Part::len).sum();
    tx.append(len, |out| {
        let mut at = 0;
        let mut digits = [0u8; 20];
        for part in parts {
            let bytes: &[u8] = match part {
                Part::Bytes(b) => b,
                Part::Decimal(n) => format_decimal(*n, &mut digits),
                Part::Size(n) => &n.to_be_bytes()[..],
            };
            // `out` is exactly `len` bytes, the sum of the parts' lengths.
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        }
    })?;
    Ok(())
}

/// The 4-byte size prefix for a body, checked against `i32::MAX`.
fn body_size(len: usize) -> Result<u32, CommandError> {
    match i32::try_from(len) {
        Ok(n) => Ok(n as u32),
        Err(_) => Err(CommandError::BodyTooLarge { len }),
    }
}

fn topic_ok(topic: &str) -> Result<(), CommandError> {
    Ok(validate_name(topic, NameKind::Topic)?)
}

/// Writes the protocol magic `"  V2"` (first bytes on every connection).
pub fn encode_magic<S: AsRef<[u8]> + AsMut<[u8]>>(tx: &mut TxBuf<S>) -> Result<(), CommandError> {
    append(tx, &[Part::Bytes(MAGIC_V2)])
}

/// Writes `IDENTIFY\n[size][json]`.
pub fn encode_identify<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    identify: &Identify<'_>,
) -> Result<(), CommandError> {
    identify.validate()?;
    let mut json = [0u8; IDENTIFY_BODY_MAX];
    let len = serde_json_core::to_slice(identify, &mut json)
        .map_err(|_| CommandError::IdentifyTooLarge)?;
    let body = json.get(..len).ok_or(CommandError::IdentifyTooLarge)?;
    append(
        tx,
        &[
            Part::Bytes(b"IDENTIFY\n"),
            Part::Size(body_size(len)?),
            Part::Bytes(body),
        ],
    )
}

/// Writes `AUTH\n[size][secret]`.
pub fn encode_auth<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    secret: &[u8],
) -> Result<(), CommandError> {
    append(
        tx,
        &[
            Part::Bytes(b"AUTH\n"),
            Part::Size(body_size(secret.len())?),
            Part::Bytes(secret),
        ],
    )
}

/// Writes `SUB <topic> <channel>\n`.
pub fn encode_sub<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    channel: &str,
) -> Result<(), CommandError> {
    topic_ok(topic)?;
    validate_name(channel, NameKind::Channel)?;
    append(
        tx,
        &[
            Part::Bytes(b"SUB "),
            Part::Bytes(topic.as_bytes()),
            Part::Bytes(b" "),
            Part::Bytes(channel.as_bytes()),
            Part::Bytes(b"\n"),
        ],
    )
}

/// Writes `RDY <count>\n`.
pub fn encode_rdy<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    count: u32,
) -> Result<(), CommandError> {
    append(
        tx,
        &[
            Part::Bytes(b"RDY "),
            Part::Decimal(count.into()),
            Part::Bytes(b"\n"),
        ],
    )
}

/// Writes `FIN <id>\n`.
pub fn encode_fin<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    id: &MessageId,
) -> Result<(), CommandError> {
    append(
        tx,
        &[
            Part::Bytes(b"FIN "),
            Part::Bytes(id.as_bytes()),
            Part::Bytes(b"\n"),
        ],
    )
}

/// Writes `REQ <id> <delay_ms>\n`: redeliver after `delay_ms` (0 = now).
pub fn encode_req<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    id: &MessageId,
    delay_ms: u32,
) -> Result<(), CommandError> {
    append(
        tx,
        &[
            Part::Bytes(b"REQ "),
            Part::Bytes(id.as_bytes()),
            Part::Bytes(b" "),
            Part::Decimal(delay_ms.into()),
            Part::Bytes(b"\n"),
        ],
    )
}

/// Writes `TOUCH <id>\n`: reset the message's timeout.
pub fn encode_touch<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    id: &MessageId,
) -> Result<(), CommandError> {
    append(
        tx,
        &[
            Part::Bytes(b"TOUCH "),
            Part::Bytes(id.as_bytes()),
            Part::Bytes(b"\n"),
        ],
    )
}

/// Writes `CLS\n`: ask nsqd to stop sending messages (answers `CLOSE_WAIT`).
pub fn encode_cls<S: AsRef<[u8]> + AsMut<[u8]>>(tx: &mut TxBuf<S>) -> Result<(), CommandError> {
    append(tx, &[Part::Bytes(b"CLS\n")])
}

/// Writes `NOP\n` (the answer to a heartbeat).
pub fn encode_nop<S: AsRef<[u8]> + AsMut<[u8]>>(tx: &mut TxBuf<S>) -> Result<(), CommandError> {
    append(tx, &[Part::Bytes(b"NOP\n")])
}

/// Writes `PUB <topic>\n[size][body]`.
pub fn encode_pub<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    body: &[u8],
) -> Result<(), CommandError> {
    encode_pub_parts(tx, topic, body.len(), body)
}

/// Writes only `PUB <topic>\n[size]`; the driver must send exactly
/// `body_len` body bytes right after it, before any other command.
pub fn encode_pub_header<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    body_len: usize,
) -> Result<(), CommandError> {
    encode_pub_parts(tx, topic, body_len, &[])
}

fn encode_pub_parts<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    body_len: usize,
    body: &[u8],
) -> Result<(), CommandError> {
    topic_ok(topic)?;
    if body_len == 0 {
        return Err(CommandError::EmptyMessage);
    }
    append(
        tx,
        &[
            Part::Bytes(b"PUB "),
            Part::Bytes(topic.as_bytes()),
            Part::Bytes(b"\n"),
            Part::Size(body_size(body_len)?),
            Part::Bytes(body),
        ],
    )
}

/// Writes `DPUB <topic> <defer_ms>\n[size][body]`: deliver after `defer_ms`.
pub fn encode_dpub<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    defer_ms: u32,
    body: &[u8],
) -> Result<(), CommandError> {
    encode_dpub_parts(tx, topic, defer_ms, body.len(), body)
}

/// Writes only `DPUB <topic> <defer_ms>\n[size]`; the driver sends the
/// `body_len` body bytes right after it.
pub fn encode_dpub_header<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    defer_ms: u32,
    body_len: usize,
) -> Result<(), CommandError> {
    encode_dpub_parts(tx, topic, defer_ms, body_len, &[])
}

fn encode_dpub_parts<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    defer_ms: u32,
    body_len: usize,
    body: &[u8],
) -> Result<(), CommandError> {
    topic_ok(topic)?;
    if body_len == 0 {
        return Err(CommandError::EmptyMessage);
    }
    append(
        tx,
        &[
            Part::Bytes(b"DPUB "),
            Part::Bytes(topic.as_bytes()),
            Part::Bytes(b" "),
            Part::Decimal(defer_ms.into()),
            Part::Bytes(b"\n"),
            Part::Size(body_size(body_len)?),
            Part::Bytes(body),
        ],
    )
}

/// Size of an MPUB body: the 4-byte count plus `[4-byte size][message]`
/// for each message.
pub fn mpub_body_len(messages: &[&[u8]]) -> usize {
    messages.iter().fold(4usize, |acc, m| {
        acc.saturating_add(4).saturating_add(m.len())
    })
}

/// Writes `MPUB <topic>\n[body size][count]([size][message])*`.
pub fn encode_mpub<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    messages: &[&[u8]],
) -> Result<(), CommandError> {
    let body_len = check_mpub(topic, messages)?;
    let body_size = body_size(body_len)?;
    let count = messages.len() as u32;
    let header = [
        Part::Bytes(b"MPUB "),
        Part::Bytes(topic.as_bytes()),
        Part::Bytes(b"\n"),
        Part::Size(body_size),
        Part::Size(count),
    ];
    let header_len: usize = header.iter().map(Part::len).sum();
    let len = header_len + body_len - 4;
    tx.append(len, |out| {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        put(b"MPUB ");
        put(topic.as_bytes());
        put(b"\n");
        put(&body_size.to_be_bytes());
        put(&count.to_be_bytes());
        for m in messages {
            put(&(m.len() as u32).to_be_bytes());
            put(m);
        }
    })?;
    Ok(())
}

/// Writes only `MPUB <topic>\n[body size][count]` for a vectored send of
/// `messages`: the driver then sends, for each message,
/// [`mpub_message_prefix`] followed by the message, before any other command.
pub fn encode_mpub_header<S: AsRef<[u8]> + AsMut<[u8]>>(
    tx: &mut TxBuf<S>,
    topic: &str,
    messages: &[&[u8]],
) -> Result<(), CommandError> {
    let body_len = check_mpub(topic, messages)?;
    append(
        tx,
        &[
            Part::Bytes(b"MPUB "),
            Part::Bytes(topic.as_bytes()),
            Part::Bytes(b"\n"),
            Part::Size(body_size(body_len)?),
            Part::Size(messages.len() as u32),
        ],
    )
}

/// The 4-byte size prefix that goes before each message of a vectored MPUB.
pub fn mpub_message_prefix(message: &[u8]) -> [u8; 4] {
    (message.len() as u32).to_be_bytes()
}

/// Validates an MPUB and returns its body length, in one pass over the
/// batch (it used to take three: empty messages, then the body length
/// twice; the profile of a 200-message MPUB showed them).
fn check_mpub(topic: &str, messages: &[&[u8]]) -> Result<usize, CommandError> {
    topic_ok(topic)?;
    if messages.is_empty() {
        return Err(CommandError::EmptyBatch);
    }
    let mut body_len = 4usize;
    let mut any_empty = false;
    for m in messages {
        any_empty |= m.is_empty();
        body_len = body_len.saturating_add(4).saturating_add(m.len());
    }
    if any_empty {
        return Err(CommandError::EmptyMessage);
    }
    if u32::try_from(messages.len()).is_err() {
        return Err(CommandError::BodyTooLarge { len: body_len });
    }
    body_size(body_len)?;
    Ok(body_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn tx() -> TxBuf<[u8; 2048]> {
        TxBuf::new([0u8; 2048])
    }

    const ID: MessageId = MessageId(*b"0123456789abcdef");

    #[test]
    fn simple_commands_exact_bytes() {
        let mut t = tx();
        encode_magic(&mut t).unwrap();
        encode_rdy(&mut t, 2500).unwrap();
        encode_fin(&mut t, &ID).unwrap();
        encode_req(&mut t, &ID, 1500).unwrap();
        encode_touch(&mut t, &ID).unwrap();
        encode_cls(&mut t).unwrap();
        encode_nop(&mut t).unwrap();
        encode_sub(&mut t, "events", "archive#ephemeral").unwrap();
        assert_eq!(
            t.pending(),
            &b"  V2RDY 2500\nFIN 0123456789abcdef\nREQ 0123456789abcdef 1500\nTOUCH 0123456789abcdef\nCLS\nNOP\nSUB events archive#ephemeral\n"[..]
        );
    }

    #[test]
    fn auth_is_length_prefixed() {
        let mut t = tx();
        encode_auth(&mut t, b"s3cret").unwrap();
        assert_eq!(t.pending(), b"AUTH\n\x00\x00\x00\x06s3cret");
    }

    #[test]
    fn pub_dpub_exact_bytes() {
        let mut t = tx();
        encode_pub(&mut t, "t", b"hello").unwrap();
        assert_eq!(t.pending(), b"PUB t\n\x00\x00\x00\x05hello");
        t.clear();
        encode_dpub(&mut t, "t", 2000, b"hi").unwrap();
        assert_eq!(t.pending(), b"DPUB t 2000\n\x00\x00\x00\x02hi");
        t.clear();
        encode_pub_header(&mut t, "t", 5).unwrap();
        assert_eq!(t.pending(), b"PUB t\n\x00\x00\x00\x05");
        t.clear();
        encode_dpub_header(&mut t, "t", 0, 1).unwrap();
        assert_eq!(t.pending(), b"DPUB t 0\n\x00\x00\x00\x01");
    }

    #[test]
    fn mpub_exact_bytes_and_vectored_equivalent() {
        let msgs: [&[u8]; 2] = [b"ab", b"cde"];
        let mut t = tx();
        encode_mpub(&mut t, "t", &msgs).unwrap();
        let expected =
            b"MPUB t\n\x00\x00\x00\x11\x00\x00\x00\x02\x00\x00\x00\x02ab\x00\x00\x00\x03cde";
        assert_eq!(t.pending(), &expected[..]);
        let mut v = tx();
        encode_mpub_header(&mut v, "t", &msgs).unwrap();
        let mut wire: Vec<u8> = v.pending().to_vec();
        for m in msgs {
            wire.extend_from_slice(&mpub_message_prefix(m));
            wire.extend_from_slice(m);
        }
        assert_eq!(wire, &expected[..]);
    }

    #[test]
    fn identify_json_exact() {
        let mut t = tx();
        let id = Identify {
            client_id: Some("dev1"),
            hostname: Some("host"),
            user_agent: Some("courier/0.1"),
            feature_negotiation: true,
            heartbeat_interval: Some(30000),
            tls_v1: false,
            snappy: true,
            msg_timeout: Some(60000),
            ..Identify::default()
        };
        encode_identify(&mut t, &id).unwrap();
        let json = br#"{"client_id":"dev1","hostname":"host","user_agent":"courier/0.1","feature_negotiation":true,"heartbeat_interval":30000,"tls_v1":false,"snappy":true,"deflate":false,"msg_timeout":60000}"#;
        let mut expected = b"IDENTIFY\n".to_vec();
        expected.extend_from_slice(&(json.len() as u32).to_be_bytes());
        expected.extend_from_slice(json);
        assert_eq!(t.pending(), &expected[..]);
    }

    #[test]
    fn identify_all_fields_and_escaping() {
        let mut t = tx();
        let id = Identify {
            client_id: Some("a\"b"),
            hostname: None,
            user_agent: None,
            feature_negotiation: false,
            heartbeat_interval: Some(-1),
            output_buffer_size: Some(16384),
            output_buffer_timeout: Some(250),
            tls_v1: true,
            snappy: false,
            deflate: true,
            deflate_level: Some(6),
            sample_rate: Some(10),
            msg_timeout: None,
        };
        encode_identify(&mut t, &id).unwrap();
        let json = &t.pending()[13..];
        assert_eq!(
            json,
            br#"{"client_id":"a\"b","feature_negotiation":false,"heartbeat_interval":-1,"output_buffer_size":16384,"output_buffer_timeout":250,"tls_v1":true,"snappy":false,"deflate":true,"deflate_level":6,"sample_rate":10}"#
        );
    }

    #[test]
    fn identify_settings_nsqd_rejects_are_refused() {
        let mut t = tx();
        for bad in [
            Identify {
                heartbeat_interval: Some(500),
                ..Identify::default()
            },
            Identify {
                output_buffer_size: Some(10),
                ..Identify::default()
            },
            Identify {
                output_buffer_timeout: Some(-2),
                ..Identify::default()
            },
            Identify {
                sample_rate: Some(100),
                ..Identify::default()
            },
            Identify {
                msg_timeout: Some(999),
                ..Identify::default()
            },
            Identify {
                deflate_level: Some(0),
                ..Identify::default()
            },
            Identify {
                snappy: true,
                deflate: true,
                ..Identify::default()
            },
        ] {
            let e = encode_identify(&mut t, &bad).unwrap_err();
            assert!(matches!(e, CommandError::InvalidIdentify(_)), "{bad:?}");
            assert!(
                std::format!("{e}").contains("must") || std::format!("{e}").contains("pick one")
            );
        }
        assert!(t.is_empty());
        for good in [
            Identify {
                heartbeat_interval: Some(-1),
                output_buffer_size: Some(-1),
                output_buffer_timeout: Some(-1),
                ..Identify::default()
            },
            Identify {
                heartbeat_interval: Some(0),
                output_buffer_size: Some(64),
                output_buffer_timeout: Some(1),
                msg_timeout: Some(1000),
                sample_rate: Some(99),
                deflate: true,
                deflate_level: Some(9),
                ..Identify::default()
            },
        ] {
            encode_identify(&mut t, &good).unwrap();
        }
    }

    #[test]
    fn identify_too_large() {
        let long = "x".repeat(2000);
        let mut t = tx();
        let id = Identify {
            client_id: Some(&long),
            ..Identify::default()
        };
        assert_eq!(
            encode_identify(&mut t, &id),
            Err(CommandError::IdentifyTooLarge)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn names_validated_before_writing() {
        let mut t = tx();
        let e = encode_pub(&mut t, "bad!topic", b"x").unwrap_err();
        assert_eq!(
            e,
            CommandError::InvalidName(NameError {
                kind: NameKind::Topic,
                problem: NameProblem::InvalidByte { byte: b'!', at: 3 }
            })
        );
        let e = encode_sub(&mut t, "ok", "").unwrap_err();
        assert_eq!(
            e,
            CommandError::InvalidName(NameError {
                kind: NameKind::Channel,
                problem: NameProblem::Empty
            })
        );
        assert!(t.is_empty());
        let sixty_five = "a".repeat(65);
        assert!(validate_name(&sixty_five, NameKind::Topic).is_err());
        assert!(validate_name(&"a".repeat(64), NameKind::Topic).is_ok());
        assert!(validate_name(
            &std::format!("{}#ephemeral", "a".repeat(54)),
            NameKind::Topic
        )
        .is_ok());
        assert!(validate_name(
            &std::format!("{}#ephemeral", "a".repeat(55)),
            NameKind::Topic
        )
        .is_err());
        assert!(validate_name("#ephemeral", NameKind::Channel).is_err());
        assert!(validate_name("a#b", NameKind::Channel).is_err());
        assert!(validate_name("A.b_c-9", NameKind::Channel).is_ok());
        let text = std::format!("{}", validate_name("a b", NameKind::Channel).unwrap_err());
        assert!(
            text.contains("channel") && text.contains("[.a-zA-Z0-9_-]"),
            "{text}"
        );
    }

    #[test]
    fn empty_bodies_refused() {
        let mut t = tx();
        assert_eq!(
            encode_pub(&mut t, "t", b""),
            Err(CommandError::EmptyMessage)
        );
        assert_eq!(
            encode_dpub(&mut t, "t", 1, b""),
            Err(CommandError::EmptyMessage)
        );
        assert_eq!(encode_mpub(&mut t, "t", &[]), Err(CommandError::EmptyBatch));
        assert_eq!(
            encode_mpub(&mut t, "t", &[b"a", b""]),
            Err(CommandError::EmptyMessage)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn full_buffer_writes_nothing() {
        let mut t = TxBuf::new([0u8; 12]);
        encode_nop(&mut t).unwrap();
        let e = encode_pub(&mut t, "t", b"hello").unwrap_err();
        assert_eq!(
            e,
            CommandError::Capacity(CapacityError {
                needed: 4 + 15,
                capacity: 12
            })
        );
        assert_eq!(t.pending(), b"NOP\n");
        assert!(matches!(
            encode_mpub(&mut t, "t", &[b"123456789"]),
            Err(CommandError::Capacity(_))
        ));
    }
}
