//! The NATS connection state machine (sans-IO, quinn-proto style).
//!
//! The driver loop:
//! 1. read bytes into its receive buffer, then call [`Session::handle_input`]
//!    with the unconsumed bytes until it returns `(0, None)`; after handling
//!    each event, consume the reported number of bytes from the buffer;
//! 2. write [`Session::transmit`] to the transport and report the count with
//!    [`Session::transmitted`];
//! 3. call [`Session::handle_timeout`] (until it returns `Ok(None)`) once
//!    [`Session::poll_timeout`] has passed;
//! 4. on a fatal error ([`Error::is_fatal`]) or a lost transport, call
//!    [`Session::reset`] and reconnect; the session re-sends CONNECT and every
//!    live subscription, then the publishes queued meanwhile.
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
pub use events::{Event, MaxPayloadWarning, Message, Stats};
pub use handshake::required_tx_capacity;
pub use options::*;

use heapless::Vec;

use super::auth::{Authenticator, NoAuth};
use super::commands::{self, CONNECT_MAX};
use super::error::{Error, ProtocolError};
use super::info::{InfoStorage, ServerInfo};
use super::outbox::{Outbox, Sendable};
use super::parser::{self, ServerOp};
use super::subscriptions::{Sid, SubscriptionTable};
use crate::time::Instant;

use handshake::PING_LEN;
use requests::PendingRequest;
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
    /// A fatal error happened; call [`Session::reset`] and reconnect.
    Closed,
}

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
/// let (_, event) = session.handle_input(b"PONG\r\n", now).unwrap();
/// assert!(matches!(event, Some(Event::Connected { reconnect: false, .. })));
/// assert_eq!(session.state(), State::Connected);
/// session.publish("telemetry.temp", None, None, b"21.5").unwrap();
/// assert_eq!(session.transmit(), b"PUB telemetry.temp 4\r\n21.5\r\n");
/// ```
pub struct Session<S, const SUBS: usize, const REQS: usize, I = ServerInfo, A = NoAuth> {
    /// Signs the nonce for NKey/JWT auth (see [`auth`]).
    auth: A,
    options: ConnectOptions,
    out: Outbox<S>,
    subs: SubscriptionTable<SUBS>,
    requests: Vec<PendingRequest, REQS>,
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
    next_keepalive: Option<Instant>,
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
    /// credentials, see [`auth`]).
    pub fn with_authenticator(options: ConnectOptions, tx: S, auth: A) -> Self {
        Session {
            auth,
            options,
            out: Outbox::new(tx),
            subs: SubscriptionTable::new(),
            requests: Vec::new(),
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
            next_keepalive: None,
            done: Vec::new(),
            connect_len: None,
        }
    }

    /// Parses at most one server operation from `input` (the unconsumed
    /// received bytes). Returns how many bytes it used and the event, if
    /// any. `(0, None)` means more bytes are needed. Consume the bytes from
    /// the receive buffer after handling the event (it borrows them).
    ///
    /// A fatal error ([`Error::is_fatal`]) moves the session to
    /// [`State::Closed`]; [`Error::BufferFull`] means the transmit buffer
    /// had no room for an answer (PONG, CONNECT): nothing was consumed,
    /// write out [`Session::transmit`] and call again.
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        if let Some(sid) = self.next_done() {
            return Ok((0, Some(Event::SubscriptionDone { sid })));
        }
        if self.state == State::Closed {
            return Ok((0, None));
        }
        let capacity = match self.options.rx_capacity {
            0 => usize::MAX,
            c => c,
        };
        let (op, used) = match parser::parse(input, capacity) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok((0, None)),
            Err(e) => return Err(self.fail(e)),
        };
        let event = match op {
            ServerOp::Info(json) => self.on_info(json)?,
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
            ServerOp::Pong => self.on_pong(now)?,
            ServerOp::Ok => Some(Event::Ok),
            ServerOp::Msg(frame) => self.on_message(frame)?,
        };
        Ok((used, event))
    }

    fn fail(&mut self, error: Error) -> Error {
        if error.is_fatal() {
            self.state = State::Closed;
            self.next_keepalive = None;
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

    /// After the transport was lost: forgets bytes for the old connection
    /// (keeping whole publishes not yet written), state -> `AwaitingInfo`.
    /// Live subscriptions are re-sent after the next handshake; draining
    /// ones end (nothing more can arrive from the old connection:
    /// [`Event::SubscriptionDone`] follows, see [`Session::poll_timeout`]);
    /// outstanding requests stay (they may time out); PINGs of the old
    /// connection are never answered.
    ///
    /// The report says what was discarded: the half-written command,
    /// session commands for the old connection, and, only if the kept
    /// publishes plus the next handshake would not fit the transmit buffer,
    /// the newest publishes; in bytes and in publishes (also counted in
    /// [`Stats::discarded_on_reset`] and
    /// [`Stats::publishes_discarded_on_reset`]).
    pub fn reset(&mut self, now: Instant) -> ResetReport {
        let _ = now;
        self.state = State::AwaitingInfo;
        self.next_keepalive = None;
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
