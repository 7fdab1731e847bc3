//! The NSQ connection state machine (sans-IO, quinn-proto style).
//!
//! A [`Session`] owns the transmit buffer and knows where in the protocol
//! a connection is; the driver owns the socket, the receive buffer and the
//! clock. The driver:
//!
//! 1. writes [`Session::transmit`] to the socket and reports how much went
//!    out with [`Session::transmitted`];
//! 2. feeds received bytes to [`Session::handle_input`] in a loop,
//!    consuming what it reports, until it returns `(0, None)` (more bytes
//!    needed). Each call handles at most one frame, so the driver sees
//!    exactly where the stream changes (TLS, compression);
//! 3. sleeps until [`Session::poll_timeout`] and calls
//!    [`Session::handle_timeout`].
//!
//! Handshake: the session writes the magic and IDENTIFY at creation, then
//! emits, in order and only when negotiated: [`Event::Identified`],
//! [`Event::StartTls`] (wrap the stream in TLS now: the bytes that follow
//! are TLS), [`Event::StartCompression`] (wrap the — possibly TLS — stream
//! in snappy/DEFLATE: unconsumed input bytes are already compressed),
//! [`Event::AuthRequired`] (call [`Session::auth`]), then [`Event::Ready`].
//! A consumer then calls [`Session::subscribe`] and [`Session::ready`]; a
//! producer calls [`Session::publish`] and friends.
//!
//! nsqd answers commands in order, so responses are matched to a bounded
//! FIFO of outstanding commands (`PENDING` entries): each publish gets a
//! [`PublishId`] that comes back as [`Event::Published`] or
//! [`Event::PublishFailed`]. Heartbeats are answered with `NOP` by the
//! session itself; silence for two heartbeat intervals is an error.

use core::fmt;

use heapless::Deque;

use crate::buf::TxBuf;
use crate::nsq::commands::{self, CommandError, Identify};
use crate::nsq::error::ServerError;
use crate::nsq::frame::{
    decode_frame, Frame, FrameError, Message, MessageId, CLOSE_WAIT, HEARTBEAT, OK,
};
use crate::nsq::identify::{
    parse_auth_response, parse_identify_response, AuthResponse, Compression, IdentifyReply,
    IdentifyResponse, ResponseError,
};
use crate::time::{Duration, Instant};

/// nsqd's heartbeat interval when the client does not choose one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Identifies one publish (PUB, MPUB or DPUB) on one session, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishId(pub u64);

/// Something the application or driver must know or act on.
///
/// Kept small because one is returned per message: the handshake's bigger
/// results (negotiated settings, auth identity) are read from the session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// nsqd answered IDENTIFY; [`Session::negotiated`] has its settings
    /// (None when feature negotiation was off and nsqd said `OK`).
    Identified,
    /// nsqd agreed to TLS: start the client handshake on the socket now.
    /// Every byte after the IDENTIFY response is TLS; keep feeding the
    /// session the decrypted bytes.
    StartTls,
    /// nsqd agreed to compression: wrap the stream (over TLS if present)
    /// now. Input bytes not yet consumed are already compressed, and every
    /// byte the session transmits from now on must be compressed.
    StartCompression(Compression),
    /// nsqd requires AUTH: call [`Session::auth`] with the secret.
    AuthRequired,
    /// nsqd accepted the AUTH secret; [`Session::auth_response`] says who
    /// we are to it.
    Authenticated,
    /// The handshake is complete: subscribe or publish.
    Ready,
    /// nsqd accepted SUB: send RDY to receive messages.
    Subscribed,
    /// A message; its body borrows the input. FIN, REQ or TOUCH it by id.
    Message(Message<'a>),
    /// nsqd accepted the publish with this id.
    Published {
        /// The id [`Session::publish`] (or a sibling) returned.
        id: PublishId,
    },
    /// nsqd did not accept the publish with this id.
    PublishFailed {
        /// The id [`Session::publish`] (or a sibling) returned.
        id: PublishId,
        /// Why; fatal errors end the session after every outstanding
        /// publish was reported.
        error: ServerError,
    },
    /// A non-fatal error (FIN/REQ/TOUCH of a message no longer in flight);
    /// the connection stays open.
    Error(ServerError),
    /// A heartbeat arrived and `NOP` was queued: flush [`Session::transmit`].
    Heartbeat,
    /// nsqd answered CLS with `CLOSE_WAIT`: no more messages will come.
    /// FIN/REQ the in-flight ones, then close the socket.
    Closed,
}

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
    /// [`Event::Published`] before publishing more, or use a bigger `PENDING`.
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

/// A command awaiting nsqd's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Sub,
    Publish(PublishId),
    Close,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    AwaitIdentify,
    AnnounceTls,
    AwaitTlsOk,
    AnnounceCompression(Compression),
    AwaitCompressionOk,
    AnnounceAuth,
    AwaitAuthSecret,
    AwaitAuth,
    AnnounceReady,
    Ready,
    /// CLOSE_WAIT received.
    Closed,
    /// A fatal server error: outstanding publishes are reported, then Err.
    Failed(ServerError),
    /// The error was returned; every call returns it again.
    Dead(SessionError),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitIdentify => "awaiting the IDENTIFY response",
            State::AnnounceTls | State::AwaitTlsOk => "upgrading to TLS",
            State::AnnounceCompression(_) | State::AwaitCompressionOk => "upgrading to compression",
            State::AnnounceAuth | State::AwaitAuthSecret | State::AwaitAuth => "authenticating",
            State::AnnounceReady | State::Ready => "ready",
            State::Closed => "closed",
            State::Failed(_) | State::Dead(_) => "failed",
        }
    }
}

/// One NSQ connection's protocol state.
///
/// `S` is the transmit buffer's storage; `PENDING` bounds the commands
/// awaiting nsqd's answer (outstanding publishes, SUB, CLS).
pub struct Session<S, const PENDING: usize> {
    tx: TxBuf<S>,
    rx_capacity: usize,
    state: State,
    heartbeat_interval: Option<Duration>,
    last_rx: Instant,
    pending: Deque<Pending, PENDING>,
    next_publish_id: u64,
    negotiated: Option<IdentifyResponse>,
    auth: Option<AuthResponse>,
    tls_pending: bool,
    compression_pending: Option<Compression>,
    subscribed: bool,
    closing: bool,
    /// A heartbeat arrived while the transmit buffer was full.
    nop_owed: bool,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    /// Starts a session: writes the magic and IDENTIFY into a transmit
    /// buffer over `tx_storage`.
    ///
    /// `rx_capacity` is the driver's receive buffer size (bigger frames are
    /// [`FrameError::FrameTooLarge`]); `now` starts the heartbeat window.
    pub fn new(
        tx_storage: S,
        rx_capacity: usize,
        identify: &Identify<'_>,
        now: Instant,
    ) -> Result<Self, SessionError> {
        let mut tx = TxBuf::new(tx_storage);
        commands::encode_magic(&mut tx)?;
        commands::encode_identify(&mut tx, identify)?;
        let heartbeat_interval = match identify.heartbeat_interval {
            Some(ms) if ms < 0 => None,
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms as u64)),
            _ => Some(DEFAULT_HEARTBEAT_INTERVAL),
        };
        Ok(Session {
            tx,
            rx_capacity,
            state: State::AwaitIdentify,
            heartbeat_interval,
            last_rx: now,
            pending: Deque::new(),
            next_publish_id: 0,
            negotiated: None,
            auth: None,
            tls_pending: false,
            compression_pending: None,
            subscribed: false,
            closing: false,
            nop_owed: false,
        })
    }

    /// Bytes to write to the transport.
    pub fn transmit(&self) -> &[u8] {
        self.tx.pending()
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        self.tx.consume(n);
        if self.nop_owed && commands::encode_nop(&mut self.tx).is_ok() {
            self.nop_owed = false;
        }
    }

    /// Ends the session and gives the transmit storage back, for the next
    /// connection's session (a reconnect on a device without an allocator).
    pub fn into_tx_storage(self) -> S {
        self.tx.into_storage()
    }

    /// The settings nsqd negotiated (None before IDENTIFY is answered, or
    /// when feature negotiation was off).
    pub fn negotiated(&self) -> Option<&IdentifyResponse> {
        self.negotiated.as_ref()
    }

    /// nsqd's answer to AUTH (None before it, or without AUTH).
    pub fn auth_response(&self) -> Option<&AuthResponse> {
        self.auth.as_ref()
    }

    /// True once the handshake is complete and the session is usable.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// True once nsqd answered CLS with `CLOSE_WAIT`.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True after SUB was accepted.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Publishes still awaiting nsqd's answer, oldest first. After an IO
    /// error these are the ones nsqd may not have received.
    pub fn outstanding_publishes(&self) -> impl Iterator<Item = PublishId> + '_ {
        self.pending.iter().filter_map(|p| match p {
            Pending::Publish(id) => Some(*id),
            _ => None,
        })
    }

    /// The next instant [`Session::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed | State::Failed(_) | State::Dead(_) => None,
            _ => self.heartbeat_interval.map(|hb| self.last_rx + window(hb)),
        }
    }

    /// Checks the heartbeat window: an error if nothing arrived for two
    /// heartbeat intervals.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if let State::Dead(e) = &self.state {
            return Err(e.clone());
        }
        if let (Some(deadline), Some(hb)) = (self.poll_timeout(), self.heartbeat_interval) {
            if now >= deadline {
                let e = SessionError::HeartbeatTimeout {
                    silent_ms: now.saturating_since(self.last_rx).as_millis(),
                    window_ms: window(hb).as_millis(),
                };
                return Err(self.die(e));
            }
        }
        Ok(())
    }

    fn die(&mut self, e: SessionError) -> SessionError {
        self.state = State::Dead(e.clone());
        e
    }

    /// Handles at most one frame from the front of `input`.
    ///
    /// Returns how many bytes were consumed and the resulting event.
    /// `(0, None)` means more bytes are needed; anything else means call
    /// again (with the unconsumed rest) before reading more. An `Err` ends
    /// the session.
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Event<'a>>), SessionError> {
        // States that announce something without reading input.
        match core::mem::replace(&mut self.state, State::AwaitIdentify) {
            State::AnnounceTls => {
                self.state = State::AwaitTlsOk;
                return Ok((0, Some(Event::StartTls)));
            }
            State::AnnounceCompression(c) => {
                self.state = State::AwaitCompressionOk;
                return Ok((0, Some(Event::StartCompression(c))));
            }
            State::AnnounceAuth => {
                self.state = State::AwaitAuthSecret;
                return Ok((0, Some(Event::AuthRequired)));
            }
            State::AnnounceReady => {
                self.state = State::Ready;
                return Ok((0, Some(Event::Ready)));
            }
            State::Failed(error) => {
                return match self.pending.pop_front() {
                    Some(Pending::Publish(id)) => {
                        self.state = State::Failed(error.clone());
                        Ok((0, Some(Event::PublishFailed { id, error })))
                    }
                    Some(_) => {
                        self.state = State::Failed(error);
                        self.handle_input(input, now)
                    }
                    None => Err(self.die(SessionError::Server(error))),
                };
            }
            State::Dead(e) => {
                self.state = State::Dead(e.clone());
                return Err(e);
            }
            other => self.state = other,
        }

        let (frame, consumed) = match decode_frame(input, self.rx_capacity) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok((0, None)),
            Err(e) => return Err(self.die(e.into())),
        };
        self.last_rx = now;
        match self.on_frame(frame) {
            Ok(event) => Ok((consumed, event)),
            Err(e) => Err(self.die(e)),
        }
    }

    fn on_frame<'a>(&mut self, frame: Frame<'a>) -> Result<Option<Event<'a>>, SessionError> {
        match frame {
            Frame::Response(HEARTBEAT) => {
                // A full transmit buffer is not fatal: any write nsqd reads
                // resets its timer, and the NOP follows once there is room.
                if commands::encode_nop(&mut self.tx).is_err() {
                    self.nop_owed = true;
                }
                Ok(Some(Event::Heartbeat))
            }
            Frame::Error(data) => self.on_error(ServerError::parse(data)),
            Frame::Message(message) => {
                if self.subscribed && matches!(self.state, State::Ready | State::Closed) {
                    Ok(Some(Event::Message(message)))
                } else {
                    Err(self.unexpected(UnexpectedKind::Message))
                }
            }
            Frame::Response(data) => self.on_response(data),
        }
    }

    fn unexpected(&self, got: UnexpectedKind) -> SessionError {
        let expected = match (&self.state, self.pending.front()) {
            (State::AwaitIdentify, _) => "the IDENTIFY response",
            (State::AwaitTlsOk, _) => "OK after the TLS upgrade",
            (State::AwaitCompressionOk, _) => "OK after the compression upgrade",
            (State::AwaitAuthSecret, _) => "nothing until AUTH is sent",
            (State::AwaitAuth, _) => "the AUTH response",
            (_, Some(Pending::Sub)) => "OK for SUB",
            (_, Some(Pending::Publish(_))) => "OK for a publish",
            (_, Some(Pending::Close)) => "CLOSE_WAIT for CLS",
            (_, None) if got == UnexpectedKind::Message => "no message before SUB is accepted",
            (_, None) => "no response (no command awaits one)",
        };
        SessionError::UnexpectedFrame { expected, got }
    }

    fn on_error<'a>(&mut self, error: ServerError) -> Result<Option<Event<'a>>, SessionError> {
        if !error.is_fatal() {
            return Ok(Some(Event::Error(error)));
        }
        // nsqd answers in order and hangs up after a fatal error, so every
        // outstanding publish is lost: report each before the error itself.
        if self.outstanding_publishes().next().is_some() {
            self.state = State::Failed(error);
            return Ok(None);
        }
        Err(SessionError::Server(error))
    }

    /// Moves to the next handshake step after IDENTIFY or an upgrade's OK.
    fn next_handshake_step(&mut self) {
        self.state = if core::mem::take(&mut self.tls_pending) {
            State::AnnounceTls
        } else if let Some(c) = self.compression_pending.take() {
            State::AnnounceCompression(c)
        } else if self.negotiated.as_ref().is_some_and(|n| n.auth_required) {
            State::AnnounceAuth
        } else {
            State::AnnounceReady
        };
    }

    fn on_response<'a>(&mut self, data: &'a [u8]) -> Result<Option<Event<'a>>, SessionError> {
        match self.state {
            State::AwaitIdentify => {
                if let IdentifyReply::Negotiated(n) = parse_identify_response(data)? {
                    self.tls_pending = n.tls_v1;
                    self.compression_pending = n.compression();
                    self.negotiated = Some(n);
                }
                self.next_handshake_step();
                Ok(Some(Event::Identified))
            }
            State::AwaitTlsOk | State::AwaitCompressionOk if data == OK => {
                self.next_handshake_step();
                Ok(None)
            }
            State::AwaitAuth => {
                self.auth = Some(parse_auth_response(data)?);
                self.state = State::AnnounceReady;
                Ok(Some(Event::Authenticated))
            }
            State::Ready | State::Closed => {
                let event = match (self.pending.front(), data) {
                    (Some(Pending::Sub), OK) => {
                        self.subscribed = true;
                        Event::Subscribed
                    }
                    (Some(Pending::Publish(id)), OK) => Event::Published { id: *id },
                    (Some(Pending::Close), CLOSE_WAIT) => {
                        self.state = State::Closed;
                        Event::Closed
                    }
                    _ => return Err(self.unexpected(UnexpectedKind::Response)),
                };
                self.pending.pop_front();
                Ok(Some(event))
            }
            _ => Err(self.unexpected(UnexpectedKind::Response)),
        }
    }

    fn require_ready(&self, operation: &'static str) -> Result<(), SessionError> {
        match self.state {
            State::Ready if !self.closing => Ok(()),
            State::Dead(ref e) => Err(e.clone()),
            _ => Err(SessionError::InvalidState {
                operation,
                state: if self.closing {
                    "closing"
                } else {
                    self.state.name()
                },
            }),
        }
    }

    /// Ready, or closing but messages may still be in flight.
    fn require_open(&self, operation: &'static str) -> Result<(), SessionError> {
        match self.state {
            State::Ready | State::Closed => Ok(()),
            State::Dead(ref e) => Err(e.clone()),
            _ => Err(SessionError::InvalidState {
                operation,
                state: self.state.name(),
            }),
        }
    }

    fn reserve_pending(&self) -> Result<(), SessionError> {
        if self.pending.is_full() {
            return Err(SessionError::TooManyOutstanding { capacity: PENDING });
        }
        Ok(())
    }

    fn push_pending(&mut self, p: Pending) {
        // Checked by reserve_pending before anything was written.
        let _ = self.pending.push_back(p);
    }

    /// The steps every PUB/DPUB/MPUB variant shares: ready and room for its
    /// answer checked before a byte is written, then tracked for that answer.
    fn queue_publish(
        &mut self,
        operation: &'static str,
        encode: impl FnOnce(&mut TxBuf<S>) -> Result<(), CommandError>,
    ) -> Result<PublishId, SessionError> {
        self.require_ready(operation)?;
        self.reserve_pending()?;
        encode(&mut self.tx)?;
        Ok(self.track_publish())
    }

    fn track_publish(&mut self) -> PublishId {
        let id = PublishId(self.next_publish_id);
        self.next_publish_id += 1;
        self.push_pending(Pending::Publish(id));
        id
    }

    /// Sends `AUTH` with `secret` after [`Event::AuthRequired`].
    pub fn auth(&mut self, secret: &[u8]) -> Result<(), SessionError> {
        if self.state != State::AwaitAuthSecret {
            return Err(SessionError::InvalidState {
                operation: "AUTH",
                state: self.state.name(),
            });
        }
        commands::encode_auth(&mut self.tx, secret)?;
        self.state = State::AwaitAuth;
        Ok(())
    }

    /// Sends `SUB topic channel`; [`Event::Subscribed`] follows.
    pub fn subscribe(&mut self, topic: &str, channel: &str) -> Result<(), SessionError> {
        self.require_ready("SUB")?;
        if self.subscribed || self.pending.iter().any(|p| *p == Pending::Sub) {
            return Err(SessionError::InvalidState {
                operation: "SUB",
                state: "already subscribed (nsqd allows one SUB per connection)",
            });
        }
        self.reserve_pending()?;
        commands::encode_sub(&mut self.tx, topic, channel)?;
        self.push_pending(Pending::Sub);
        Ok(())
    }

    /// Sends `RDY count`: how many messages nsqd may have in flight to us.
    /// A count above nsqd's `max_rdy_count` is refused here (nsqd would
    /// answer `E_INVALID` and hang up).
    pub fn ready(&mut self, count: u32) -> Result<(), SessionError> {
        self.require_open("RDY")?;
        if let Some(max) = self.negotiated.as_ref().map(|n| n.max_rdy_count) {
            if i64::from(count) > max && max > 0 {
                return Err(SessionError::RdyTooHigh { count, max });
            }
        }
        Ok(commands::encode_rdy(&mut self.tx, count)?)
    }

    /// Sends `FIN id`: the message was handled.
    pub fn fin(&mut self, id: &MessageId) -> Result<(), SessionError> {
        self.require_open("FIN")?;
        Ok(commands::encode_fin(&mut self.tx, id)?)
    }

    /// Sends `REQ id delay_ms`: redeliver the message after the delay.
    pub fn req(&mut self, id: &MessageId, delay_ms: u32) -> Result<(), SessionError> {
        self.require_open("REQ")?;
        Ok(commands::encode_req(&mut self.tx, id, delay_ms)?)
    }

    /// Sends `TOUCH id`: reset the message's timeout.
    pub fn touch(&mut self, id: &MessageId) -> Result<(), SessionError> {
        self.require_open("TOUCH")?;
        Ok(commands::encode_touch(&mut self.tx, id)?)
    }

    /// Sends `NOP` (normally not needed: heartbeats are answered already).
    pub fn nop(&mut self) -> Result<(), SessionError> {
        self.require_open("NOP")?;
        Ok(commands::encode_nop(&mut self.tx)?)
    }

    /// Sends `CLS`: nsqd stops sending messages and answers `CLOSE_WAIT`
    /// ([`Event::Closed`]). In-flight messages can still be FIN'd.
    pub fn close(&mut self) -> Result<(), SessionError> {
        self.require_ready("CLS")?;
        self.reserve_pending()?;
        commands::encode_cls(&mut self.tx)?;
        self.push_pending(Pending::Close);
        self.closing = true;
        Ok(())
    }

    /// Sends `PUB topic body`.
    pub fn publish(&mut self, topic: &str, body: &[u8]) -> Result<PublishId, SessionError> {
        self.queue_publish("PUB", |tx| commands::encode_pub(tx, topic, body))
    }

    /// Queues only PUB's header; the driver must write [`Session::transmit`]
    /// and then exactly `body_len` body bytes before anything else is
    /// queued (vectored / zero-copy publish).
    pub fn publish_header(
        &mut self,
        topic: &str,
        body_len: usize,
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("PUB", |tx| commands::encode_pub_header(tx, topic, body_len))
    }

    /// Sends `DPUB topic defer_ms body`: delivered after `defer_ms`.
    pub fn publish_deferred(
        &mut self,
        topic: &str,
        defer_ms: u32,
        body: &[u8],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("DPUB", |tx| {
            commands::encode_dpub(tx, topic, defer_ms, body)
        })
    }

    /// Queues only DPUB's header (see [`Session::publish_header`]).
    pub fn publish_deferred_header(
        &mut self,
        topic: &str,
        defer_ms: u32,
        body_len: usize,
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("DPUB", |tx| {
            commands::encode_dpub_header(tx, topic, defer_ms, body_len)
        })
    }

    /// Sends `MPUB topic` with all `messages`; one id covers the batch
    /// (nsqd accepts or rejects it whole).
    pub fn publish_multi(
        &mut self,
        topic: &str,
        messages: &[&[u8]],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("MPUB", |tx| commands::encode_mpub(tx, topic, messages))
    }

    /// Queues only MPUB's header; the driver then writes, for each message,
    /// [`commands::mpub_message_prefix`] and the message.
    pub fn publish_multi_header(
        &mut self,
        topic: &str,
        messages: &[&[u8]],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("MPUB", |tx| {
            commands::encode_mpub_header(tx, topic, messages)
        })
    }
}

fn window(heartbeat: Duration) -> Duration {
    Duration::from_millis(heartbeat.as_millis().saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nsq::error::ErrorCode;
    use crate::nsq::frame::{
        encode_frame, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE,
    };
    use proptest::prelude::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    type TestSession = Session<[u8; 1024], 4>;

    const NSQD_IDENTIFY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;

    fn frame(frame_type: i32, data: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; data.len() + 8];
        encode_frame(&mut out, frame_type, data).unwrap();
        out
    }
    fn response(data: &[u8]) -> Vec<u8> {
        frame(FRAME_TYPE_RESPONSE, data)
    }
    fn error(data: &[u8]) -> Vec<u8> {
        frame(FRAME_TYPE_ERROR, data)
    }
    fn message(id: &[u8; 16], attempts: u16, body: &[u8]) -> Vec<u8> {
        let mut d = 42i64.to_be_bytes().to_vec();
        d.extend_from_slice(&attempts.to_be_bytes());
        d.extend_from_slice(id);
        d.extend_from_slice(body);
        frame(FRAME_TYPE_MESSAGE, &d)
    }

    fn identify() -> Identify<'static> {
        Identify {
            client_id: Some("c"),
            feature_negotiation: true,
            heartbeat_interval: Some(1000),
            ..Identify::default()
        }
    }

    fn new_session() -> TestSession {
        Session::new([0u8; 1024], 4096, &identify(), Instant(0)).unwrap()
    }

    /// Takes everything the session wants to send.
    fn sent(s: &mut TestSession) -> Vec<u8> {
        let out = s.transmit().to_vec();
        s.transmitted(out.len());
        out
    }

    /// Feeds `input` until the session needs more bytes; events as Debug
    /// strings. Also checks the `(0, None)` contract.
    fn feed(s: &mut TestSession, input: &[u8], now: u64) -> Result<Vec<String>, SessionError> {
        let mut events = Vec::new();
        let mut at = 0;
        loop {
            let (n, ev) = s.handle_input(&input[at..], Instant(now))?;
            at += n;
            match ev {
                Some(e) => events.push(format!("{e:?}")),
                None if n == 0 => break,
                None => {}
            }
        }
        assert_eq!(at, input.len(), "unconsumed input");
        Ok(events)
    }

    fn ready_session() -> TestSession {
        let mut s = new_session();
        sent(&mut s);
        let ev = feed(&mut s, &response(NSQD_IDENTIFY), 1).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1], "Ready");
        s
    }

    fn consumer_session() -> TestSession {
        let mut s = ready_session();
        s.subscribe("t", "c").unwrap();
        assert_eq!(sent(&mut s), b"SUB t c\n");
        assert_eq!(feed(&mut s, &response(b"OK"), 2).unwrap(), ["Subscribed"]);
        s
    }

    #[test]
    fn per_message_results_stay_small() {
        // One of these is returned per message: no handshake payloads.
        std::println!(
            "Event {} bytes, result {} bytes",
            core::mem::size_of::<Event<'_>>(),
            core::mem::size_of::<Result<(usize, Option<Event<'_>>), SessionError>>()
        );
        assert!(core::mem::size_of::<Event<'_>>() <= 128);
    }

    #[test]
    fn writes_magic_and_identify_first() {
        let mut s = new_session();
        let out = sent(&mut s);
        let json = br#"{"client_id":"c","feature_negotiation":true,"heartbeat_interval":1000,"tls_v1":false,"snappy":false,"deflate":false}"#;
        let mut expected = b"  V2IDENTIFY\n".to_vec();
        expected.extend_from_slice(&(json.len() as u32).to_be_bytes());
        expected.extend_from_slice(json);
        assert_eq!(out, expected);
    }

    #[test]
    fn plain_handshake_then_consume() {
        let mut s = new_session();
        sent(&mut s);
        assert!(!s.is_ready());
        let ev = feed(&mut s, &response(NSQD_IDENTIFY), 1).unwrap();
        assert_eq!(ev[0], "Identified");
        assert!(s.is_ready());
        assert_eq!(s.negotiated().unwrap().max_rdy_count, 2500);
        s.subscribe("t", "c").unwrap();
        assert_eq!(feed(&mut s, &response(b"OK"), 2).unwrap(), ["Subscribed"]);
        s.ready(10).unwrap();
        assert_eq!(sent(&mut s), b"SUB t c\nRDY 10\n");
        assert_eq!(
            s.ready(2501),
            Err(SessionError::RdyTooHigh {
                count: 2501,
                max: 2500
            })
        );
        assert!(s.transmit().is_empty());

        let bytes = message(b"0123456789abcdef", 1, b"body");
        let (n, ev) = s.handle_input(&bytes, Instant(3)).unwrap();
        assert_eq!(n, bytes.len());
        let Some(Event::Message(m)) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(m.body, b"body");
        assert_eq!(m.attempts, 1);
        assert_eq!(m.body.as_ptr(), bytes[34..].as_ptr(), "body is borrowed");
        let id = m.id;
        s.fin(&id).unwrap();
        s.req(&id, 500).unwrap();
        s.touch(&id).unwrap();
        assert_eq!(
            sent(&mut s),
            b"FIN 0123456789abcdef\nREQ 0123456789abcdef 500\nTOUCH 0123456789abcdef\n"
        );
    }

    #[test]
    fn negotiation_off_gets_plain_ok() {
        let mut s: TestSession =
            Session::new([0u8; 1024], 4096, &Identify::default(), Instant(0)).unwrap();
        assert_eq!(
            feed(&mut s, &response(b"OK"), 1).unwrap(),
            ["Identified", "Ready"]
        );
        assert!(s.negotiated().is_none());
    }

    #[test]
    fn tls_snappy_auth_handshake_in_order() {
        let mut s = new_session();
        sent(&mut s);
        let json = br#"{"max_rdy_count":100,"tls_v1":true,"snappy":true,"auth_required":true}"#;
        let mut input = response(json);
        // The OK after TLS may arrive in the same read as nothing else
        // (TLS is a new stream), but test that the session stops exactly
        // at each boundary.
        let (n, ev) = s.handle_input(&input, Instant(1)).unwrap();
        assert_eq!(n, input.len());
        assert_eq!(ev, Some(Event::Identified));
        assert!(s.negotiated().unwrap().tls_v1);
        let (n, ev) = s.handle_input(&[], Instant(1)).unwrap();
        assert_eq!((n, ev), (0, Some(Event::StartTls)));
        assert_eq!(s.handle_input(&[], Instant(1)).unwrap(), (0, None));

        // Inside TLS: OK, and the compressed OK decoded into the same buffer.
        input = response(b"OK");
        input.extend(response(b"OK"));
        let (n, ev) = s.handle_input(&input, Instant(2)).unwrap();
        assert_eq!((n, ev), (10, None));
        let (n, ev) = s.handle_input(&input[10..], Instant(2)).unwrap();
        assert_eq!(
            (n, ev),
            (0, Some(Event::StartCompression(Compression::Snappy)))
        );
        let (n, ev) = s.handle_input(&input[10..], Instant(2)).unwrap();
        assert_eq!((n, ev), (10, None));
        assert_eq!(
            s.handle_input(&[], Instant(2)).unwrap(),
            (0, Some(Event::AuthRequired))
        );
        assert!(matches!(
            s.publish("t", b"x"),
            Err(SessionError::InvalidState { .. })
        ));
        s.auth(b"secret").unwrap();
        assert_eq!(sent(&mut s), b"AUTH\n\x00\x00\x00\x06secret");
        let ev = feed(
            &mut s,
            &response(br#"{"identity":"me","identity_url":"","permission_count":1}"#),
            3,
        )
        .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0], "Authenticated");
        assert_eq!(s.auth_response().unwrap().identity.as_str(), "me");
        assert_eq!(ev[1], "Ready");
    }

    #[test]
    fn tls_then_snappy_with_captured_nsqd_response() {
        // nsqd 1.3.0 with a certificate answers tls_v1 + snappy; the next
        // OK was observed inside TLS and the one after it snappy-framed.
        let mut s = new_session();
        sent(&mut s);
        let ev = feed(
            &mut s,
            &response(crate::nsq::identify::tests::NSQD_1_3_0_TLS_SNAPPY),
            1,
        )
        .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1], "StartTls");
        assert_eq!(
            feed(&mut s, &response(b"OK"), 2).unwrap(),
            ["StartCompression(Snappy)"]
        );
        assert_eq!(feed(&mut s, &response(b"OK"), 3).unwrap(), ["Ready"]);
        assert!(
            s.transmit().is_empty(),
            "nothing is written during upgrades"
        );
    }

    #[test]
    fn deflate_without_tls() {
        let mut s = new_session();
        let ev = feed(
            &mut s,
            &response(br#"{"deflate":true,"deflate_level":6}"#),
            1,
        )
        .unwrap();
        assert_eq!(ev[1], "StartCompression(Deflate { level: 6 })");
        assert_eq!(feed(&mut s, &response(b"OK"), 1).unwrap(), ["Ready"]);
    }

    #[test]
    fn auth_failure_is_fatal() {
        let mut s = new_session();
        feed(&mut s, &response(br#"{"auth_required":true}"#), 1).unwrap();
        s.auth(b"bad").unwrap();
        let e = feed(&mut s, &error(b"E_AUTH_FAILED AUTH failed"), 2).unwrap_err();
        assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::AuthFailed));
        assert_eq!(s.handle_input(&[], Instant(3)).unwrap_err(), e);
        assert!(s.ready(1).is_err());
    }

    #[test]
    fn heartbeat_answered_with_nop() {
        let mut s = consumer_session();
        assert_eq!(
            feed(&mut s, &response(b"_heartbeat_"), 500).unwrap(),
            ["Heartbeat"]
        );
        assert_eq!(sent(&mut s), b"NOP\n");
    }

    #[test]
    fn heartbeat_with_full_transmit_buffer_answers_later() {
        let mut s: Session<[u8; 256], 4> =
            Session::new([0u8; 256], 4096, &identify(), Instant(0)).unwrap();
        let n = s.transmit().len();
        s.transmitted(n);
        let r = response(NSQD_IDENTIFY);
        let mut at = 0;
        while at < r.len() || s.handle_input(&[], Instant(1)).unwrap() != (0, None) {
            at += s.handle_input(&r[at..], Instant(1)).unwrap().0;
        }
        while s.publish("t", &[b'x'; 54]).is_ok() {}
        assert_eq!(s.transmit().len(), 256, "transmit buffer full");
        let before = s.transmit().len();
        let hb = response(b"_heartbeat_");
        assert_eq!(
            s.handle_input(&hb, Instant(2)).unwrap(),
            (hb.len(), Some(Event::Heartbeat))
        );
        assert_eq!(s.transmit().len(), before);
        s.transmitted(before);
        assert_eq!(s.transmit(), b"NOP\n");
    }

    #[test]
    fn missed_heartbeats_detected() {
        let mut s = consumer_session(); // last frame at t=2, interval 1000
        assert_eq!(s.poll_timeout(), Some(Instant(2002)));
        s.handle_timeout(Instant(2001)).unwrap();
        feed(&mut s, &response(b"_heartbeat_"), 1500).unwrap();
        assert_eq!(s.poll_timeout(), Some(Instant(3500)));
        s.handle_timeout(Instant(3000)).unwrap();
        let e = s.handle_timeout(Instant(3600)).unwrap_err();
        assert_eq!(
            e,
            SessionError::HeartbeatTimeout {
                silent_ms: 2100,
                window_ms: 2000
            }
        );
        assert!(format!("{e}").contains("reconnect"));
        assert_eq!(s.handle_input(&[], Instant(4000)).unwrap_err(), e);
    }

    #[test]
    fn heartbeat_disabled_has_no_deadline() {
        let id = Identify {
            heartbeat_interval: Some(-1),
            ..Identify::default()
        };
        let s: TestSession = Session::new([0u8; 1024], 64, &id, Instant(0)).unwrap();
        assert_eq!(s.poll_timeout(), None);
        let s: TestSession =
            Session::new([0u8; 1024], 64, &Identify::default(), Instant(0)).unwrap();
        assert_eq!(s.poll_timeout(), Some(Instant(60_000)));
    }

    #[test]
    fn publishes_matched_in_order() {
        let mut s = ready_session();
        let a = s.publish("t", b"one").unwrap();
        let b = s.publish_multi("t", &[b"x", b"y"]).unwrap();
        let c = s.publish_deferred("t", 1000, b"later").unwrap();
        assert_eq!((a, b, c), (PublishId(0), PublishId(1), PublishId(2)));
        assert_eq!(s.outstanding_publishes().collect::<Vec<_>>(), [a, b, c]);
        let mut input = response(b"OK");
        input.extend(response(b"_heartbeat_"));
        input.extend(response(b"OK"));
        let ev = feed(&mut s, &input, 5).unwrap();
        assert_eq!(
            ev,
            [
                "Published { id: PublishId(0) }",
                "Heartbeat",
                "Published { id: PublishId(1) }"
            ]
        );
        assert_eq!(s.outstanding_publishes().collect::<Vec<_>>(), [c]);
        assert_eq!(
            feed(&mut s, &response(b"OK"), 6).unwrap(),
            ["Published { id: PublishId(2) }"]
        );
    }

    #[test]
    fn vectored_publish_headers() {
        let mut s = ready_session();
        s.publish_header("t", 5).unwrap();
        s.publish_deferred_header("t", 9, 2).unwrap();
        s.publish_multi_header("t", &[b"ab"]).unwrap();
        assert_eq!(
            sent(&mut s),
            b"PUB t\n\x00\x00\x00\x05DPUB t 9\n\x00\x00\x00\x02MPUB t\n\x00\x00\x00\x0a\x00\x00\x00\x01"
        );
        assert_eq!(s.outstanding_publishes().count(), 3);
    }

    #[test]
    fn fatal_publish_error_reports_every_outstanding_publish() {
        let mut s = ready_session();
        for _ in 0..3 {
            s.publish("t", b"m").unwrap();
        }
        let mut input = response(b"OK");
        input.extend(error(b"E_PUB_FAILED PUB failed exiting"));
        let mut events = Vec::new();
        let mut at = 0;
        let err = loop {
            match s.handle_input(&input[at..], Instant(1)) {
                Ok((n, ev)) => {
                    at += n;
                    if let Some(e) = ev {
                        events.push(e);
                    }
                }
                Err(e) => break e,
            }
        };
        assert_eq!(events[0], Event::Published { id: PublishId(0) });
        for (i, id) in [1, 2].into_iter().enumerate() {
            let Event::PublishFailed { id: got, error } = &events[i + 1] else {
                panic!("{events:?}")
            };
            assert_eq!(*got, PublishId(id));
            assert_eq!(error.code, ErrorCode::PubFailed);
        }
        assert_eq!(events.len(), 3);
        assert!(matches!(err, SessionError::Server(ref e) if e.code == ErrorCode::PubFailed));
        assert!(s.publish("t", b"m").is_err());
    }

    #[test]
    fn bounded_outstanding_publishes() {
        let mut s = ready_session();
        for _ in 0..4 {
            s.publish("t", b"m").unwrap();
        }
        let before = s.transmit().len();
        assert_eq!(
            s.publish("t", b"m").unwrap_err(),
            SessionError::TooManyOutstanding { capacity: 4 }
        );
        assert_eq!(s.transmit().len(), before, "nothing written");
        feed(&mut s, &response(b"OK"), 1).unwrap();
        s.publish("t", b"m").unwrap();
    }

    #[test]
    fn command_errors_leave_session_usable() {
        let mut s = ready_session();
        assert!(matches!(
            s.publish("bad topic", b"x"),
            Err(SessionError::Command(CommandError::InvalidName(_)))
        ));
        assert_eq!(s.outstanding_publishes().count(), 0);
        s.publish("t", b"x").unwrap();
    }

    #[test]
    fn non_fatal_errors_are_events() {
        let mut s = consumer_session();
        let ev = feed(
            &mut s,
            &error(b"E_FIN_FAILED FIN 0123456789abcdef failed"),
            3,
        )
        .unwrap();
        assert_eq!(ev.len(), 1);
        assert!(
            ev[0].starts_with("Error(ServerError { code: FinFailed"),
            "{ev:?}"
        );
        s.ready(1).unwrap();
    }

    #[test]
    fn fatal_error_without_publishes_is_err() {
        let mut s = consumer_session();
        let e = feed(&mut s, &error(b"E_INVALID cannot FIN in current state"), 3).unwrap_err();
        assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::Invalid));
        assert!(format!("{e}").contains("E_INVALID"));
    }

    #[test]
    fn bad_sub_is_fatal() {
        let mut s = ready_session();
        s.subscribe("t", "c").unwrap();
        let e = feed(
            &mut s,
            &error(b"E_BAD_TOPIC SUB topic name \"t\" is not valid"),
            3,
        )
        .unwrap_err();
        assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::BadTopic));
    }

    #[test]
    fn close_then_close_wait_keeps_in_flight_finishable() {
        let mut s = consumer_session();
        s.close().unwrap();
        assert_eq!(sent(&mut s), b"CLS\n");
        assert!(matches!(
            s.publish("t", b"x"),
            Err(SessionError::InvalidState { .. })
        ));
        // A message already on the way still arrives, then CLOSE_WAIT.
        let mut input = message(b"aaaaaaaaaaaaaaaa", 1, b"late");
        input.extend(response(b"CLOSE_WAIT"));
        let ev = feed(&mut s, &input, 3).unwrap();
        assert!(ev[0].starts_with("Message("), "{ev:?}");
        assert_eq!(ev[1], "Closed");
        assert!(s.is_closed());
        assert_eq!(s.poll_timeout(), None);
        s.fin(&MessageId(*b"aaaaaaaaaaaaaaaa")).unwrap();
        assert_eq!(sent(&mut s), b"FIN aaaaaaaaaaaaaaaa\n");
    }

    #[test]
    fn unexpected_frames_are_errors() {
        let mut s = ready_session();
        let e = feed(&mut s, &message(b"aaaaaaaaaaaaaaaa", 1, b"x"), 2).unwrap_err();
        assert!(matches!(
            e,
            SessionError::UnexpectedFrame {
                got: UnexpectedKind::Message,
                ..
            }
        ));
        let mut s = ready_session();
        let e = feed(&mut s, &response(b"OK"), 2).unwrap_err();
        assert!(matches!(
            e,
            SessionError::UnexpectedFrame {
                got: UnexpectedKind::Response,
                ..
            }
        ));
        let mut s = new_session();
        assert!(matches!(
            feed(&mut s, &response(b"not json"), 1).unwrap_err(),
            SessionError::Response(_)
        ));
    }

    #[test]
    fn oversized_frame_is_typed() {
        let mut s: TestSession = Session::new([0u8; 1024], 64, &identify(), Instant(0)).unwrap();
        let e = feed(&mut s, &100i32.to_be_bytes(), 1).unwrap_err();
        assert_eq!(
            e,
            SessionError::Frame(FrameError::FrameTooLarge {
                needed: 104,
                capacity: 64
            })
        );
    }

    #[test]
    fn one_sub_per_connection_and_state_checks() {
        let mut s = new_session();
        assert!(matches!(
            s.subscribe("t", "c"),
            Err(SessionError::InvalidState { .. })
        ));
        assert!(matches!(
            s.auth(b"x"),
            Err(SessionError::InvalidState { .. })
        ));
        let mut s = consumer_session();
        assert!(matches!(
            s.subscribe("t", "c"),
            Err(SessionError::InvalidState { .. })
        ));
    }

    /// Bytes nsqd 1.3.0 sent to this session on a real connection (PUB,
    /// MPUB, DPUB, SUB, RDY, one REQ and redelivery, two heartbeats, CLS),
    /// and the bytes the session wrote in answer, recorded with a small
    /// std driver. Replaying the server's bytes must reproduce the client's.
    const RECORDED_RX: &[u8] = include_bytes!("testdata/nsqd_1_3_0_rx.bin");
    const RECORDED_TX: &[u8] = include_bytes!("testdata/nsqd_1_3_0_tx.bin");

    fn replay_recorded(cuts: &[usize]) -> (Vec<u8>, Vec<String>) {
        let identify = Identify {
            client_id: Some("check"),
            user_agent: Some("courier/0.1"),
            feature_negotiation: true,
            heartbeat_interval: Some(1000),
            ..Identify::default()
        };
        let mut s: Session<[u8; 4096], 8> =
            Session::new([0u8; 4096], 65536, &identify, Instant(0)).unwrap();
        let mut wire = Vec::new();
        let mut events = Vec::new();
        let (mut published, mut heartbeats, mut consumed) = (0, 0, 0);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (RECORDED_RX.len() + 1)).collect();
        cuts.sort();
        cuts.push(RECORDED_RX.len());
        for cut in cuts {
            let cut = cut.max(consumed);
            loop {
                wire.extend_from_slice(s.transmit());
                let n = s.transmit().len();
                s.transmitted(n);
                let (n, ev) = s
                    .handle_input(&RECORDED_RX[consumed..cut], Instant(1))
                    .unwrap();
                consumed += n;
                let Some(ev) = ev else {
                    if n == 0 {
                        break;
                    }
                    continue;
                };
                events.push(format!("{ev:?}"));
                match ev {
                    Event::Ready => {
                        s.publish("check", b"hello").unwrap();
                        s.publish_multi("check", &[b"m1", b"m2"]).unwrap();
                        s.publish_deferred("check", 500, b"later").unwrap();
                    }
                    Event::Published { .. } => {
                        published += 1;
                        if published == 3 {
                            s.subscribe("check", "ch").unwrap();
                        }
                    }
                    Event::Subscribed => s.ready(10).unwrap(),
                    Event::Message(m) => {
                        if m.attempts == 1 && m.body == b"m1" {
                            s.req(&m.id, 0).unwrap();
                        } else {
                            s.fin(&m.id).unwrap();
                        }
                    }
                    Event::Heartbeat => {
                        heartbeats += 1;
                        if heartbeats == 2 {
                            s.close().unwrap();
                        }
                    }
                    _ => {}
                }
            }
        }
        wire.extend_from_slice(s.transmit());
        assert!(s.is_closed());
        (wire, events)
    }

    #[test]
    fn replays_a_recorded_nsqd_conversation() {
        let (wire, events) = replay_recorded(&[]);
        assert_eq!(wire, RECORDED_TX, "the client bytes match the recorded run");
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e.split(['(', ' ']).next().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Identified",
                "Ready",
                "Published",
                "Published",
                "Published",
                "Subscribed",
                "Message",
                "Message",
                "Message",
                "Message",
                "Heartbeat",
                "Message",
                "Heartbeat",
                "Closed"
            ]
        );
        assert!(
            events[9].contains("attempts: 2"),
            "REQ'd message redelivered: {}",
            events[9]
        );
    }

    /// A scripted server stream for a consumer+producer session.
    fn server_script(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = response(NSQD_IDENTIFY);
        out.extend(response(b"OK")); // SUB
        for (i, b) in bodies.iter().enumerate() {
            let mut id = *b"0000000000000000";
            id[15] = b'a' + (i % 26) as u8;
            out.extend(message(&id, 1, b));
            if i % 3 == 0 {
                out.extend(response(b"_heartbeat_"));
            }
        }
        out.extend(error(b"E_TOUCH_FAILED TOUCH x failed"));
        out
    }

    fn run_script(input: &[u8], cuts: &[usize]) -> (Vec<String>, Vec<u8>) {
        let mut s = new_session();
        let mut events = Vec::new();
        let mut consumed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort();
        cuts.push(input.len());
        for cut in cuts {
            let cut = cut.max(consumed);
            loop {
                let (n, ev) = s.handle_input(&input[consumed..cut], Instant(1)).unwrap();
                consumed += n;
                match ev {
                    Some(Event::Ready) => {
                        events.push("Ready".into());
                        s.subscribe("t", "c").unwrap();
                    }
                    Some(e) => events.push(format!("{e:?}")),
                    None if n == 0 => break,
                    None => {}
                }
            }
        }
        assert_eq!(consumed, input.len());
        (events, sent(&mut s))
    }

    proptest! {
        #[test]
        fn split_anywhere_equivalence(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let script = server_script(&bodies);
            let whole = run_script(&script, &[]);
            prop_assert_eq!(whole.0.len(), 4 + bodies.len() + bodies.len().div_ceil(3));
            prop_assert_eq!(run_script(&script, &cuts), whole);
        }

        #[test]
        fn recorded_conversation_split_anywhere(cuts in proptest::collection::vec(any::<usize>(), 0..16)) {
            prop_assert_eq!(replay_recorded(&cuts), replay_recorded(&[]));
        }

        /// Every publish is reported exactly once, in order, whatever mix
        /// of answers, heartbeats, non-fatal errors and a fatal error nsqd
        /// sends; until reported it is listed as outstanding.
        #[test]
        fn every_publish_reported_once_in_order(ops in proptest::collection::vec(0u8..6, 0..60)) {
            let mut s = ready_session();
            let mut issued: Vec<PublishId> = Vec::new();
            let mut reported: Vec<PublishId> = Vec::new();
            let mut answered = 0usize;
            let mut dead = false;
            for op in ops {
                let input = match op {
                    0 | 1 => {
                        if let Ok(id) = s.publish("t", b"m") {
                            issued.push(id);
                        }
                        continue;
                    }
                    2 if answered < issued.len() => { answered += 1; response(b"OK") }
                    3 => response(b"_heartbeat_"),
                    4 => error(b"E_FIN_FAILED x"),
                    5 => error(b"E_PUB_FAILED exiting"),
                    _ => continue,
                };
                let mut at = 0;
                loop {
                    match s.handle_input(&input[at..], Instant(1)) {
                        Ok((0, None)) => break,
                        Ok((n, ev)) => {
                            at += n;
                            match ev {
                                Some(Event::Published { id }) | Some(Event::PublishFailed { id, .. }) => reported.push(id),
                                _ => {}
                            }
                        }
                        Err(_) => { dead = true; break; }
                    }
                }
                if dead {
                    break;
                }
                let outstanding: Vec<PublishId> = s.outstanding_publishes().collect();
                let mut all = reported.clone();
                all.extend(outstanding);
                prop_assert_eq!(&all, &issued);
            }
            if dead {
                prop_assert_eq!(&reported, &issued, "a fatal error reports every publish");
            }
        }

        #[test]
        fn arbitrary_input_never_panics(
            prefix in 0usize..3,
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut s = match prefix {
                0 => new_session(),
                1 => ready_session(),
                _ => consumer_session(),
            };
            let _ = s.publish("t", b"x");
            let mut at = 0;
            for _ in 0..64 {
                match s.handle_input(&bytes[at..], Instant(9)) {
                    Ok((0, None)) | Err(_) => break,
                    Ok((n, _)) => at += n,
                }
            }
            let _ = s.handle_timeout(Instant(100_000));
        }
    }
}
