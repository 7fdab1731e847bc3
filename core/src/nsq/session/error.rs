//! Why a session ended (or why a command was refused).

use core::fmt;

use crate::nsq::commands::CommandError;
use crate::nsq::error::ServerError;
use crate::nsq::frame::FrameError;
use crate::nsq::identify::ResponseError;

/// Why a session ended. After any of these the connection is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionError {
    /// nsqd sent a malformed frame.
    Frame(FrameError),
    /// nsqd reported a fatal error and closes the connection.
    Server(ServerError),
    /// A JSON response could not be parsed.
    Response(ResponseError),
    /// A command could not be written (transmit buffer full, bad name...).
    /// Nothing was written and the session stays usable.
    Command(CommandError),
    /// Nothing arrived for two heartbeat intervals: the peer or network is
    /// gone.
    HeartbeatTimeout {
        /// Milliseconds since the last frame.
        silent_ms: u64,
        /// Two heartbeat intervals, in milliseconds.
        window_ms: u64,
    },
    /// nsqd sent a frame that makes no sense in this state.
    UnexpectedFrame {
        /// What the session was waiting for.
        expected: &'static str,
        /// What arrived.
        got: UnexpectedKind,
    },
    /// A method was called in a state that does not allow it.
    InvalidState {
        /// The method.
        operation: &'static str,
        /// The session's state.
        state: &'static str,
    },
    /// RDY above the `max_rdy_count` nsqd announced; nothing was written
    /// and the session stays usable.
    RdyTooHigh {
        /// The RDY asked for.
        count: u32,
        /// nsqd's `max_rdy_count`.
        max: i64,
    },
    /// `PENDING` commands already await nsqd's answer: wait for
    /// [`Event::Published`](super::Event::Published) before publishing more, or use a bigger `PENDING`.
    TooManyOutstanding {
        /// The session's `PENDING`.
        capacity: usize,
    },
}

/// The kind of frame that arrived unexpectedly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnexpectedKind {
    /// A response other than the one expected (or none expected).
    Response,
    /// A message before SUB was accepted.
    Message,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Frame(e) => write!(f, "{e}"),
            SessionError::Server(e) => write!(f, "{e}"),
            SessionError::Response(e) => write!(f, "{e}"),
            SessionError::Command(e) => write!(f, "{e}"),
            SessionError::HeartbeatTimeout { silent_ms, window_ms } => write!(
                f,
                "nothing received from nsqd for {silent_ms} ms (two heartbeat intervals = {window_ms} ms): \
                 the connection is dead; reconnect"
            ),
            SessionError::UnexpectedFrame { expected, got } => write!(
                f,
                "nsqd sent an unexpected {} while the session expected {expected}: the peer is not a \
                 compatible nsqd or the stream is corrupt; reconnect",
                match got {
                    UnexpectedKind::Response => "response",
                    UnexpectedKind::Message => "message",
                }
            ),
            SessionError::InvalidState { operation, state } => write!(
                f,
                "{operation} is not allowed while the session is {state}; wait for Event::Ready \
                 (or Event::Subscribed) first"
            ),
            SessionError::RdyTooHigh { count, max } => write!(
                f,
                "RDY {count} exceeds nsqd's max_rdy_count of {max}; lower max_in_flight or raise nsqd's --max-rdy-count"
            ),
            SessionError::TooManyOutstanding { capacity } => write!(
                f,
                "{capacity} commands already await nsqd's answer; wait for Event::Published or use a \
                 session with a larger PENDING"
            ),
        }
    }
}

impl core::error::Error for SessionError {}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Frame(e)
    }
}

impl From<CommandError> for SessionError {
    fn from(e: CommandError) -> Self {
        SessionError::Command(e)
    }
}

impl From<ResponseError> for SessionError {
    fn from(e: ResponseError) -> Self {
        SessionError::Response(e)
    }
}
