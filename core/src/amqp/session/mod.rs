//! The AMQP 0-9-1 connection state machine, sans-IO.
//!
//! Files: [`options`] (what the client asks for), [`events`] (what comes
//! out), `timers` (one deadline table), `confirms` (publisher confirm
//! window), `channels` (the channel table), `content` (received messages),
//! `handshake` (channel 0), `inbound` (replies and confirms on channels),
//! `commands` (what the application sends).
//!
//! The shape every courier session shares:
//! - bytes in: [`Session::handle_input`] parses one frame (or one whole
//!   message) and returns what it consumed and, at most, a [`Delivery`]
//!   that borrows the input;
//! - owned events out: [`Session::poll_event`];
//! - bytes out: [`Session::transmit`] / [`Session::transmitted`];
//! - time in: [`Session::handle_timeout`] at [`Session::poll_timeout`].
//!
//! ```
//! use courier_core::amqp::{Options, Session, State};
//! use courier_core::time::Instant;
//! let mut s: Session<[u8; 4096]> = Session::new(Options::default(), [0; 4096]);
//! s.start(Instant::from_millis(0));
//! assert_eq!(s.transmit(), b"AMQP\x00\x00\x09\x01");
//! assert_eq!(s.state(), State::AwaitingStart);
//! ```

mod body_plan;
mod channels;
mod commands;
mod confirms;
mod content;
pub mod events;
mod handshake;
mod inbound;
pub mod options;
mod timers;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;

pub use body_plan::BodyPlan;
pub use channels::{ChannelSlot, ChannelState};
pub use commands::{ConsumeFlags, PublishFlags};
pub use confirms::ConfirmTracker;
pub use content::{Body, Chunks, Delivery, DeliveryKind};
pub use events::{Event, Reply, EVENT_QUEUE};
pub use options::{Mechanism, OptionTooLong, Options, Tune};
pub use timers::{Timer, TimerTable};

use heapless::Deque;

use self::channels::Channels;
use super::codec::Writer;
use super::error::{CloseReason, Error};
use super::frame::{self, FrameError, FrameKind};
use super::ids::{ChannelId, ReplyCode, FRAME_END, FRAME_METHOD, FRAME_OVERHEAD, PROTOCOL_HEADER};
use super::methods::{Connection, Method};
use crate::buf::TxBuf;
use crate::time::{Duration, Instant};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Created; [`Session::start`] not called yet.
    Idle,
    /// Protocol header written; waiting for connection.start.
    AwaitingStart,
    /// start-ok written; waiting for connection.tune.
    AwaitingTune,
    /// tune-ok and open written; waiting for open-ok.
    AwaitingOpenOk,
    /// Usable.
    Open,
    /// Our connection.close written; waiting for close-ok.
    Closing,
    /// Over; [`Session::start`] again on a new transport.
    Closed,
}

/// What a restart found unfinished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Publishes sent in confirm mode and never confirmed, all channels.
    pub unconfirmed: u64,
    /// Channels that were open (or opening).
    pub channels: usize,
    /// Bytes that were still waiting in the transmit buffer.
    pub unsent_bytes: usize,
}

/// An AMQP 0-9-1 client connection, sans-IO.
///
/// `S` is the transmit buffer storage; `CHANNELS` how many channels can be
/// open at once; `CONFIRM_WORDS` the confirm window per channel in units of
/// 64 publishes (16: 1,024 unconfirmed publishes per channel).
///
/// Delivery guarantees: a publish on a channel in confirm mode is
/// at-least-once (nothing is settled until [`Event::Confirm`]; on a lost
/// connection the unsettled ones are reported, never counted sent); a
/// publish without confirms is at-most-once. Consuming with `no_ack` is
/// at-most-once, with manual acks at-least-once.
pub struct Session<S, const CHANNELS: usize = 8, const CONFIRM_WORDS: usize = 16> {
    options: Options,
    tx: TxBuf<S>,
    state: State,
    tune: Tune,
    channels: Channels<CHANNELS, CONFIRM_WORDS>,
    events: Deque<Event, EVENT_QUEUE>,
    timers: TimerTable,
    ever_connected: bool,
    /// Something was written since the last heartbeat tick: no heartbeat
    /// needed (any frame tells the server we are alive).
    wrote_since_tick: bool,
    last_received: Instant,
    blocked_since: Option<Instant>,
    /// A body the application writes itself (`publish_body_later`): the
    /// transmit buffer stops where it must go.
    body: Option<BodyPlan>,
}

impl<S, const CHANNELS: usize, const CONFIRM_WORDS: usize> Session<S, CHANNELS, CONFIRM_WORDS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A session that will connect with `options`; `tx` is the transmit
    /// buffer. Call [`Session::start`] once the transport is connected.
    pub fn new(options: Options, tx: S) -> Self {
        Session {
            options,
            tx: TxBuf::new(tx),
            state: State::Idle,
            tune: Tune::default(),
            channels: Channels::new(),
            events: Deque::new(),
            timers: TimerTable::default(),
            ever_connected: false,
            wrote_since_tick: false,
            last_received: Instant::default(),
            blocked_since: None,
            body: None,
        }
    }

    /// Begins the handshake on a fresh transport: forgets the previous
    /// connection (channels, unsent bytes, pending events), writes the
    /// protocol header and arms the handshake deadline.
    pub fn start(&mut self, now: Instant) -> ResetReport {
        let report = ResetReport {
            unconfirmed: self.channels.iter().map(|c| c.unconfirmed()).sum(),
            channels: self.channels.iter().count(),
            unsent_bytes: self.tx.len(),
        };
        self.channels.clear();
        self.tx.clear();
        self.body = None;
        self.events.clear();
        self.timers.stop_all();
        self.tune = Tune::default();
        self.blocked_since = None;
        self.wrote_since_tick = false;
        self.last_received = now;
        // An empty buffer that cannot hold 8 bytes is a caller bug we report
        // on the first call needing room; the header is retried nowhere.
        let _ = self.tx.append_parts(&[&PROTOCOL_HEADER]);
        self.state = State::AwaitingStart;
        self.timers
            .set(Timer::Handshake, now + self.options.handshake_timeout);
        report
    }

    /// Parses at most one frame from `input` (the unconsumed received
    /// bytes), or one whole message (content method, header and body
    /// frames, all needed in `input`). Returns the bytes used and, for a
    /// message, the [`Delivery`] borrowing them: consume them from the
    /// receive buffer after handling it. `(0, None)` means more bytes are
    /// needed, or [`Session::poll_event`] must make room first.
    ///
    /// A fatal error ([`Error::is_fatal`]) leaves the session
    /// [`State::Closed`]; the close frame it wrote (when it did) is in
    /// [`Session::transmit`].
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Delivery<'a>>), Error> {
        if matches!(self.state, State::Idle | State::Closed) || self.events.is_full() {
            return Ok((0, None));
        }
        let capacity = match self.options.rx_capacity {
            0 => usize::MAX,
            c => c,
        };
        let frame_max = match self.state {
            State::Open | State::Closing => self.tune.frame_max,
            _ => 0,
        };
        let (f, used) = match frame::parse(input, capacity, frame_max) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok((0, None)),
            Err(FrameError::TooLarge { needed, capacity }) => {
                return Err(self.fail(Error::FrameTooLarge { needed, capacity }))
            }
            Err(e) => return Err(self.fail_with_close(ReplyCode::FrameError, Error::Frame(e))),
        };
        self.received(now);
        match f.kind {
            FrameKind::Heartbeat if f.channel == 0 => Ok((used, None)),
            FrameKind::Method => {
                let method = match Method::read(f.payload) {
                    Ok(m) => m,
                    Err(e) => {
                        return Err(self.fail_with_close(ReplyCode::SyntaxError, Error::Decode(e)))
                    }
                };
                if f.channel == 0 {
                    self.on_connection_method(method, now)?;
                    return Ok((used, None));
                }
                if method.has_content() {
                    return self.on_content(input, used, f.channel, method, capacity);
                }
                self.on_channel_method(f.channel, method)?;
                Ok((used, None))
            }
            FrameKind::Heartbeat => Err(self.unexpected("a heartbeat", f.channel)),
            FrameKind::Header => Err(self.unexpected("a content header", f.channel)),
            FrameKind::Body => Err(self.unexpected("a body frame", f.channel)),
        }
    }

    /// The next owned event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to write to the transport now.
    ///
    /// While a body published with [`Session::publish_body_later`] is due,
    /// this stops where that body goes: once it returns nothing, write the
    /// body ([`Session::pending_body`]) and call [`Session::body_transmitted`].
    pub fn transmit(&self) -> &[u8] {
        let pending = self.tx.pending();
        match &self.body {
            Some(b) => &pending[..b.before.min(pending.len())],
            None => pending,
        }
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        if n > 0 {
            self.wrote_since_tick = true;
        }
        if let Some(b) = &mut self.body {
            b.before = b.before.saturating_sub(n);
        }
        self.tx.consume(n);
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs the timers due at `now`: sends heartbeats, detects a silent
    /// server, a handshake that takes too long, a block that lasts too
    /// long. Errors are fatal; events (none today) go to `poll_event`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(timer) = self.timers.expired(now) {
            match timer {
                Timer::Handshake => {
                    let state = self.state;
                    return Err(self.fail(Error::HandshakeTimeout { state }));
                }
                Timer::HeartbeatReceive => {
                    let silent_ms = now.saturating_since(self.last_received).as_millis();
                    return Err(self.fail(Error::HeartbeatTimeout { silent_ms }));
                }
                Timer::Blocked => {
                    let since = self.blocked_since.unwrap_or(now);
                    let blocked_ms = now.saturating_since(since).as_millis();
                    return Err(self.fail(Error::BlockedTimeout { blocked_ms }));
                }
                Timer::HeartbeatSend => {
                    // Any frame counts as a heartbeat: only an idle writer
                    // sends one, so heartbeats never queue behind data.
                    if !self.wrote_since_tick && self.tx.is_empty() {
                        let _ = self.tx.append_parts(&[&frame::HEARTBEAT]);
                    }
                    self.wrote_since_tick = false;
                    self.timers
                        .set(Timer::HeartbeatSend, now + self.heartbeat_tick());
                }
            }
        }
        Ok(())
    }

    /// The transport ended (EOF or error): the session is closed and the
    /// error says what that means in the current state.
    pub fn connection_lost(&mut self) -> Error {
        let state = self.state;
        self.body = None;
        self.fail(Error::ConnectionLost { state })
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was negotiated (zeros before connection.tune).
    pub fn tune(&self) -> Tune {
        self.tune
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The options, to change credentials before the next [`Session::start`].
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// The channel `id`, if in use.
    pub fn channel(&self, id: ChannelId) -> Option<&ChannelSlot<CONFIRM_WORDS>> {
        self.channels.get(id)
    }

    /// True while the broker blocks publishing.
    pub fn is_blocked(&self) -> bool {
        self.blocked_since.is_some()
    }

    /// Free bytes in the transmit buffer.
    pub fn tx_available(&self) -> usize {
        self.tx.available()
    }

    /// Capacity of the transmit buffer.
    pub fn tx_capacity(&self) -> usize {
        self.tx.capacity()
    }

    // ---- internals shared by the files of this folder ----

    fn heartbeat_tick(&self) -> Duration {
        // Half the interval, as the spec suggests and RabbitMQ does.
        Duration::from_millis(u64::from(self.tune.heartbeat) * 500)
    }

    fn received(&mut self, now: Instant) {
        self.last_received = now;
        if self.state == State::Open && self.tune.heartbeat > 0 {
            let timeout = Duration::from_secs(u64::from(self.tune.heartbeat) * 2);
            self.timers.set(Timer::HeartbeatReceive, now + timeout);
        }
    }

    fn push_event(&mut self, event: Event) {
        // handle_input runs only with a free slot and makes at most one
        // event per frame, so this cannot fail.
        let _ = self.events.push_back(event);
    }

    /// Encodes `method` as one frame on `channel` into the transmit buffer.
    fn send(&mut self, channel: ChannelId, method: Method<'_>) -> Result<(), Error> {
        let mut count = Writer::counting();
        method.write(&mut count);
        let len = count.finish()?;
        self.tx.append(len + FRAME_OVERHEAD, |out| {
            frame::write_header(out, FRAME_METHOD, channel, len);
            let mut w = Writer::new(&mut out[7..7 + len]);
            method.write(&mut w);
            out[7 + len] = FRAME_END;
        })?;
        Ok(())
    }

    /// Marks the session closed and stops its timers.
    fn fail(&mut self, error: Error) -> Error {
        self.state = State::Closed;
        self.timers.stop_all();
        error
    }

    /// Closes the connection with `code` (best effort) and fails.
    fn fail_with_close(&mut self, code: ReplyCode, error: Error) -> Error {
        let text: &str = match code {
            ReplyCode::FrameError => "FRAME_ERROR - malformed frame",
            ReplyCode::SyntaxError => "SYNTAX_ERROR - malformed method",
            ReplyCode::ChannelError => "CHANNEL_ERROR - unknown channel",
            ReplyCode::CommandInvalid => "COMMAND_INVALID - unexpected method",
            _ => "UNEXPECTED_FRAME - frame out of sequence",
        };
        let close = Connection::Close {
            reply_code: code.as_u16(),
            reply_text: text.into(),
            class_id: 0,
            method_id: 0,
        };
        let _ = self.send(0, close.into());
        self.fail(error)
    }

    fn unexpected(&mut self, what: &'static str, channel: ChannelId) -> Error {
        let code = ReplyCode::UnexpectedFrame;
        self.fail_with_close(
            code,
            Error::Unexpected {
                what,
                channel,
                code,
            },
        )
    }
}

fn close_reason(
    code: u16,
    text: super::codec::ShortStr<'_>,
    class_id: u16,
    method_id: u16,
) -> CloseReason {
    CloseReason {
        code: ReplyCode::from_u16(code),
        text: super::error::text(text),
        class_id,
        method_id,
    }
}
