//! What the NATS drivers' `next_event` hands the application: the session's
//! owned [`nats::Event`]s and its borrowed [`nats::Received`] values in one
//! flat enum, in the order the session made them.

use crate::nats::{self, Message, PingId, RequestId, ServerErrorKind, Sid};

/// One thing that happened on the connection. `Message`, `Reply` and
/// `ServerError` borrow the driver's receive buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NatsEvent<'a> {
    /// The handshake completed; live subscriptions were re-sent.
    Connected {
        /// True after a reconnect.
        reconnect: bool,
        /// Set when the server's max_payload exceeds the receive buffer.
        max_payload_warning: Option<nats::MaxPayloadWarning>,
    },
    /// A message for a subscription.
    Message(Message<'a>),
    /// The reply to a request.
    Reply {
        /// Which request.
        request: RequestId,
        /// The reply.
        message: Message<'a>,
    },
    /// A request found no subscriber (503 status).
    NoResponders {
        /// Which request.
        request: RequestId,
    },
    /// A request's deadline passed without reply.
    RequestTimedOut {
        /// Which request.
        request: RequestId,
    },
    /// A PING (a flush, or a keepalive) was answered.
    Pong {
        /// The most recent PING answered.
        ping: PingId,
    },
    /// `+OK` in verbose mode.
    Ok,
    /// A non-fatal `-ERR` (e.g. a permissions violation).
    ServerError {
        /// Classified kind.
        kind: ServerErrorKind,
        /// The server's text.
        message: &'a str,
    },
    /// The server sent a new INFO.
    InfoUpdated,
    /// The server entered lame duck mode.
    LameDuckMode,
    /// A subscription ended (auto-unsubscribe count reached, or drained).
    SubscriptionDone {
        /// Which subscription.
        sid: Sid,
    },
}

impl From<nats::Event> for NatsEvent<'_> {
    fn from(event: nats::Event) -> Self {
        match event {
            nats::Event::Connected {
                reconnect,
                max_payload_warning,
            } => NatsEvent::Connected {
                reconnect,
                max_payload_warning,
            },
            nats::Event::NoResponders { request } => NatsEvent::NoResponders { request },
            nats::Event::RequestTimedOut { request } => NatsEvent::RequestTimedOut { request },
            nats::Event::Pong { ping } => NatsEvent::Pong { ping },
            nats::Event::Ok => NatsEvent::Ok,
            nats::Event::InfoUpdated => NatsEvent::InfoUpdated,
            nats::Event::LameDuckMode => NatsEvent::LameDuckMode,
            nats::Event::SubscriptionDone { sid } => NatsEvent::SubscriptionDone { sid },
        }
    }
}

impl<'a> From<nats::Received<'a>> for NatsEvent<'a> {
    fn from(received: nats::Received<'a>) -> Self {
        match received {
            nats::Received::Message(m) => NatsEvent::Message(m),
            nats::Received::Reply { request, message } => NatsEvent::Reply { request, message },
            nats::Received::ServerError { kind, message } => {
                NatsEvent::ServerError { kind, message }
            }
        }
    }
}
