//! What comes out of the session: owned [`Event`]s (polled), what borrows
//! the input ([`Received`], [`Message`]) and the counters ([`Stats`]).

use super::options::CONTROL_LINE_ALLOWANCE;
use crate::nats::error::ServerErrorKind;
use crate::nats::headers::Headers;
use crate::nats::ids::{PingId, RequestId, Sid};
use core::fmt;

/// The server's max_payload (plus [`CONTROL_LINE_ALLOWANCE`]) exceeds what
/// the receive buffer can hold: messages that large would fail with
/// [`Error::FrameTooLarge`](crate::nats::Error::FrameTooLarge).
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

/// How many owned events the session holds. [`Session::handle_input`]
/// parses nothing while one waits (take them with [`Session::poll_event`]
/// first), so events come out in the order the input made them; only
/// [`Session::handle_timeout`] queues several at once (request timeouts).
///
/// [`Session::handle_input`]: super::Session::handle_input
/// [`Session::poll_event`]: super::Session::poll_event
/// [`Session::handle_timeout`]: super::Session::handle_timeout
pub const EVENT_QUEUE: usize = 2;

/// What [`Session::handle_input`](super::Session::handle_input) returns
/// because it borrows the input: a message, a reply or a server's error
/// text. Consume the bytes it used only after handling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Received<'a> {
    /// A message for a subscription.
    Message(Message<'a>),
    /// The reply to a request.
    Reply {
        /// Which request.
        request: RequestId,
        /// The reply.
        message: Message<'a>,
    },
    /// A non-fatal `-ERR` (e.g. a permissions violation); the connection
    /// stays up. (A fatal one is an [`Error`](crate::nats::Error).)
    ServerError {
        /// Classified kind.
        kind: ServerErrorKind,
        /// The server's text.
        message: &'a str,
    },
}

/// What the session tells the application, owned: polled with
/// [`Session::poll_event`](super::Session::poll_event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; live subscriptions were re-sent.
    Connected {
        /// True after a [`Session::start`](super::Session::start) (a reconnect).
        reconnect: bool,
        /// Set when the server's max_payload exceeds the receive buffer.
        max_payload_warning: Option<MaxPayloadWarning>,
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
    /// A PING made with [`Session::ping`](super::Session::ping) (or a
    /// keepalive) was answered.
    Pong {
        /// The most recent PING answered.
        ping: PingId,
    },
    /// `+OK` in verbose mode.
    Ok,
    /// The server sent a new INFO (cluster change...); read it with
    /// [`Session::server_info`](super::Session::server_info).
    InfoUpdated,
    /// The server sent a new INFO saying it entered lame duck mode: it will
    /// close its connections soon and asks clients to move to another
    /// server. The INFO is readable with
    /// [`Session::server_info`](super::Session::server_info).
    LameDuckMode,
    /// A subscription ended: an auto-unsubscribe reached its count, or a
    /// drain ([`Session::unsubscribe_draining`](super::Session::unsubscribe_draining))
    /// completed. No message for it follows.
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
    /// Bytes of queued commands discarded by [`Session::start`](super::Session::start).
    pub discarded_on_reset: u64,
    /// Publishes discarded by [`Session::start`](super::Session::start) (half written, or no room
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
