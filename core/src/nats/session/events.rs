//! What comes out of the session: [`Event`], [`Message`], [`Stats`].

use super::options::CONTROL_LINE_ALLOWANCE;
use crate::nats::error::ServerErrorKind;
use crate::nats::headers::Headers;
use crate::nats::ids::{PingId, RequestId, Sid};
use core::fmt;

/// The server's max_payload (plus [`CONTROL_LINE_ALLOWANCE`]) exceeds what
/// the receive buffer can hold: messages that large would fail with
/// [`Error::FrameTooLarge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MaxPayloadWarning {
    /// The server's limit.
    pub max_payload: u64,
    /// The receive buffer capacity from the options.
    pub rx_capacity: usize,
}

/// A received message; every slice borrows the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    /// Subscription it was delivered to.
    pub sid: Sid,
    /// Subject it was published to.
    pub subject: &'a str,
    /// Reply subject, if the publisher wants an answer.
    pub reply: Option<&'a str>,
    /// Headers (HMSG), if any.
    pub headers: Option<Headers<'a>>,
    /// Payload (headers excluded).
    pub payload: &'a [u8],
    /// Status code from the header line (e.g. 503), if any.
    pub status: Option<u16>,
}

/// What the session tells the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// The handshake completed; live subscriptions were re-sent.
    Connected {
        /// True after a [`Session::reset`] (a reconnect).
        reconnect: bool,
        /// Set when the server's max_payload exceeds the receive buffer.
        max_payload_warning: Option<MaxPayloadWarning>,
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
    /// A PING made with [`Session::ping`] (or a keepalive) was answered.
    Pong {
        /// The most recent PING answered.
        ping: PingId,
    },
    /// `+OK` in verbose mode.
    Ok,
    /// A non-fatal `-ERR` (e.g. a permissions violation); the connection
    /// stays up.
    ServerError {
        /// Classified kind.
        kind: ServerErrorKind,
        /// The server's text.
        message: &'a str,
    },
    /// The server sent a new INFO (cluster change...); read it with
    /// [`Session::server_info`].
    InfoUpdated,
    /// The server sent a new INFO saying it entered lame duck mode: it will
    /// close its connections soon and asks clients to move to another
    /// server. The INFO is readable with [`Session::server_info`].
    LameDuckMode,
    /// A subscription ended: an auto-unsubscribe reached its count, or a
    /// drain ([`Session::unsubscribe_draining`]) completed. No message for
    /// it follows.
    SubscriptionDone {
        /// Which subscription.
        sid: Sid,
    },
}

/// Counters the session keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Messages dropped because no live subscription had their sid.
    pub dropped_unknown_sid: u64,
    /// Replies that arrived after their request timed out (dropped).
    pub late_replies: u64,
    /// Bytes of queued commands discarded by [`Session::reset`].
    pub discarded_on_reset: u64,
    /// Publishes discarded by [`Session::reset`] (half written, or no room
    /// to keep them): the server never got them from this session.
    pub publishes_discarded_on_reset: u64,
    /// Messages delivered to subscriptions (replies included).
    pub messages_received: u64,
    /// Messages delivered without their headers because the header block
    /// (written by the publishing client) was malformed.
    pub malformed_headers: u64,
}

impl fmt::Display for MaxPayloadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server allows {}-byte messages but the receive buffer holds {}: larger \
             messages will fail with FrameTooLarge; use a receive buffer of at least \
             max_payload + {} bytes",
            self.max_payload, self.rx_capacity, CONTROL_LINE_ALLOWANCE
        )
    }
}
