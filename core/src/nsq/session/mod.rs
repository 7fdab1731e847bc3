//! The NSQ connection state machine, sans-IO.
//!
//! Files: [`options`] (what the session is created with), [`events`] (what
//! comes out), `error` (why it ends), `timers` (one deadline table),
//! `handshake` (IDENTIFY, TLS/compression upgrades, AUTH), `inbound`
//! (frames after the handshake: messages, answers, heartbeats, errors),
//! `commands` (SUB, RDY, FIN, REQ, TOUCH, NOP, CLS), `publish` (PUB, MPUB,
//! DPUB and their answers).
//!
//! The shape every courier session shares (NATS, NSQ, AMQP):
//! - bytes in: [`Session::handle_input`] parses at most one frame and
//!   returns what it consumed and, at most, a [`Message`] that borrows the
//!   input;
//! - owned events out: [`Session::poll_event`] (drain it after every
//!   `handle_input`: a handshake step that changes the stream, TLS or
//!   compression, must be acted on before the next byte is parsed);
//! - bytes out: [`Session::transmit`] / [`Session::transmitted`];
//! - time in: [`Session::handle_timeout`] at [`Session::poll_timeout`];
//! - [`Session::new`]`(options, tx)`, [`Session::start`], [`Session::state`].
//!
//! Handshake: [`Session::start`] writes the magic and IDENTIFY, then the
//! session emits, in order and only when negotiated: [`Event::Identified`],
//! [`Event::StartTls`], [`Event::StartCompression`], [`Event::AuthRequired`]
//! (call [`Session::auth`]), then [`Event::Ready`]. A consumer then calls
//! [`Session::subscribe`] and [`Session::ready`]; a producer calls
//! [`Session::publish`] and friends.
//!
//! nsqd answers commands in order, so answers are matched to a bounded FIFO
//! of outstanding commands (`PENDING` entries): each publish gets a
//! [`PublishId`] that comes back as [`Event::Published`] or
//! [`Event::PublishFailed`]. Heartbeats are answered with `NOP` by the
//! session itself; silence for two heartbeat intervals is an error.
//!
//! Delivery: publishes are at-least-once for the caller that republishes
//! what was not confirmed ([`Session::outstanding_publishes`] lists what
//! nsqd has not answered); messages are at-least-once (nsqd redelivers what
//! is not FIN'd before its timeout).

mod commands;
mod error;
pub mod events;
mod handshake;
mod inbound;
pub mod options;
mod publish;
mod timers;

#[cfg(test)]
mod tests;

pub use error::{SessionError, UnexpectedKind};
pub use events::{Event, PublishId, EVENT_QUEUE};
pub use options::{Options, DEFAULT_HEARTBEAT_INTERVAL};
pub use timers::{Timer, TimerTable};

use heapless::Deque;

use crate::buf::TxBuf;
use crate::nsq::commands::{self as encode, Identify};
use crate::nsq::error::ServerError;
use crate::nsq::frame::{decode_frame, Message};
use crate::nsq::identify::{AuthResponse, Compression, IdentifyResponse};
use crate::time::{Duration, Instant};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Created; [`Session::start`] not called yet (or it failed).
    Idle,
    /// Magic and IDENTIFY written; waiting for nsqd's answer.
    AwaitingIdentify,
    /// [`Event::StartTls`] emitted; waiting for nsqd's `OK` over TLS.
    AwaitingTls,
    /// [`Event::StartCompression`] emitted; waiting for nsqd's `OK`.
    AwaitingCompression,
    /// [`Event::AuthRequired`] emitted; [`Session::auth`] not called yet.
    AwaitingAuthSecret,
    /// AUTH written; waiting for nsqd's answer.
    AwaitingAuth,
    /// Usable: subscribe, publish, FIN...
    Ready,
    /// CLS written; in-flight messages can still be FIN'd.
    Closing,
    /// nsqd answered CLS with `CLOSE_WAIT`.
    Closed,
    /// Over: every call returns the error that ended it.
    Failed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Idle => "not started",
            State::AwaitingIdentify => "awaiting the IDENTIFY response",
            State::AwaitingTls => "upgrading to TLS",
            State::AwaitingCompression => "upgrading to compression",
            State::AwaitingAuthSecret | State::AwaitingAuth => "authenticating",
            State::Ready => "ready",
            State::Closing => "closing",
            State::Closed => "closed",
            State::Failed => "failed",
        }
    }
}

/// A command awaiting nsqd's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Sub,
    Publish(PublishId),
    Close,
}

/// One NSQ connection's protocol state.
///
/// `S` is the transmit buffer's storage; `PENDING` bounds the commands
/// awaiting nsqd's answer (outstanding publishes, SUB, CLS).
pub struct Session<S, const PENDING: usize> {
    options: Options,
    tx: TxBuf<S>,
    state: State,
    events: Deque<Event, EVENT_QUEUE>,
    timers: TimerTable,
    heartbeat_interval: Option<Duration>,
    last_rx: Instant,
    pending: Deque<Pending, PENDING>,
    next_publish_id: u64,
    negotiated: Option<IdentifyResponse>,
    auth: Option<AuthResponse>,
    tls_pending: bool,
    compression_pending: Option<Compression>,
    subscribed: bool,
    /// A heartbeat arrived while the transmit buffer was full.
    nop_owed: bool,
    /// A fatal server error whose outstanding publishes `poll_event` still
    /// reports before `handle_input` returns it.
    fatal: Option<ServerError>,
    /// The error that ended the session; every call returns it again.
    error: Option<SessionError>,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    /// A session over the transmit buffer `tx`. Call [`Session::start`]
    /// once the transport is connected.
    pub fn new(options: Options, tx: S) -> Self {
        Session {
            options,
            tx: TxBuf::new(tx),
            state: State::Idle,
            events: Deque::new(),
            timers: TimerTable::default(),
            heartbeat_interval: None,
            last_rx: Instant::default(),
            pending: Deque::new(),
            next_publish_id: 0,
            negotiated: None,
            auth: None,
            tls_pending: false,
            compression_pending: None,
            subscribed: false,
            nop_owed: false,
            fatal: None,
            error: None,
        }
    }

    /// Begins the handshake on a fresh transport: forgets the previous
    /// connection (unsent bytes, unanswered commands, pending events: read
    /// [`Session::outstanding_publishes`] first), writes the magic and
    /// `identify`, and starts the heartbeat window at `now`.
    ///
    /// An IDENTIFY that cannot be encoded or does not fit leaves the
    /// session [`State::Idle`] with the error.
    pub fn start(&mut self, identify: &Identify<'_>, now: Instant) -> Result<(), SessionError> {
        self.tx.clear();
        self.events.clear();
        self.pending.clear();
        self.timers.stop_all();
        self.negotiated = None;
        self.auth = None;
        self.tls_pending = false;
        self.compression_pending = None;
        self.subscribed = false;
        self.nop_owed = false;
        self.fatal = None;
        self.error = None;
        self.state = State::Idle;
        let encoded = encode::encode_magic(&mut self.tx)
            .and_then(|()| encode::encode_identify(&mut self.tx, identify));
        if let Err(e) = encoded {
            self.tx.clear();
            return Err(e.into());
        }
        self.heartbeat_interval = match identify.heartbeat_interval {
            Some(ms) if ms < 0 => None,
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms as u64)),
            _ => Some(DEFAULT_HEARTBEAT_INTERVAL),
        };
        self.state = State::AwaitingIdentify;
        self.received(now);
        Ok(())
    }

    /// Bytes to write to the transport.
    pub fn transmit(&self) -> &[u8] {
        self.tx.pending()
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        self.tx.consume(n);
        if self.nop_owed && encode::encode_nop(&mut self.tx).is_ok() {
            self.nop_owed = false;
        }
    }

    /// Ends the session and gives the transmit storage back (to build
    /// another session on a device without an allocator).
    pub fn into_tx_storage(self) -> S {
        self.tx.into_storage()
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
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

    /// The next owned event, if any.
    ///
    /// After a fatal server error this reports every outstanding publish
    /// as [`Event::PublishFailed`], oldest first; the next `handle_input`
    /// then returns the error.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let error = self.fatal.as_ref()?;
        while let Some(p) = self.pending.pop_front() {
            if let Pending::Publish(id) = p {
                let error = error.clone();
                return Some(Event::PublishFailed { id, error });
            }
        }
        None
    }

    /// The next instant [`Session::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs the timers due at `now`: nothing received for two heartbeat
    /// intervals is an error (the connection is dead).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        // Each timer that fires ends the session today, so one pass is all;
        // a timer that does not (a future keepalive) loops here.
        if let Some(timer) = self.timers.expired(now) {
            match timer {
                Timer::Heartbeat => {
                    let window_ms = self
                        .heartbeat_interval
                        .map_or(0, |hb| window(hb).as_millis());
                    let e = SessionError::HeartbeatTimeout {
                        silent_ms: now.saturating_since(self.last_rx).as_millis(),
                        window_ms,
                    };
                    return Err(self.die(e));
                }
            }
        }
        Ok(())
    }

    /// Handles at most one frame from the front of `input`.
    ///
    /// Returns how many bytes were consumed and, for a message, the
    /// [`Message`] borrowing them. Poll [`Session::poll_event`] after every
    /// call. `(0, None)` means more bytes are needed (or events must be
    /// polled first); anything else means call again (with the unconsumed
    /// rest) before reading more. An `Err` ends the session.
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Message<'a>>), SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(error) = &self.fatal {
            if self.outstanding_publishes().next().is_some() || !self.events.is_empty() {
                return Ok((0, None));
            }
            let e = SessionError::Server(error.clone());
            return Err(self.die(e));
        }
        if self.events.len() + 2 > EVENT_QUEUE || !self.may_parse() {
            return Ok((0, None));
        }
        let capacity = match self.options.rx_capacity {
            0 => usize::MAX,
            c => c,
        };
        let (frame, consumed) = match decode_frame(input, capacity) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok((0, None)),
            Err(e) => return Err(self.die(e.into())),
        };
        self.received(now);
        match self.on_frame(frame) {
            Ok(message) => Ok((consumed, message)),
            Err(e) => Err(self.die(e)),
        }
    }

    // ---- internals shared by the files of this folder ----

    /// A frame arrived: the heartbeat window starts again.
    fn received(&mut self, now: Instant) {
        self.last_rx = now;
        if let (Some(hb), false) = (
            self.heartbeat_interval,
            matches!(self.state, State::Closed | State::Failed | State::Idle),
        ) {
            self.timers.set(Timer::Heartbeat, now + window(hb));
        }
    }

    /// False before start, and while a stream switch is announced but not
    /// polled: a frame announcing [`Event::StartTls`] or
    /// [`Event::StartCompression`] pushes it last and nothing is parsed
    /// after it, so in those states any queued event means the switch is
    /// still queued and the next byte belongs to a stream the driver has
    /// not switched yet.
    fn may_parse(&self) -> bool {
        match self.state {
            State::Idle => false,
            State::AwaitingTls | State::AwaitingCompression => self.events.is_empty(),
            _ => true,
        }
    }

    fn push_event(&mut self, event: Event) {
        // handle_input reads a frame only with two free slots, and a frame
        // makes at most two events, so this cannot fail.
        let _ = self.events.push_back(event);
    }

    /// The session is over: stops its timers, keeps `e` for every later call.
    fn die(&mut self, e: SessionError) -> SessionError {
        self.state = State::Failed;
        self.timers.stop_all();
        self.fatal = None;
        self.error = Some(e.clone());
        e
    }
}

fn window(heartbeat: Duration) -> Duration {
    Duration::from_millis(heartbeat.as_millis().saturating_mul(2))
}
