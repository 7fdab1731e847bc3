//! JetStream errors: the API's own `{"error":{"code","err_code","description"}}`
//! classified into kinds, and what the client side can get wrong (a buffer
//! too small, a reply that is not JSON, a subject that is not a `$JS.ACK`).

use core::fmt;

/// Longest API error description kept (longer ones are cut at a char boundary).
pub const DESCRIPTION_CAPACITY: usize = 96;

/// What the JetStream API's `err_code` says, for the errors a client acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 10059: no stream of that name; create it first.
    StreamNotFound,
    /// 10014: no consumer of that name on the stream.
    ConsumerNotFound,
    /// 10037: no message at that sequence / for that subject.
    NoMessageFound,
    /// 10071 (and 10164): `Nats-Expected-Last-Sequence` did not match; the
    /// message was NOT stored. Re-read the stream and retry if still right.
    WrongLastSequence,
    /// 10070: `Nats-Expected-Last-Msg-Id` did not match; NOT stored.
    WrongLastMsgId,
    /// 10060: `Nats-Expected-Stream` named another stream; NOT stored.
    WrongExpectedStream,
    /// 10058: a stream of that name exists with another configuration.
    StreamNameInUse,
    /// 10013 / 10105 / 10148: a consumer of that name exists with another configuration.
    ConsumerExists,
    /// 10065: the subjects overlap those of another stream.
    SubjectsOverlap,
    /// 10052 / 10003: the server refused the request as invalid.
    BadRequest,
    /// 10076 / 10039: JetStream is not enabled (start nats-server with `-js`).
    NotEnabled,
    /// 10023 / 10002: storage or account limits exhausted.
    InsufficientResources,
    /// 10054: the message is larger than the stream's max_msg_size.
    MessageTooLarge,
    /// Any other `err_code` (see nats-server's errors.json).
    Other,
}

impl ApiErrorKind {
    /// The kind for a server `err_code`.
    pub fn from_err_code(err_code: u32) -> Self {
        match err_code {
            10059 => Self::StreamNotFound,
            10014 => Self::ConsumerNotFound,
            10037 => Self::NoMessageFound,
            10071 | 10164 => Self::WrongLastSequence,
            10070 => Self::WrongLastMsgId,
            10060 => Self::WrongExpectedStream,
            10058 => Self::StreamNameInUse,
            10013 | 10105 | 10148 => Self::ConsumerExists,
            10065 => Self::SubjectsOverlap,
            10052 | 10003 => Self::BadRequest,
            10076 | 10039 => Self::NotEnabled,
            10023 | 10002 => Self::InsufficientResources,
            10054 => Self::MessageTooLarge,
            _ => Self::Other,
        }
    }
}

/// An error the JetStream API returned, owned (no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Classified `err_code`.
    pub kind: ApiErrorKind,
    /// HTTP-like status (`code`): 400, 404, 503...
    pub code: u16,
    /// JetStream's error identifier (`err_code`), e.g. 10059.
    pub err_code: u32,
    /// The server's text as sent (JSON escapes kept), cut to
    /// [`DESCRIPTION_CAPACITY`] bytes.
    pub description: heapless::String<DESCRIPTION_CAPACITY>,
}

impl ApiError {
    /// An error from its wire fields; `description` is cut at a char
    /// boundary when longer than [`DESCRIPTION_CAPACITY`].
    pub fn new(code: u16, err_code: u32, description: &str) -> Self {
        let mut end = description.len().min(DESCRIPTION_CAPACITY);
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        let mut text = heapless::String::new();
        let _ = text.push_str(&description[..end]);
        ApiError {
            kind: ApiErrorKind::from_err_code(err_code),
            code,
            err_code,
            description: text,
        }
    }
}

/// Everything the JetStream core can report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsError {
    /// The server answered with an API error.
    Api(ApiError),
    /// A request (subject or JSON) does not fit the caller's buffer: give a
    /// larger one. Nothing was sent.
    BufferTooSmall {
        /// What was being written.
        what: &'static str,
        /// Bytes the buffer holds.
        capacity: usize,
    },
    /// A stream, consumer or domain name is empty or contains `.`, `*`,
    /// `>`, whitespace or a control character.
    InvalidName {
        /// Which name.
        what: &'static str,
    },
    /// The server's reply is not the JSON expected (a different server
    /// version, or not a JetStream reply at all).
    MalformedResponse {
        /// Which response.
        what: &'static str,
    },
    /// A reply subject is not a `$JS.ACK.` subject in the v1 (9 tokens) or
    /// v2 (11+ tokens) layout: the message did not come from a consumer.
    NotJetStreamMessage {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl From<ApiError> for JsError {
    fn from(e: ApiError) -> Self {
        JsError::Api(e)
    }
}

impl JsError {
    /// The API error kind, when the server returned one.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            JsError::Api(e) => Some(e.kind),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JetStream API error {} (err_code {}, {:?}): {}",
            self.code, self.err_code, self.kind, self.description
        )
    }
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsError::Api(e) => e.fmt(f),
            JsError::BufferTooSmall { what, capacity } => write!(
                f,
                "{what} does not fit a {capacity}-byte buffer; give a larger buffer (nothing was sent)"
            ),
            JsError::InvalidName { what } => write!(
                f,
                "invalid {what}: it must be non-empty without '.', '*', '>', spaces or control characters"
            ),
            JsError::MalformedResponse { what } => write!(
                f,
                "the server's {what} is not the JSON JetStream sends; is this a JetStream server?"
            ),
            JsError::NotJetStreamMessage { reason } => {
                write!(f, "not a JetStream consumer message: {reason}")
            }
        }
    }
}

impl core::error::Error for JsError {}
impl core::error::Error for ApiError {}
