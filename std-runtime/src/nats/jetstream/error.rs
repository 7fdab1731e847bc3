//! The error type of the JetStream runtime API.

use std::fmt;
use std::time::Duration;

use courier_core::nats::jetstream::JsError as CoreJsError;
pub use courier_core::nats::jetstream::{ApiError, ApiErrorKind};

use crate::nats;

/// What a JetStream call can report. Each variant says whether a publish
/// was stored: only `Ok(PubAck)` proves it.
#[derive(Debug)]
#[non_exhaustive]
pub enum JetStreamError {
    /// The NATS connection failed the request (closed, reconnect buffer
    /// full...). For a publish: it may or may not be stored; retry with
    /// the same `Nats-Msg-Id`.
    Nats(nats::Error),
    /// The JetStream API refused the call (stream not found, wrong last
    /// sequence...): nothing was changed or stored.
    Api(ApiError),
    /// The request or reply did not fit the protocol (a name with `.`, a
    /// reply that is not JetStream JSON).
    Protocol(CoreJsError),
    /// No stream stores this subject (no responders): NOT stored.
    NoStream {
        /// The subject published to.
        subject: String,
    },
    /// The JetStream API did not answer (no responders on `$JS.API`):
    /// start nats-server with `-js`.
    NotEnabled,
    /// No ack (or API reply) in time. A publish may or may not be stored:
    /// retry with the same `Nats-Msg-Id` and the duplicate window drops a
    /// copy that did arrive.
    TimedOut {
        /// What timed out.
        operation: &'static str,
        /// After how long.
        after: Duration,
    },
    /// `ack`/`nak`/`term` on a message that did not come from a consumer
    /// (no `$JS.ACK` reply subject).
    NotAckable,
    /// The server ended a pull for good (409: consumer deleted, push
    /// based, limits exceeded); the description says why.
    PullEnded {
        /// Status code (409).
        status: u16,
        /// The server's reason.
        description: String,
    },
}

impl From<CoreJsError> for JetStreamError {
    fn from(e: CoreJsError) -> Self {
        match e {
            CoreJsError::Api(api) => JetStreamError::Api(api),
            other => JetStreamError::Protocol(other),
        }
    }
}

impl From<nats::Error> for JetStreamError {
    fn from(e: nats::Error) -> Self {
        JetStreamError::Nats(e)
    }
}

impl JetStreamError {
    /// The API error kind, if the server refused the call.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            JetStreamError::Api(e) => Some(e.kind),
            _ => None,
        }
    }
}

impl fmt::Display for JetStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JetStreamError::Nats(e) => write!(f, "JetStream request failed: {e}"),
            JetStreamError::Api(e) => e.fmt(f),
            JetStreamError::Protocol(e) => e.fmt(f),
            JetStreamError::NoStream { subject } => write!(
                f,
                "no stream stores subject {subject:?}: the message was not stored; create a stream for it"
            ),
            JetStreamError::NotEnabled => write!(
                f,
                "JetStream did not answer: enable it on the server (nats-server -js)"
            ),
            JetStreamError::TimedOut { operation, after } => write!(
                f,
                "{operation} got no answer within {after:?}; a publish may or may not be stored: retry with the same Nats-Msg-Id"
            ),
            JetStreamError::PullEnded {
                status,
                description,
            } => write!(f, "the server ended the pull ({status} {description})"),
            JetStreamError::NotAckable => write!(
                f,
                "this message did not come from a JetStream consumer (no $JS.ACK reply subject)"
            ),
        }
    }
}

impl std::error::Error for JetStreamError {}
