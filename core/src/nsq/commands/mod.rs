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
mod tests;
