//! The one error type of the NATS core, with messages that say what happened
//! and what the caller can do about it.

use core::fmt;

use crate::buf::CapacityError;

use super::ids::Sid;

/// Longest `-ERR` text kept in an [`Error::Server`] (longer text is cut).
pub const SERVER_MESSAGE_CAPACITY: usize = 96;
/// How many bytes of unexpected input a [`ProtocolError`] keeps for display.
pub const SEEN_CAPACITY: usize = 32;

/// Everything that can go wrong in the NATS core.
///
/// [`Error::is_fatal`] tells whether the connection is unusable afterwards
/// (drop the transport, call [`Session::start`](super::Session::start) and
/// reconnect) or whether only the call that returned it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The server sent a frame (control line + payload) of `needed` bytes but
    /// the receive buffer holds only `capacity`. Detected as soon as the
    /// control line is parsed, before the payload arrives.
    FrameTooLarge {
        /// Size of the whole frame in bytes.
        needed: usize,
        /// Capacity of the receive buffer.
        capacity: usize,
    },
    /// The receive buffer is full and still holds no complete control line
    /// (no CRLF): the peer is not speaking NATS, or the buffer is tiny.
    ControlLineTooLong {
        /// Capacity of the receive buffer.
        capacity: usize,
    },
    /// The server sent bytes that are not the NATS protocol.
    Protocol(ProtocolError),
    /// The transmit buffer cannot take the command now (`needed <= capacity`:
    /// write out [`Session::transmit`](super::Session::transmit) and retry)
    /// or ever (`needed > capacity`: use a bigger transmit buffer). Nothing
    /// was written.
    BufferFull(CapacityError),
    /// A subject, queue group or header given by the caller is not valid;
    /// nothing was sent.
    InvalidSubject(SubjectError),
    /// A header name or value given by the caller is not valid.
    InvalidHeader(HeaderError),
    /// A payload larger than the server's `max_payload`; nothing was sent.
    PayloadTooLarge {
        /// Payload plus headers in bytes.
        size: usize,
        /// The server's limit from INFO.
        max_payload: u64,
    },
    /// Headers were given but the server said `headers: false` in INFO.
    HeadersNotSupported,
    /// Every subscription slot is taken (the table's capacity is the
    /// `SUBS` const generic of the session).
    SubscriptionTableFull {
        /// Number of slots.
        capacity: usize,
    },
    /// No live subscription has this sid (already unsubscribed or finished).
    UnknownSubscription(Sid),
    /// Every request slot is taken (the `REQS` const generic of the session).
    RequestTableFull {
        /// Number of slots.
        capacity: usize,
    },
    /// `request` needs a unique inbox prefix in the options; the core has no
    /// random number generator to invent one.
    InboxNotConfigured,
    /// The operation needs an established connection (state `Connected`).
    NotConnected,
    /// `pings_outstanding` keepalive PINGs went unanswered: the connection is
    /// dead even though the transport has not noticed.
    StaleConnection {
        /// Unanswered PINGs when the connection was declared stale.
        pings_outstanding: u32,
    },
    /// The server refused the credentials (`-ERR 'Authorization Violation'`).
    AuthorizationViolation,
    /// The server reported a fatal error and closes the connection.
    Server {
        /// What kind of error it was.
        kind: ServerErrorKind,
        /// The server's text (cut to [`SERVER_MESSAGE_CAPACITY`] bytes).
        message: heapless::String<SERVER_MESSAGE_CAPACITY>,
    },
    /// The INFO JSON could not be used.
    Info(InfoError),
    /// The server accepts payloads of `max_payload` bytes but the receive
    /// buffer holds only `capacity`, so such a message could never be
    /// received (see [`Session::check_buffers`](super::Session::check_buffers)).
    BufferSmallerThanMaxPayload {
        /// The server's limit from INFO.
        max_payload: u64,
        /// Receive buffer capacity given in the options.
        capacity: usize,
    },
    /// The transmit buffer can never hold CONNECT and its PING, so the
    /// handshake cannot even start (reported when INFO arrives). Give the
    /// session a transmit buffer of at least `needed` bytes
    /// ([`required_tx_capacity`](super::session::required_tx_capacity)
    /// computes it from the options before connecting).
    TransmitBufferTooSmall {
        /// Bytes of CONNECT (with these options) plus `PING\r\n`.
        needed: usize,
        /// Capacity of the transmit buffer.
        capacity: usize,
    },
}

impl Error {
    /// True when the connection cannot be used any more: drop the transport,
    /// call [`Session::start`](super::Session::start) and reconnect.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::FrameTooLarge { .. }
                | Error::ControlLineTooLong { .. }
                | Error::Protocol(_)
                | Error::StaleConnection { .. }
                | Error::AuthorizationViolation
                | Error::Server { .. }
                | Error::Info(_)
                | Error::TransmitBufferTooSmall { .. }
        )
    }
}

impl From<CapacityError> for Error {
    fn from(e: CapacityError) -> Self {
        Error::BufferFull(e)
    }
}

impl From<SubjectError> for Error {
    fn from(e: SubjectError) -> Self {
        Error::InvalidSubject(e)
    }
}

impl From<HeaderError> for Error {
    fn from(e: HeaderError) -> Self {
        Error::InvalidHeader(e)
    }
}

impl From<InfoError> for Error {
    fn from(e: InfoError) -> Self {
        Error::Info(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FrameTooLarge { needed, capacity } => write!(
                f,
                "server sent a {needed}-byte message but the receive buffer holds {capacity}: \
                 give the connection a receive buffer of at least the server's max_payload \
                 plus room for the control line"
            ),
            Error::ControlLineTooLong { capacity } => write!(
                f,
                "the receive buffer ({capacity} bytes) filled up without a complete NATS \
                 control line: the peer is not a NATS server or the buffer is far too small"
            ),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::BufferFull(e) if e.needed > e.capacity => write!(
                f,
                "the command needs {} bytes but the transmit buffer holds only {}: \
                 use a bigger transmit buffer",
                e.needed, e.capacity
            ),
            Error::BufferFull(e) => write!(
                f,
                "the transmit buffer is full ({e}): write out the pending bytes and retry; \
                 nothing was queued"
            ),
            Error::InvalidSubject(e) => write!(f, "{e}; nothing was sent"),
            Error::InvalidHeader(e) => write!(f, "{e}; nothing was sent"),
            Error::PayloadTooLarge { size, max_payload } => write!(
                f,
                "a {size}-byte message exceeds the server's max_payload of {max_payload}: \
                 split it or raise max_payload on the server; nothing was sent"
            ),
            Error::HeadersNotSupported => write!(
                f,
                "the server does not support headers (INFO headers=false): \
                 publish without headers or upgrade the server to 2.2+"
            ),
            Error::SubscriptionTableFull { capacity } => write!(
                f,
                "all {capacity} subscription slots are in use: unsubscribe first or \
                 create the session with a larger SUBS capacity"
            ),
            Error::UnknownSubscription(sid) => write!(
                f,
                "no live subscription has sid {}: it was unsubscribed or finished",
                sid.0
            ),
            Error::RequestTableFull { capacity } => write!(
                f,
                "all {capacity} request slots are waiting for replies: wait for one to \
                 finish or create the session with a larger REQS capacity"
            ),
            Error::InboxNotConfigured => write!(
                f,
                "requests need a unique inbox prefix: set ConnectOptions::inbox_prefix \
                 (e.g. \"_INBOX.<random token>\")"
            ),
            Error::NotConnected => write!(
                f,
                "not connected: wait for the Connected event before this operation"
            ),
            Error::StaleConnection { pings_outstanding } => write!(
                f,
                "stale connection: {pings_outstanding} PINGs went unanswered; \
                 reconnect"
            ),
            Error::AuthorizationViolation => write!(
                f,
                "the server refused the credentials (Authorization Violation): \
                 check user/password, token or JWT"
            ),
            Error::Server { kind, message } => write!(
                f,
                "the server closed the connection with -ERR '{message}' ({kind:?}); reconnect"
            ),
            Error::Info(e) => write!(f, "{e}"),
            Error::BufferSmallerThanMaxPayload {
                max_payload,
                capacity,
            } => write!(
                f,
                "the server allows {max_payload}-byte messages but the receive buffer holds \
                 {capacity}: such messages would fail with FrameTooLarge; give the connection \
                 a receive buffer of at least max_payload plus 1 KiB"
            ),
            Error::TransmitBufferTooSmall { needed, capacity } => write!(
                f,
                "the transmit buffer holds {capacity} bytes but CONNECT and its PING need \
                 {needed}: the handshake cannot start; give the session a transmit buffer of \
                 at least {needed} bytes (required_tx_capacity computes it; credentials and \
                 the client name make CONNECT longer)"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Unexpected bytes from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProtocolError {
    /// What the parser expected at that point.
    pub expected: &'static str,
    /// The first bytes of what it saw instead (cut to [`SEEN_CAPACITY`]).
    pub seen: heapless::Vec<u8, SEEN_CAPACITY>,
}

impl ProtocolError {
    /// An error with the first [`SEEN_CAPACITY`] bytes of `seen` kept.
    pub fn new(expected: &'static str, seen: &[u8]) -> Self {
        let keep = seen.len().min(SEEN_CAPACITY);
        let mut kept = heapless::Vec::new();
        // Cannot fail: `keep` is at most the capacity.
        let _ = kept.extend_from_slice(seen.get(..keep).unwrap_or_default());
        ProtocolError {
            expected,
            seen: kept,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "protocol error: expected {} but the server sent \"",
            self.expected
        )?;
        for &b in &self.seen {
            for c in core::ascii::escape_default(b) {
                write!(f, "{}", c as char)?;
            }
        }
        write!(f, "\": the peer is not a compatible NATS server; reconnect")
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

/// What is wrong with a subject or queue group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SubjectError {
    /// The subject is empty.
    Empty,
    /// Empty token: leading, trailing or doubled `.`.
    EmptyToken,
    /// Space, tab, CR, LF or another control character.
    Whitespace,
    /// `*` or `>` in a publish subject (only subscriptions may use them).
    WildcardInPublish,
    /// `*` or `>` mixed with other characters in one token (`a.b*`).
    PartialWildcard,
    /// `>` is not the last token.
    FullWildcardNotLast,
    /// Longer than the session stores.
    TooLong {
        /// Length of the subject in bytes.
        len: usize,
        /// Longest accepted.
        max: usize,
    },
    /// A queue group name must be one token without wildcards or whitespace.
    InvalidQueueGroup,
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectError::Empty => write!(f, "invalid subject: it is empty"),
            SubjectError::EmptyToken => write!(
                f,
                "invalid subject: empty token (leading, trailing or doubled '.')"
            ),
            SubjectError::Whitespace => {
                write!(f, "invalid subject: whitespace or control character")
            }
            SubjectError::WildcardInPublish => write!(
                f,
                "invalid subject: '*' and '>' may only be used to subscribe, not to publish"
            ),
            SubjectError::PartialWildcard => write!(
                f,
                "invalid subject: '*' and '>' must be whole tokens (\"a.*.c\", not \"a.b*\")"
            ),
            SubjectError::FullWildcardNotLast => {
                write!(f, "invalid subject: '>' must be the last token")
            }
            SubjectError::TooLong { len, max } => write!(
                f,
                "invalid subject: {len} bytes, longer than the {max} bytes a subscription stores"
            ),
            SubjectError::InvalidQueueGroup => write!(
                f,
                "invalid queue group: must be non-empty, without whitespace or wildcards"
            ),
        }
    }
}

impl core::error::Error for SubjectError {}

/// What is wrong with a header block or a header name/value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    MissingVersionLine,
    /// The status after `NATS/1.0` is not a 3-digit code.
    InvalidStatus,
    /// A line without `:` or a name with forbidden characters.
    InvalidName,
    /// A value containing CR or LF, or not UTF-8.
    InvalidValue,
    /// The block does not end with an empty line (`\r\n\r\n`).
    Unterminated,
    /// The header storage is full.
    Full(CapacityError),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::MissingVersionLine => {
                write!(f, "invalid headers: the block must start with NATS/1.0")
            }
            HeaderError::InvalidStatus => write!(
                f,
                "invalid headers: the status after NATS/1.0 must be a 3-digit code"
            ),
            HeaderError::InvalidName => write!(
                f,
                "invalid header name: must be non-empty printable ASCII without ':' or spaces"
            ),
            HeaderError::InvalidValue => {
                write!(f, "invalid header value: must be UTF-8 without CR or LF")
            }
            HeaderError::Unterminated => write!(
                f,
                "invalid headers: the block must end with an empty line (\\r\\n\\r\\n)"
            ),
            HeaderError::Full(e) => write!(f, "header storage full: {e}"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Why the server's INFO could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InfoError {
    /// The INFO payload is not the JSON object expected.
    InvalidJson,
    /// An essential field is longer than the core stores.
    FieldTooLong {
        /// JSON field name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// Longest accepted.
        max: usize,
    },
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::InvalidJson => write!(
                f,
                "the server's INFO is not valid JSON of the expected shape: \
                 the peer is not a compatible NATS server"
            ),
            InfoError::FieldTooLong { field, len, max } => write!(
                f,
                "the server's INFO field \"{field}\" is {len} bytes, longer than the {max} \
                 bytes courier stores"
            ),
        }
    }
}

impl core::error::Error for InfoError {}

/// Kinds of `-ERR` the server sends (text per nats-server 2.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `Authorization Violation`: bad or missing credentials (fatal).
    AuthorizationViolation,
    /// `Authentication Timeout`: CONNECT came too late (fatal).
    AuthenticationTimeout,
    /// `Stale Connection`: the server missed our PONGs (fatal).
    StaleConnection,
    /// `Maximum Payload Violation` (fatal).
    MaximumPayloadViolation,
    /// `Unknown Protocol Operation` (fatal).
    UnknownProtocolOperation,
    /// `Slow Consumer`: we read too slowly (fatal).
    SlowConsumer,
    /// `maximum connections exceeded` (fatal).
    MaximumConnectionsExceeded,
    /// `Secure Connection - TLS Required` (fatal).
    SecureConnectionRequired,
    /// `Parser Error` (fatal).
    ParserError,
    /// `Permissions Violation for Publish/Subscription to ...` (non-fatal).
    PermissionsViolation,
    /// `Invalid Subject` or `Invalid Publish Subject` (non-fatal; sent in
    /// pedantic mode).
    InvalidSubject,
    /// `maximum subscriptions exceeded`: the SUB was refused (non-fatal).
    MaximumSubscriptionsExceeded,
    /// `User Authentication Expired/Revoked`, `Account Authentication
    /// Expired`: the credentials stopped being valid (fatal).
    AuthenticationExpired,
    /// Anything else; treated as fatal because the server closes the
    /// connection after most errors.
    Other,
}

/// nats-server's error texts (lower case, the start of each), in the order
/// they are tried.
const ERROR_PREFIXES: &[(&str, ServerErrorKind)] = &[
    (
        "authorization violation",
        ServerErrorKind::AuthorizationViolation,
    ),
    (
        "user authentication",
        ServerErrorKind::AuthenticationExpired,
    ),
    (
        "account authentication",
        ServerErrorKind::AuthenticationExpired,
    ),
    (
        "authentication timeout",
        ServerErrorKind::AuthenticationTimeout,
    ),
    ("stale connection", ServerErrorKind::StaleConnection),
    ("maximum payload", ServerErrorKind::MaximumPayloadViolation),
    (
        "unknown protocol operation",
        ServerErrorKind::UnknownProtocolOperation,
    ),
    ("slow consumer", ServerErrorKind::SlowConsumer),
    (
        "maximum connections exceeded",
        ServerErrorKind::MaximumConnectionsExceeded,
    ),
    (
        "secure connection",
        ServerErrorKind::SecureConnectionRequired,
    ),
    ("parser error", ServerErrorKind::ParserError),
    (
        "permissions violation",
        ServerErrorKind::PermissionsViolation,
    ),
    ("invalid subject", ServerErrorKind::InvalidSubject),
    ("invalid publish subject", ServerErrorKind::InvalidSubject),
    (
        "maximum subscriptions exceeded",
        ServerErrorKind::MaximumSubscriptionsExceeded,
    ),
];

impl ServerErrorKind {
    /// Classifies the text of a `-ERR` (case-insensitive prefix match;
    /// leading and trailing ASCII whitespace ignored).
    pub fn classify(message: &str) -> Self {
        let m = message.as_bytes().trim_ascii();
        // One loop over a table (not one inlined comparison per prefix):
        // small on a device, and -ERR is rare.
        for (prefix, kind) in ERROR_PREFIXES {
            if m.get(..prefix.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
            {
                return *kind;
            }
        }
        ServerErrorKind::Other
    }

    /// True when the server closes the connection after this error.
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            ServerErrorKind::PermissionsViolation
                | ServerErrorKind::InvalidSubject
                | ServerErrorKind::MaximumSubscriptionsExceeded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn server_errors_are_classified_like_nats_server_words_them() {
        use ServerErrorKind::*;
        for (text, kind, fatal) in [
            ("Authorization Violation", AuthorizationViolation, true),
            ("User Authentication Expired", AuthenticationExpired, true),
            (
                "Account Authentication Expired",
                AuthenticationExpired,
                true,
            ),
            ("Authentication Timeout", AuthenticationTimeout, true),
            ("Stale Connection", StaleConnection, true),
            ("Maximum Payload Violation", MaximumPayloadViolation, true),
            ("Unknown Protocol Operation", UnknownProtocolOperation, true),
            ("Slow Consumer", SlowConsumer, true),
            (
                "maximum connections exceeded",
                MaximumConnectionsExceeded,
                true,
            ),
            (
                "Secure Connection - TLS Required",
                SecureConnectionRequired,
                true,
            ),
            ("maximum control line exceeded", Other, true),
            ("  \tslow consumer \r", SlowConsumer, true),
            ("Authorization", Other, true),
            ("", Other, true),
            (
                "Permissions Violation for Publish to \"a\"",
                PermissionsViolation,
                false,
            ),
            ("Invalid Subject", InvalidSubject, false),
            ("Invalid Publish Subject", InvalidSubject, false),
            (
                "maximum subscriptions exceeded",
                MaximumSubscriptionsExceeded,
                false,
            ),
        ] {
            assert_eq!(ServerErrorKind::classify(text), kind, "{text}");
            assert_eq!(kind.is_fatal(), fatal, "{text}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = Error::FrameTooLarge {
            needed: 70000,
            capacity: 65536,
        };
        assert_eq!(
            format!("{e}"),
            "server sent a 70000-byte message but the receive buffer holds 65536: give the \
             connection a receive buffer of at least the server's max_payload plus room for \
             the control line"
        );
        let p = ProtocolError::new("PING", b"GARBAGE\r\n\x00");
        assert_eq!(
            format!("{p}"),
            "protocol error: expected PING but the server sent \"GARBAGE\\r\\n\\x00\": the peer \
             is not a compatible NATS server; reconnect"
        );
        let long = [b'x'; 100];
        assert_eq!(ProtocolError::new("x", &long).seen.len(), SEEN_CAPACITY);
        assert!(format!(
            "{}",
            Error::BufferFull(CapacityError {
                needed: 10,
                capacity: 8
            })
        )
        .contains("bigger transmit buffer"));
        assert!(format!(
            "{}",
            Error::BufferFull(CapacityError {
                needed: 8,
                capacity: 8
            })
        )
        .contains("retry"));
    }
}
