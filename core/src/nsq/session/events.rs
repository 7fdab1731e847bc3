//! Owned events, polled with [`Session::poll_event`](super::Session::poll_event).
//! Nothing here borrows the input: a received message, which does, comes
//! out of `handle_input` as a [`Message`](crate::nsq::Message).

use crate::nsq::error::ServerError;
use crate::nsq::identify::Compression;

/// How many events the session holds. `handle_input` reads no frame while
/// fewer than two slots are free (one frame makes at most two events): it
/// returns `(0, None)` until [`Session::poll_event`](super::Session::poll_event)
/// made room.
pub const EVENT_QUEUE: usize = 8;

/// Identifies one publish (PUB, MPUB or DPUB) on one session, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishId(pub u64);

/// Something the application or driver must know or act on.
///
/// The handshake's bigger results (negotiated settings, auth identity) are
/// read from the session, so an event stays small.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// nsqd answered IDENTIFY; [`Session::negotiated`](super::Session::negotiated)
    /// has its settings (None when feature negotiation was off and nsqd
    /// said `OK`).
    Identified,
    /// nsqd agreed to TLS: start the client handshake on the socket now.
    /// Every byte after the IDENTIFY response is TLS; keep feeding the
    /// session the decrypted bytes. `handle_input` reads nothing until
    /// this event was polled.
    StartTls,
    /// nsqd agreed to compression: wrap the stream (over TLS if present)
    /// now. Input bytes not yet consumed are already compressed, and every
    /// byte the session transmits from now on must be compressed.
    /// `handle_input` reads nothing until this event was polled.
    StartCompression(Compression),
    /// nsqd requires AUTH: call [`Session::auth`](super::Session::auth)
    /// with the secret.
    AuthRequired,
    /// nsqd accepted the AUTH secret; [`Session::auth_response`](super::Session::auth_response)
    /// says who we are to it.
    Authenticated,
    /// The handshake is complete: subscribe or publish.
    Ready,
    /// nsqd accepted SUB: send RDY to receive messages.
    Subscribed,
    /// nsqd accepted the publish with this id.
    Published {
        /// The id [`Session::publish`](super::Session::publish) (or a sibling) returned.
        id: PublishId,
    },
    /// nsqd did not accept the publish with this id.
    PublishFailed {
        /// The id [`Session::publish`](super::Session::publish) (or a sibling) returned.
        id: PublishId,
        /// Why; after a fatal error every outstanding publish is reported
        /// this way, then the session ends with the error.
        error: ServerError,
    },
    /// A non-fatal error (FIN/REQ/TOUCH of a message no longer in flight);
    /// the connection stays open.
    Error(ServerError),
    /// A heartbeat arrived and `NOP` was queued: flush
    /// [`Session::transmit`](super::Session::transmit).
    Heartbeat,
    /// nsqd answered CLS with `CLOSE_WAIT`: no more messages will come.
    /// FIN/REQ the in-flight ones, then close the socket.
    Closed,
}
