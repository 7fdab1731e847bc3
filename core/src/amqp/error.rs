//! The one error type of the AMQP core. Each says what happened and what
//! the caller can do; [`Error::is_fatal`] says whether the connection is
//! gone (reconnect) or only the call failed. Errors that close only a
//! channel are not errors here: they arrive as
//! [`Event::ChannelClosed`](super::Event::ChannelClosed) with a
//! [`CloseReason`], and the connection goes on.

use core::fmt;

use crate::buf::CapacityError;

use super::codec::{DecodeError, EncodeError, ShortStr};
use super::frame::FrameError;
use super::ids::{ChannelId, ReplyCode};
use super::session::{Mechanism, State};

/// Capacity of owned server texts (reply texts, queue names, consumer tags):
/// an AMQP short string holds at most 255 bytes.
pub const TEXT_CAPACITY: usize = 255;

/// An owned copy of a short string the server sent.
pub type Text = heapless::String<TEXT_CAPACITY>;

/// Capacity of a [`CloseReason`]'s text: longer server texts are cut (the
/// code says what happened; the text adds the queue or exchange name).
/// Kept small so that [`Error`] stays small to return.
pub const REASON_CAPACITY: usize = 96;

/// The text of a [`CloseReason`].
pub type ReasonText = heapless::String<REASON_CAPACITY>;

/// Copies a short string into a fixed string (a [`Text`] holds any); bytes that are not UTF-8 become
/// U+FFFD (and text that then no longer fits is cut).
pub fn text<const N: usize>(s: ShortStr<'_>) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for chunk in s.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.push(c).is_err() {
                return out;
            }
        }
        if !chunk.invalid().is_empty() && out.push('\u{FFFD}').is_err() {
            return out;
        }
    }
    out
}

/// Why the server closed a channel or the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    /// The reply code, classified.
    pub code: ReplyCode,
    /// The server's text (e.g. "NOT_FOUND - no queue 'q' in vhost '/'"),
    /// cut at [`REASON_CAPACITY`] bytes.
    pub text: ReasonText,
    /// Class of the method that caused it (0: none).
    pub class_id: u16,
    /// Method that caused it (0: none).
    pub method_id: u16,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_u16(), self.text)?;
        if self.class_id != 0 {
            write!(f, " (in method {}.{})", self.class_id, self.method_id)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the AMQP core.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A frame (or a whole message: method, header and body frames, see
    /// [`Session::handle_input`](super::Session::handle_input)) of `needed`
    /// bytes cannot fit the receive buffer of `capacity` bytes. Reported
    /// from the header, before the payload arrives. Fatal.
    FrameTooLarge {
        /// Bytes needed.
        needed: usize,
        /// Receive buffer capacity.
        capacity: usize,
    },
    /// The server sent bytes that are not well-formed frames; the
    /// connection was closed with 501 FRAME_ERROR. Fatal.
    Frame(FrameError),
    /// A method or content header could not be decoded; the connection was
    /// closed with 502 SYNTAX_ERROR. Fatal.
    Decode(DecodeError),
    /// A frame or method the protocol does not allow here (e.g. a body frame
    /// without a header, a method for a channel that is not open); the
    /// connection was closed with the code in `code`. Fatal.
    Unexpected {
        /// What arrived.
        what: &'static str,
        /// Channel it arrived on.
        channel: ChannelId,
        /// The code we closed the connection with (503, 504 or 505).
        code: ReplyCode,
    },
    /// The server refused the login (403 ACCESS_REFUSED): wrong user or
    /// password, or a mechanism the user may not use. Fatal; retrying with
    /// the same credentials will fail again.
    AccessRefused(CloseReason),
    /// The server does not offer the SASL mechanism of the options. Fatal.
    MechanismNotOffered {
        /// What the options ask for.
        wanted: Mechanism,
    },
    /// The server closed the connection (`connection.close`), e.g. 320
    /// CONNECTION_FORCED when an operator closed it or the broker stops,
    /// 530 NOT_ALLOWED for a vhost the user may not open. Fatal.
    ServerClosed(CloseReason),
    /// The transport ended (EOF or an IO error), reported by the driver
    /// through [`Session::connection_lost`](super::Session::connection_lost).
    /// During the handshake RabbitMQ does this after wrong credentials when
    /// the client does not ask for an explicit refusal.
    ConnectionLost {
        /// Where the session was.
        state: State,
    },
    /// Nothing arrived from the server for two heartbeat intervals: the
    /// connection is dead even if the transport has not noticed. Fatal.
    HeartbeatTimeout {
        /// Milliseconds of silence.
        silent_ms: u64,
    },
    /// The handshake did not finish within the options' handshake timeout. Fatal.
    HandshakeTimeout {
        /// Where the handshake stopped.
        state: State,
    },
    /// The server blocked publishing (a resource alarm: memory or disk) for
    /// longer than the options' blocked timeout. The session closed the
    /// connection; what was not confirmed is reported by the driver. Fatal.
    BlockedTimeout {
        /// Milliseconds blocked.
        blocked_ms: u64,
    },
    /// The transmit buffer cannot take the frames now (`needed <= capacity`:
    /// write out [`Session::transmit`](super::Session::transmit) and retry)
    /// or ever (`needed > capacity`: use a bigger transmit buffer). Nothing
    /// was written.
    BufferFull(CapacityError),
    /// A name, routing key or property given by the caller cannot be
    /// encoded (over 255 bytes); nothing was written.
    Encode(EncodeError),
    /// The call needs an open connection.
    NotConnected,
    /// The server blocked publishing (connection.blocked); wait for
    /// [`Event::Unblocked`](super::Event::Unblocked). Nothing was written.
    Blocked,
    /// The channel is not open (never opened, closing, or closed by the
    /// server). Nothing was written.
    ChannelNotOpen(ChannelId),
    /// The server paused content on this channel (`channel.flow` with
    /// `active: false`); wait for [`Event::Flow`](super::Event::Flow) with
    /// `active: true`. Nothing was written.
    FlowPaused(ChannelId),
    /// A body from [`Session::publish_body_later`](super::Session::publish_body_later)
    /// is still to be written; publish the next one after
    /// [`Session::body_transmitted`](super::Session::body_transmitted).
    /// Nothing was written.
    BodyInFlight,
    /// Every channel number is taken (`channel_max` negotiated, or the
    /// session's channel table is full).
    NoFreeChannel {
        /// Channels the session can hold.
        limit: u16,
    },
    /// The channel has as many unconfirmed publishes as its confirm window
    /// holds; wait for confirms ([`Event::Confirm`](super::Event::Confirm)).
    /// Nothing was written.
    ConfirmWindowFull {
        /// Unconfirmed publishes.
        outstanding: u64,
    },
    /// The method cannot be sent with [`Session::call`](super::Session::call)
    /// (server-only, or one with its own function). Nothing was written.
    NotCallable {
        /// Class id.
        class_id: u16,
        /// Method id.
        method_id: u16,
    },
}

impl Error {
    /// True when the connection is unusable afterwards: drop the transport,
    /// reconnect and call [`Session::start`](super::Session::start).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::BufferFull(_)
                | Error::Encode(_)
                | Error::NotConnected
                | Error::Blocked
                | Error::ChannelNotOpen(_)
                | Error::FlowPaused(_)
                | Error::BodyInFlight
                | Error::NoFreeChannel { .. }
                | Error::ConfirmWindowFull { .. }
                | Error::NotCallable { .. }
        )
    }
}

impl From<CapacityError> for Error {
    fn from(e: CapacityError) -> Self {
        Error::BufferFull(e)
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::Encode(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FrameTooLarge { needed, capacity } => write!(
                f,
                "the server sent a frame or message of {needed} bytes but the receive buffer \
                 holds {capacity}; give the connection a bigger receive buffer (or lower frame-max)"
            ),
            Error::Frame(e) => write!(f, "malformed frame from the server: {e}; connection closed"),
            Error::Decode(e) => write!(f, "malformed method from the server: {e}; connection closed"),
            Error::Unexpected {
                what,
                channel,
                code,
            } => write!(
                f,
                "the server sent {what} on channel {channel}, which the protocol does not allow \
                 here; connection closed with {}",
                code.as_u16()
            ),
            Error::AccessRefused(r) => write!(
                f,
                "login refused ({r}); check the user, password and the user's permissions"
            ),
            Error::MechanismNotOffered { wanted } => write!(
                f,
                "the server does not offer the {wanted:?} login mechanism; \
                 for EXTERNAL enable rabbitmq_auth_mechanism_ssl and use amqps with a client certificate"
            ),
            Error::ServerClosed(r) => write!(f, "the server closed the connection: {r}"),
            Error::ConnectionLost { state } => match state {
                State::AwaitingTune => f.write_str(
                    "the server dropped the connection after the login: wrong user or password",
                ),
                State::AwaitingOpenOk => f.write_str(
                    "the server dropped the connection when opening the virtual host: \
                     check that it exists and the user may use it",
                ),
                _ => write!(f, "the connection was lost ({state:?}); reconnect"),
            },
            Error::HeartbeatTimeout { silent_ms } => write!(
                f,
                "nothing heard from the server for {silent_ms} ms (two heartbeats): \
                 connection considered dead; reconnect"
            ),
            Error::HandshakeTimeout { state } => write!(
                f,
                "the AMQP handshake did not finish in time (stuck in {state:?}); \
                 is this an AMQP port, and is the broker overloaded?"
            ),
            Error::BlockedTimeout { blocked_ms } => write!(
                f,
                "the broker blocked publishing for {blocked_ms} ms (memory or disk alarm); \
                 connection closed; unconfirmed messages were not sent"
            ),
            Error::BufferFull(e) => write!(f, "transmit buffer full: {e}"),
            Error::Encode(e) => write!(f, "cannot encode: {e}"),
            Error::NotConnected => f.write_str("the connection is not open"),
            Error::Blocked => f.write_str(
                "the broker blocked publishing (resource alarm); wait for unblocked",
            ),
            Error::ChannelNotOpen(ch) => write!(f, "channel {ch} is not open"),
            Error::FlowPaused(ch) => write!(
                f,
                "the server paused publishing on channel {ch} (channel.flow); wait for it to resume"
            ),
            Error::BodyInFlight => f.write_str(
                "a large body is still being written on this connection; publish after it",
            ),
            Error::NoFreeChannel { limit } => write!(f, "all {limit} channels are in use"),
            Error::ConfirmWindowFull { outstanding } => write!(
                f,
                "{outstanding} publishes await confirms, the channel's window is full; \
                 wait for confirms"
            ),
            Error::NotCallable {
                class_id,
                method_id,
            } => write!(
                f,
                "method {class_id}.{method_id} is not sent with call(); use its own function"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
