//! The one error type of courier's NSQ producer and consumer.

use std::fmt;
use std::time::Duration;

use courier_core::nsq::{ErrorCode, ServerError, SessionError};

use crate::layers::LayerError;

/// Everything the NSQ producer and consumer can report. Each message says
/// what happened and what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No nsqd/nsqlookupd address was given.
    NoNodes,
    /// An address could not be parsed or resolved.
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No nsqd node could be reached.
    Unreachable {
        /// `node: error` for every attempt.
        attempts: Vec<String>,
    },
    /// A socket error.
    Io(std::io::Error),
    /// TLS or compression failed (certificate refused, corrupt stream...).
    Layer(LayerError),
    /// The protocol session failed (bad frame, heartbeat timeout...).
    Session(SessionError),
    /// nsqd refused the command (`E_BAD_TOPIC`, `E_PUB_FAILED`...).
    Server(ServerError),
    /// nsqd requires AUTH and no secret is configured.
    AuthRequired,
    /// The peer accepted the TCP connection but did not answer IDENTIFY
    /// like nsqd (e.g. nsqd's HTTP port, or another service).
    NotNsqd {
        /// `host:port` as given.
        addr: String,
        /// What it sent instead, or why it could not be read.
        detail: String,
    },
    /// The connection closed while waiting: a publish may or may not have
    /// reached nsqd.
    Disconnected,
    /// The operation did not complete in time.
    TimedOut {
        /// What timed out.
        operation: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// The producer or consumer was stopped.
    Closed,
    /// nsqlookupd could not be queried.
    Lookup(String),
    /// The configuration is unusable.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoNodes => write!(f, "no node address given: pass at least one host:port"),
            Error::InvalidAddress { addr, reason } => {
                write!(f, "invalid address {addr:?}: {reason} (expected host:port)")
            }
            Error::Unreachable { attempts } => write!(
                f,
                "no nsqd could be reached: {} (each node's error is listed)",
                attempts.join("; ")
            ),
            Error::Io(e) => write!(f, "socket error: {e}"),
            Error::Layer(e) => write!(f, "{e}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::Server(e) => write!(f, "nsqd refused the command: {e}"),
            Error::AuthRequired => write!(
                f,
                "nsqd requires AUTH: set Config::auth_secret to a secret its auth server accepts"
            ),
            Error::NotNsqd { addr, detail } => write!(
                f,
                "{addr} accepted the connection but does not speak the NSQ TCP protocol \
                 ({detail}); is it an nsqd TCP port (nsqd's default is 4150; 4151 is its HTTP \
                 port)?"
            ),
            Error::Disconnected => write!(
                f,
                "the connection to nsqd was lost before it answered: the command may or may not \
                 have been applied"
            ),
            Error::TimedOut { operation, after } => {
                write!(f, "{operation} did not complete within {after:?}")
            }
            Error::Closed => write!(f, "the producer/consumer was stopped"),
            Error::Lookup(e) => write!(f, "nsqlookupd query failed: {e}"),
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
        }
    }
}

impl Error {
    /// A failure that says more about a node than "unreachable": it
    /// answered and refused (credentials, TLS, configuration, not an nsqd),
    /// or accepted the connection and never finished the handshake.
    pub fn is_definite(&self) -> bool {
        self.is_refusal() || self.is_handshake_timeout()
    }

    /// It answered and refused (see [`is_definite`](Self::is_definite)).
    fn is_refusal(&self) -> bool {
        match self {
            Error::AuthRequired
            | Error::NotNsqd { .. }
            | Error::Config(_)
            | Error::InvalidAddress { .. } => true,
            Error::Layer(LayerError::Tls(_) | LayerError::TlsConfig(_)) => true,
            Error::Server(e) => matches!(
                e.code,
                ErrorCode::AuthFailed | ErrorCode::Unauthorized | ErrorCode::AuthFirst
            ),
            _ => false,
        }
    }
}

impl Error {
    /// A copy of a definite error (see [`Error::is_definite`]), for a
    /// consumer's `start` to return; `None` for the others (`Error` is not
    /// `Clone`: io::Error).
    pub(crate) fn definite_copy(&self) -> Option<Error> {
        Some(match self {
            Error::AuthRequired => Error::AuthRequired,
            Error::NotNsqd { addr, detail } => Error::NotNsqd {
                addr: addr.clone(),
                detail: detail.clone(),
            },
            Error::Config(c) => Error::Config(c.clone()),
            Error::Server(s) => Error::Server(s.clone()),
            Error::TimedOut { operation, after } => Error::TimedOut {
                operation,
                after: *after,
            },
            Error::Layer(LayerError::Tls(t)) => Error::Layer(LayerError::Tls(t.clone())),
            Error::Layer(LayerError::TlsConfig(t)) => {
                Error::Layer(LayerError::TlsConfig(t.clone()))
            }
            _ => return None,
        })
    }

    /// The TCP connection was accepted but IDENTIFY (or AUTH, SUB) was not
    /// answered in time.
    pub fn is_handshake_timeout(&self) -> bool {
        matches!(
            self,
            Error::TimedOut {
                operation: "nsqd handshake",
                ..
            }
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Layer(e) => Some(e),
            Error::Session(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<LayerError> for Error {
    fn from(e: LayerError) -> Self {
        Error::Layer(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Server(s) => Error::Server(s),
            e => Error::Session(e),
        }
    }
}
