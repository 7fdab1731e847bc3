//! The facade's errors: what happened and what to do.

use std::fmt;
use std::time::Duration;

use super::uri::UriError;
use crate::{amqp, nats, nsq};

/// A facade error.
#[derive(Debug)]
pub enum Error {
    /// The URI is wrong (the part, what was found, the accepted forms).
    Uri(UriError),
    /// The config file could not be read or parsed.
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No sender/receiver of that name is declared.
    UnknownName {
        /// "sender" or "receiver".
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The sender or receiver was cancelled.
    Cancelled {
        /// Its name.
        name: String,
    },
    /// A message whose CRC-32C does not match: it was changed on the way.
    /// It is not handed over; the receiver settles it so it is not
    /// redelivered forever (FIN, JetStream TERM, AMQP reject).
    Corrupted {
        /// Its name (from a header that may itself be damaged).
        name: String,
        /// Its id (idem).
        message_id: String,
        /// The CRC it carried.
        expected: u32,
        /// The CRC of what arrived.
        actual: u32,
    },
    /// A message that is not a facade envelope (another client wrote it
    /// without the envelope's fields, or the bytes are cut). Not handed over.
    NotAnEnvelope {
        /// Its subject/topic/routing key.
        name: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The value could not be serialized.
    Serialize(String),
    /// The payload could not be deserialized into the asked type.
    Deserialize(String),
    /// Compression or decompression failed (corrupt data, over the limit).
    Compression(String),
    /// The operation took longer than its timeout; for a send, the message
    /// may or may not have reached the broker (it is not counted sent).
    TimedOut {
        /// "send", "connect", "stop"...
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// Not supported with this backend or build (says which and why).
    Unsupported(String),
    /// From the NATS client.
    Nats(nats::Error),
    /// From JetStream.
    JetStream(nats::jetstream::JetStreamError),
    /// From the NSQ client.
    Nsq(nsq::Error),
    /// From the AMQP client.
    Amqp(amqp::Error),
    /// From the durable outbox (`outbox=DIR`): the message was not taken.
    Outbox(crate::outbox::OutboxError),
    /// `stop()` reached its deadline with messages the broker had not
    /// confirmed yet. They are not lost: they stay in the outbox spool and
    /// are sent when a sender opens the same directory again.
    Unconfirmed {
        /// The sender.
        name: String,
        /// Messages still in the spool.
        remaining: usize,
        /// The spool directory.
        spool: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Uri(e) => e.fmt(f),
            Error::Config { path, reason } => write!(f, "config file {path}: {reason}"),
            Error::UnknownName { kind, name } => write!(
                f,
                "no {kind} named {name:?}: declare it in code or in the config file"
            ),
            Error::Cancelled { name } => write!(f, "{name:?} was cancelled"),
            Error::Corrupted {
                name,
                message_id,
                expected,
                actual,
            } => write!(
                f,
                "corrupted message {message_id:?} on {name:?}: CRC-32C {actual:08x} does not match the {expected:08x} it was sent with; it was not delivered"
            ),
            Error::NotAnEnvelope { name, reason } => write!(
                f,
                "message on {name:?} is not a courier envelope ({reason}); it was not delivered: send it through the facade or add the envelope headers"
            ),
            Error::Serialize(e) => write!(f, "cannot serialize the message: {e}"),
            Error::Deserialize(e) => write!(f, "cannot deserialize the payload: {e}"),
            Error::Compression(e) => write!(f, "compression: {e}"),
            Error::TimedOut { op, after } => write!(
                f,
                "{op} timed out after {after:?}; not counted as done (the broker may or may not have it)"
            ),
            Error::Unsupported(e) => write!(f, "unsupported: {e}"),
            Error::Nats(e) => write!(f, "nats: {e}"),
            Error::JetStream(e) => write!(f, "jetstream: {e}"),
            Error::Nsq(e) => write!(f, "nsq: {e}"),
            Error::Amqp(e) => write!(f, "amqp: {e}"),
            Error::Outbox(e) => write!(f, "{e}"),
            Error::Unconfirmed {
                name,
                remaining,
                spool,
            } => write!(
                f,
                "sender {name:?} stopped with {remaining} messages not yet confirmed by the broker; \
                 they stay in the outbox spool {spool} and are sent when a sender opens it again"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        Error::Uri(e)
    }
}
impl From<nats::Error> for Error {
    fn from(e: nats::Error) -> Self {
        Error::Nats(e)
    }
}
impl From<nats::jetstream::JetStreamError> for Error {
    fn from(e: nats::jetstream::JetStreamError) -> Self {
        Error::JetStream(e)
    }
}
impl From<nsq::Error> for Error {
    fn from(e: nsq::Error) -> Self {
        Error::Nsq(e)
    }
}
impl From<crate::outbox::OutboxError> for Error {
    fn from(e: crate::outbox::OutboxError) -> Self {
        Error::Outbox(e)
    }
}
impl From<amqp::Error> for Error {
    fn from(e: amqp::Error) -> Self {
        Error::Amqp(e)
    }
}
