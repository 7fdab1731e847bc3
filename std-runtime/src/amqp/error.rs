//! Errors of the AMQP runtime.

use std::fmt;

use courier_core::amqp::{self, CloseReason, ReplyCode};

/// What went wrong; every variant says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not an AMQP URL.
    Url(String),
    /// Connecting or the socket failed.
    Io(String),
    /// The protocol core reported an error (login refused, heartbeat
    /// timeout, blocked too long, malformed input...); see its text.
    Protocol(amqp::Error),
    /// The server closed the channel (e.g. 404 NOT_FOUND on a passive
    /// declare, 406 PRECONDITION_FAILED): this channel is gone, the
    /// connection and its other channels are not. Open a new channel.
    ChannelClosed(CloseReason),
    /// The broker refused responsibility for a publish (basic.nack).
    Nacked {
        /// Its delivery tag.
        delivery_tag: u64,
    },
    /// A mandatory publish no queue took came back (basic.return).
    Returned {
        /// The reply code (312 NO_ROUTE).
        code: ReplyCode,
        /// The server's text.
        text: String,
    },
    /// The connection is gone; publishes waiting for confirms are
    /// unconfirmed (they may or may not have reached a queue).
    Disconnected(String),
    /// The server cancelled the consumer (its queue was deleted).
    ConsumerCancelled {
        /// The consumer's tag.
        consumer_tag: String,
    },
    /// TLS failed: the server's certificate was refused (unknown CA, wrong
    /// host name, expired), the server refused ours, or the TLS options
    /// are unusable. Not retried by reconnect.
    Tls(String),
}

impl Error {
    /// The core error, when this is one.
    pub fn protocol(&self) -> Option<&amqp::Error> {
        match self {
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<amqp::Error> for Error {
    fn from(e: amqp::Error) -> Self {
        Error::Protocol(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(s) => write!(f, "invalid AMQP URL: {s}"),
            Error::Io(s) => write!(f, "connection failed: {s}"),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::ChannelClosed(r) => write!(
                f,
                "the server closed the channel: {r} (the connection stays up; open a new channel)"
            ),
            Error::Nacked { delivery_tag } => write!(
                f,
                "the broker nacked publish {delivery_tag}: it was not stored; publish it again"
            ),
            Error::Returned { code, text } => write!(
                f,
                "the message was returned ({} {text}): no queue is bound for its routing key",
                code.as_u16()
            ),
            Error::Disconnected(why) => write!(
                f,
                "connection lost ({why}); publishes not yet confirmed were not counted as sent"
            ),
            Error::ConsumerCancelled { consumer_tag } => write!(
                f,
                "the server cancelled consumer {consumer_tag} (its queue was deleted?)"
            ),
            Error::Tls(why) => write!(
                f,
                "TLS failed: {why} (check the CA file, the server's host name, and the client \
                 certificate)"
            ),
        }
    }
}

impl std::error::Error for Error {}
