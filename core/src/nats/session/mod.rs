//! The NATS connection state machine (sans-IO, quinn-proto style).
//!
//! Files: [`options`] (what the client asks for), `events` (what comes out),
//! `timers` (one deadline table: keepalive and request deadlines),
//! `handshake` (INFO, CONNECT, the first PONG), `inbound` (what the server
//! sends afterwards), `publish`, `subscriptions`, `requests`.
//!
//! The shape every courier session shares (see the AMQP session):
//! - bytes in: [`Session::handle_input`] parses one server operation and
//!   returns what it consumed and, at most, a [`Received`] message that
//!   borrows the input; consume the bytes after handling it;
//! - owned events out: [`Session::poll_event`], until `None`, before more
//!   input (`handle_input` parses nothing while an event waits);
//! - bytes out: [`Session::transmit`] / [`Session::transmitted`];
//! - time in: [`Session::handle_timeout`] at [`Session::poll_timeout`];
//! - on a fatal error ([`Error::is_fatal`]) or a lost transport,
//!   [`Session::start`] and reconnect: the session re-sends CONNECT and every
//!   live subscription, then the publishes queued meanwhile.
//!
//! Publishes made while not connected are queued in the transmit buffer
//! (bounded: a full buffer is [`Error::BufferFull`], nothing is dropped
//! silently) and released after the handshake, behind the re-subscriptions.

mod events;
mod handshake;
mod inbound;
pub mod options;
mod publish;
mod requests;
mod subscriptions;
mod timers;

#[cfg(test)]
mod tests;

pub use crate::nats::ids::{PingId, RequestId};
pub use crate::nats::outbox::ResetReport;
pub use events::{Event, MaxPayloadWarning, Message, Received, Stats, EVENT_QUEUE};
pub use handshake::required_tx_capacity;
pub use options::*;
pub use timers::{Timer, TimerTable};

use heapless::{Deque, Vec};

use super::auth::{Authenticator, NoAuth};
use super::commands::{self, CONNECT_MAX};
use super::error::{Error, ProtocolError};
use super::info::{InfoStorage, ServerInfo};
use super::outbox::{Outbox, Sendable};
use super::parser::{self, ServerOp};
use super::subscriptions::{Sid, SubscriptionTable};
use crate::time::Instant;

use subscriptions::resubscribe_len;

/// Where the session is in the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Transport connected (or about to be); waiting for the server's INFO.
    AwaitingInfo,
    /// CONNECT and PING written; waiting for the PONG that confirms them.
    AwaitingPong,
    /// Handshake done; commands flow.
    Connected,
    /// A fatal error happened; call [`Session::start`] and reconnect.
    Closed,
}

/// The NATS client state machine.
///
/// `S` is the transmit buffer storage (`[u8; N]`, `&mut [u8]`, `Box<[u8]>`),
/// `SUBS` the number of subscriptions it can hold (the request inbox uses
/// one slot once the first request is made), `REQS` the number of
/// outstanding requests.
///
/// ```
/// use courier_core::nats::{ConnectOptions, Event, Session, State};
/// use courier_core::time::Instant;
/// let mut options = ConnectOptions::default();
/// options.rx_capacity = 4096;
/// let mut session: Session<[u8; 1024], 4, 2> = Session::new(options, [0; 1024]);
/// let now = Instant::from_millis(0);
/// let (used, _) = session.handle_input(b"INFO {\"max_payload\":1024}\r\n", now).unwrap();
/// assert_eq!(used, 27);
/// assert!(session.transmit().starts_with(b"CONNECT {"));
/// let n = session.transmit().len();
/// session.transmitted(n);
/// let (used, received) = session.handle_input(b"PONG\r\n", now).unwrap();
/// assert_eq!((used, received), (6, None));
/// let event = session.poll_event();
/// assert!(matches!(event, Some(Event::Connected { reconnect: false, .. })));
/// assert_eq!(session.state(), State::Connected);
/// session.publish("telemetry.temp", None, None, b"21.5").unwrap();
/// assert_eq!(session.transmit(), b"PUB telemetry.temp 4\r\n21.5\r\n");
/// ```
pub struct Session<S, const SUBS: usize, const REQS: usize, I = ServerInfo, A = NoAuth> {
    /// Signs the nonce for NKey/JWT auth (see [`auth`](crate::nats::auth)).
    auth: A,
    options: ConnectOptions,
    out: Outbox<S>,
    subs: SubscriptionTable<SUBS>,
    next_request: u64,
    inbox_sid: Option<Sid>,
    info: Option<I>,
    state: State,
    stats: Stats,
    ever_connected: bool,
    /// Id the next PING gets (ids are unique for the session's life).
    next_ping_id: u64,
    /// Id of the handshake PING of the current connection; later PINGs of
    /// the connection have consecutive ids and PONGs answer them in order.
    first_ping_of_connection: u64,
    /// PONGs received on the current connection.
    pongs_received: u64,
    /// Keepalive PINGs sent since the last PONG.
    pings_outstanding: u32,
    /// Keepalive and request deadlines (an armed request timer is an
    /// outstanding request).
    timers: TimerTable<REQS>,
    /// Owned events waiting for [`Session::poll_event`].
    events: Deque<Event, EVENT_QUEUE>,
    /// Subscriptions that ended (auto-unsubscribe) and still need their
    /// [`Event::SubscriptionDone`]; each sid ends once, so `SUBS` suffices.
    done: Vec<Sid, SUBS>,
    /// Cached length of our CONNECT line (`None` after options changed).
    connect_len: Option<usize>,
}

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// A session waiting for the server's INFO; `tx` is the transmit buffer.
    pub fn new(options: ConnectOptions, tx: S) -> Self
    where
        A: Default,
    {
        Self::with_authenticator(options, tx, A::default())
    }

    /// A session that signs each server's nonce with `auth` (NKey or JWT
    /// credentials, see [`auth`](crate::nats::auth)).
    pub fn with_authenticator(options: ConnectOptions, tx: S, auth: A) -> Self {
        Session {
            auth,
            options,
            out: Outbox::new(tx),
            subs: SubscriptionTable::new(),
            next_request: 1,
            inbox_sid: None,
            info: None,
            state: State::AwaitingInfo,
            stats: Stats::default(),
            ever_connected: false,
            next_ping_id: 1,
            first_ping_of_connection: 0,
            pongs_received: 0,
            pings_outstanding: 0,
            timers: TimerTable::default(),
            events: Deque::new(),
            done: Vec::new(),
            connect_len: None,
        }
    }

    /// Parses at most one server operation from `input` (the unconsumed
    /// received bytes). Returns how many bytes it used and, for a message,
    /// a reply or a server's non-fatal error, the [`Received`] value that
    /// borrows them: consume them from the receive buffer after handling
    /// it. Everything else comes out of [`Session::poll_event`]. `(0, None)`
    /// means more bytes are needed, or an event waits in
    /// [`Session::poll_event`] (nothing is parsed until it is taken).
    ///
    /// A fatal error ([`Error::is_fatal`]) moves the session to
    /// [`State::Closed`]; [`Error::BufferFull`] means the transmit buffer
    /// had no room for an answer (PONG, CONNECT): nothing was consumed,
    /// write out [`Session::transmit`] and call again.
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Received<'a>>), Error> {
        if self.state == State::Closed || self.has_events() {
            return Ok((0, None));
        }
        let capacity = match self.options.rx_capacity {
            0 => usize::MAX,
            c => c,
        };
        let (op, used) = match parser::parse_for::<SUBS>(input, capacity) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok((0, None)),
            Err(e) => return Err(self.fail(e)),
        };
        let received = match op {
            ServerOp::Info(json) => {
                self.on_info(json)?;
                None
            }
            // A server may refuse a connection at once (e.g. maximum
            // connections exceeded): report that rather than "expected INFO".
            ServerOp::Err(text) => Some(self.on_server_error(text)?),
            _ if self.state == State::AwaitingInfo => {
                let seen = input.get(..used).unwrap_or(input);
                return Err(self.fail(
                    ProtocolError::new("INFO as the server's first operation", seen).into(),
                ));
            }
            ServerOp::Ping => {
                commands::pong(&mut Sendable(&mut self.out))?;
                None
            }
            ServerOp::Pong => {
                self.on_pong(now)?;
                None
            }
            ServerOp::Ok => {
                self.push_event(Event::Ok);
                None
            }
            ServerOp::Msg(frame) if SUBS > 0 => self.on_message(frame),
            // The parser refuses messages when there are no slots (so the
            // message code is not linked then); a message would have no
            // subscription: counted like one for an unknown sid.
            ServerOp::Msg(_) => {
                self.stats.dropped_unknown_sid += 1;
                None
            }
        };
        Ok((used, received))
    }

    /// The next owned event, if any: first the queue, then subscriptions
    /// that ended ([`Event::SubscriptionDone`]).
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        self.next_done().map(|sid| Event::SubscriptionDone { sid })
    }

    /// True while [`Session::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || !self.done.is_empty()
    }

    /// Queues an owned event. `handle_input` runs only with an empty queue
    /// and makes at most one event per operation; `handle_timeout` checks
    /// for room first: this cannot overflow.
    fn push_event(&mut self, event: Event) {
        let _ = self.events.push_back(event);
    }

    fn fail(&mut self, error: Error) -> Error {
        if error.is_fatal() {
            self.state = State::Closed;
            self.timers.stop(Timer::Keepalive);
        }
        error
    }

    /// Bytes to write to the transport now.
    pub fn transmit(&self) -> &[u8] {
        self.out.sendable()
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last INFO the server sent, if any (kept across a reset), as
    /// much of it as the session's `I` keeps.
    pub fn server_info(&self) -> Option<&I> {
        self.info.as_ref()
    }

    /// The options (the next CONNECT uses them).
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Changes the options, e.g. credentials for the next server; they take
    /// effect at the next handshake.
    pub fn options_mut(&mut self) -> &mut ConnectOptions {
        self.connect_len = None;
        &mut self.options
    }

    /// The authenticator that signs the nonce.
    pub fn authenticator(&self) -> &A {
        &self.auth
    }

    /// Replaces the authenticator; the next handshake uses it (e.g. other
    /// credentials for another server).
    pub fn set_authenticator(&mut self, auth: A) {
        self.connect_len = None;
        self.auth = auth;
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Begins a new connection after the transport was lost (the same name
    /// and shape as the NSQ and AMQP sessions' `start`): forgets bytes for
    /// the old connection (keeping whole publishes not yet written), state
    /// -> `AwaitingInfo` (where a new session begins).
    /// Live subscriptions are re-sent after the next handshake; draining
    /// ones end (nothing more can arrive from the old connection:
    /// [`Event::SubscriptionDone`] follows from [`Session::poll_event`]);
    /// outstanding requests stay (they may time out); PINGs of the old
    /// connection are never answered.
    ///
    /// The report says what was discarded: the half-written command,
    /// session commands for the old connection, and, only if the kept
    /// publishes plus the next handshake would not fit the transmit buffer,
    /// the newest publishes; in bytes and in publishes (also counted in
    /// [`Stats::discarded_on_reset`] and
    /// [`Stats::publishes_discarded_on_reset`]).
    pub fn start(&mut self, now: Instant) -> ResetReport {
        let _ = now;
        self.state = State::AwaitingInfo;
        self.timers.stop(Timer::Keepalive);
        self.pings_outstanding = 0;
        while let Some(sid) = self.subs.finish_draining(PingId(u64::MAX)) {
            self.end_subscription(sid);
        }
        let reserve = self.handshake_reserve().unwrap_or(CONNECT_MAX);
        let keep_limit = self.out.capacity().saturating_sub(reserve);
        let report = self.out.reset(keep_limit);
        self.stats.discarded_on_reset += report.discarded_bytes as u64;
        self.stats.publishes_discarded_on_reset += report.discarded_publishes as u64;
        report
    }
}
