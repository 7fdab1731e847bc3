//! The one error type of the async NATS client.

use std::fmt;
use std::time::Duration;

/// Everything the async NATS client can report.
///
/// Each message says what happened and what to do about it. Whether a
/// message was handed to the server is stated per variant: only `Ok` from
/// [`Client::flush`](super::Client::flush) proves the server has processed
/// every earlier publish.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A server URL could not be parsed (credentials are masked in `url`).
    InvalidUrl {
        /// The URL as given, userinfo replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `connect` was given no URL.
    NoServers,
    /// An option cannot be used as given.
    InvalidOption {
        /// Which option.
        option: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// No server could be reached in the first round of connection attempts.
    Unreachable {
        /// `server: error` for every attempt.
        attempts: Vec<String>,
    },
    /// The server refused the credentials.
    AuthorizationViolation {
        /// The server that refused (no credentials shown).
        server: String,
    },
    /// A socket error on an established connection.
    Io(std::io::Error),
    /// The protocol core refused an operation or the server's input.
    Protocol(courier_core::nats::Error),
    /// An operation did not complete in time.
    TimedOut {
        /// What timed out (`"request"`, `"flush"`, `"connect"`).
        operation: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// A request's subject has no subscriber (status 503); nothing will reply.
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// The client is disconnected and the bounded reconnect buffer cannot
    /// take this publish; it was not queued.
    ReconnectBufferFull {
        /// Bytes the buffer would need to hold.
        needed: usize,
        /// Bytes the buffer holds at most.
        capacity: usize,
    },
    /// The connection was lost while the operation waited; for a flush this
    /// means earlier publishes may or may not have reached the server.
    Disconnected,
    /// The client was closed (or drained); nothing more is sent.
    Closed,
    /// The client closed while disconnected, with publishes still held for
    /// the next connection: those bytes were NOT sent.
    NotSent {
        /// Bytes of commands dropped.
        bytes: usize,
    },
    /// The server entered lame duck mode (it shuts down soon); the client
    /// left it for another known server (the reason in
    /// [`Event::Disconnected`](super::Event::Disconnected)).
    LameDuckMode {
        /// The server left.
        server: String,
    },
    /// Reconnecting gave up after the configured number of attempts.
    MaxReconnectsExceeded {
        /// Failed attempts made.
        attempts: usize,
    },
    /// TLS with a server failed or cannot be used: certificate refused,
    /// handshake aborted, TLS required by one side and not configured or
    /// offered by the other. Nothing was sent in plaintext.
    Tls {
        /// The server (no credentials shown).
        server: String,
        /// What happened and which option to set.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(
                f,
                "invalid server URL {url:?}: {reason} (expected nats://[user:pass@]host[:port])"
            ),
            Error::NoServers => {
                write!(f, "no server URL given: pass at least one nats://host:port")
            }
            Error::Unreachable { attempts } => write!(
                f,
                "could not connect to any NATS server ({}): check that nats-server runs and \
                 the URL's host and port are right",
                attempts.join("; ")
            ),
            Error::InvalidOption { option, reason } => {
                write!(f, "invalid option {option}: {reason}")
            }
            Error::AuthorizationViolation { server } => write!(
                f,
                "{server} refused the credentials (Authorization Violation): check the \
                 user/password or token in the URL or options"
            ),
            Error::Io(e) => write!(f, "connection error: {e}; the client reconnects by itself"),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::TimedOut { operation, after } => write!(
                f,
                "{operation} timed out after {after:?}: the server or the responder is slow \
                 or unreachable; retry or raise the timeout"
            ),
            Error::NoResponders { subject } => write!(
                f,
                "no responders on {subject:?}: nothing subscribes to it; start a responder \
                 or check the subject"
            ),
            Error::ReconnectBufferFull { needed, capacity } => write!(
                f,
                "disconnected and the reconnect buffer is full ({needed} bytes needed, \
                 {capacity} held at most): this message was NOT queued; retry after the \
                 reconnect or raise ConnectOptions::reconnect_buffer_size"
            ),
            Error::Disconnected => write!(
                f,
                "the connection was lost while waiting: earlier publishes may not have \
                 reached the server; flush again after the reconnect to be sure"
            ),
            Error::Closed => write!(f, "the client is closed: connect again to send more"),
            Error::NotSent { bytes } => write!(
                f,
                "closed while disconnected: {bytes} bytes of queued publishes were NOT sent; \
                 flush before closing, or close after the reconnect"
            ),
            Error::LameDuckMode { server } => write!(
                f,
                "{server} entered lame duck mode and will shut down soon: moving to another \
                 known server (subscriptions are renewed there, unsent publishes go along)"
            ),
            Error::MaxReconnectsExceeded { attempts } => write!(
                f,
                "gave up reconnecting after {attempts} failed attempts: the client is closed; \
                 raise ConnectOptions::max_reconnects or check the servers"
            ),
            Error::Tls { server, reason } => write!(f, "TLS with {server}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<courier_core::nats::Error> for Error {
    fn from(e: courier_core::nats::Error) -> Self {
        Error::Protocol(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message says what happened and what to do, without secrets.
    #[test]
    fn messages_say_what_happened_and_what_to_do() {
        let cases: Vec<(Error, &[&str])> = vec![
            (
                Error::InvalidUrl {
                    url: "nats://***@h:0".into(),
                    reason: "the port must be a number from 1 to 65535",
                },
                &["invalid server URL", "port", "nats://"],
            ),
            (Error::NoServers, &["no server URL", "pass at least one"]),
            (
                Error::Unreachable {
                    attempts: vec!["nats://127.0.0.1:1: connection refused".into()],
                },
                &[
                    "could not connect",
                    "connection refused",
                    "check that nats-server runs",
                ],
            ),
            (
                Error::AuthorizationViolation {
                    server: "nats://h:4222".into(),
                },
                &["refused the credentials", "check the"],
            ),
            (
                Error::TimedOut {
                    operation: "request",
                    after: Duration::from_millis(200),
                },
                &["request timed out after 200ms", "raise the timeout"],
            ),
            (
                Error::NoResponders {
                    subject: "svc".into(),
                },
                &["no responders on \"svc\"", "start a responder"],
            ),
            (
                Error::ReconnectBufferFull {
                    needed: 104,
                    capacity: 100,
                },
                &["NOT queued", "104", "100", "reconnect_buffer_size"],
            ),
            (Error::Disconnected, &["connection was lost", "flush again"]),
            (Error::Closed, &["closed", "connect again"]),
            (Error::NotSent { bytes: 15 }, &["15 bytes", "NOT sent"]),
            (
                Error::MaxReconnectsExceeded { attempts: 60 },
                &["gave up reconnecting after 60", "max_reconnects"],
            ),
            (
                Error::LameDuckMode {
                    server: "nats://h:4222".into(),
                },
                &["nats://h:4222 entered lame duck mode", "moving to another"],
            ),
            (
                Error::InvalidOption {
                    option: "inbox_prefix",
                    reason: "too long".into(),
                },
                &["invalid option inbox_prefix", "too long"],
            ),
        ];
        for (error, needles) in cases {
            let text = error.to_string();
            for needle in needles {
                assert!(text.contains(needle), "{text:?} lacks {needle:?}");
            }
        }
    }
}
