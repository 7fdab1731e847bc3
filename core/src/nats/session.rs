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

use core::fmt;

use heapless::{String, Vec};

use super::auth::{self, Authenticator, NoAuth, SIGNATURE_B64_LEN};
use super::commands::{self, Connect, CONNECT_MAX};
use super::error::{Error, ProtocolError, ServerErrorKind, SERVER_MESSAGE_CAPACITY};
use super::headers::{Headers, STATUS_NO_RESPONDERS};
use super::info::{InfoStorage, ServerInfo};
use super::outbox::{Held, Outbox, Sendable};
use super::parser::{self, MsgFrame, ServerOp};
use super::subscriptions::{Delivery, Sid, Subscription, SubscriptionTable};
use crate::buf::{decimal_len, format_decimal};
use crate::time::{Duration, Instant};

/// Capacity of the client name sent in CONNECT.
pub const NAME_CAPACITY: usize = 64;
/// Capacity of user, password and token together ([`Credentials`] keeps
/// them in one buffer).
pub const CREDENTIAL_CAPACITY: usize = 256;
/// Capacity of the inbox prefix (`_INBOX.<unique>`).
pub const INBOX_PREFIX_CAPACITY: usize = 64;
/// Default interval between client keepalive PINGs (as nats.go).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default number of unanswered PINGs before the connection is stale.
pub const DEFAULT_MAX_PINGS_OUT: u32 = 2;
/// Room for a message's control line (subject, reply, sizes) on top of
/// max_payload when judging whether the receive buffer is big enough.
pub const CONTROL_LINE_ALLOWANCE: usize = 1024;
/// Transmit bytes kept free during a handshake for PONGs to server PINGs.
const HANDSHAKE_SLACK: usize = 64;

/// What the client says in CONNECT and how the session behaves.
///
/// Owned (fixed-capacity strings) so the session can re-send CONNECT on
/// every reconnect without borrowing from the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Client name shown by the server's monitoring (empty: none).
    pub name: String<NAME_CAPACITY>,
    /// Ask the server to acknowledge every command with `+OK`.
    pub verbose: bool,
    /// Ask the server for strict subject checking.
    pub pedantic: bool,
    /// Tell the server we require TLS (the driver does the TLS).
    pub tls_required: bool,
    /// Receive our own publishes on matching subscriptions (default true).
    pub echo: bool,
    /// Use headers (HPUB/HMSG) (default true).
    pub headers: bool,
    /// Ask for a 503 status reply when a request has no responders
    /// (default true; needs `headers`).
    pub no_responders: bool,
    /// User/password and token sent in CONNECT (see
    /// [`ConnectOptions::with_credentials`], [`ConnectOptions::with_token`]).
    pub credentials: Credentials,
    /// Unique inbox prefix, e.g. `_INBOX.<random>`; requests subscribe to
    /// `<prefix>.*`. The core has no RNG, so the driver supplies it; empty
    /// means requests fail with [`Error::InboxNotConfigured`].
    pub inbox_prefix: String<INBOX_PREFIX_CAPACITY>,
    /// Interval between keepalive PINGs (zero disables keepalive).
    pub ping_interval: Duration,
    /// Unanswered PINGs after which the connection is stale.
    pub max_pings_out: u32,
    /// Capacity of the driver's receive buffer: the largest frame the
    /// session can receive (compared with the server's max_payload). The
    /// driver must set it; 0 means unknown (no early FrameTooLarge).
    pub rx_capacity: usize,
}

impl ConnectOptions {
    /// User/password authentication (a token set before is kept).
    pub fn with_credentials(mut self, user: &str, pass: &str) -> Result<Self, OptionTooLong> {
        let token = self.credentials.token();
        self.credentials = Credentials::new(Some(user), Some(pass), token)?;
        Ok(self)
    }

    /// Token authentication (user/password set before are kept).
    pub fn with_token(mut self, token: &str) -> Result<Self, OptionTooLong> {
        let c = &self.credentials;
        self.credentials = Credentials::new(c.user(), c.pass(), Some(token))?;
        Ok(self)
    }
}

/// User, password and token for CONNECT, kept in one buffer of
/// [`CREDENTIAL_CAPACITY`] bytes (together) rather than one per field, so a
/// session without credentials does not carry three empty 256-byte strings
/// worth of state. `Debug` does not show them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    text: String<CREDENTIAL_CAPACITY>,
    user: Option<Span>,
    pass: Option<Span>,
    token: Option<Span>,
}

/// Where one credential lies in [`Credentials::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Credentials {
    /// Stores the given credentials (`None`: not set); fails when together
    /// they exceed [`CREDENTIAL_CAPACITY`].
    ///
    /// ```
    /// use courier_core::nats::session::Credentials;
    /// let c = Credentials::new(Some("alice"), Some("s3cret"), None).unwrap();
    /// assert_eq!((c.user(), c.pass(), c.token()), (Some("alice"), Some("s3cret"), None));
    /// assert!(!format!("{c:?}").contains("s3cret"));
    /// assert!(Credentials::new(Some(&"u".repeat(200)), Some(&"p".repeat(57)), None).is_err());
    /// ```
    pub fn new(
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> Result<Self, OptionTooLong> {
        let total: usize = [user, pass, token].iter().flatten().map(|s| s.len()).sum();
        if total > CREDENTIAL_CAPACITY {
            return Err(OptionTooLong {
                len: total,
                max: CREDENTIAL_CAPACITY,
            });
        }
        let mut c = Credentials::default();
        let mut put = |value: Option<&str>| {
            value.map(|v| {
                let start = c.text.len() as u16;
                // Cannot fail: the total was checked above.
                let _ = c.text.push_str(v);
                Span {
                    start,
                    end: c.text.len() as u16,
                }
            })
        };
        let (u, p, t) = (put(user), put(pass), put(token));
        c.user = u;
        c.pass = p;
        c.token = t;
        Ok(c)
    }

    fn get(&self, span: Option<Span>) -> Option<&str> {
        let span = span?;
        self.text
            .get(usize::from(span.start)..usize::from(span.end))
    }

    /// The user, if set.
    pub fn user(&self) -> Option<&str> {
        self.get(self.user)
    }

    /// The password, if set.
    pub fn pass(&self) -> Option<&str> {
        self.get(self.pass)
    }

    /// The token, if set.
    pub fn token(&self) -> Option<&str> {
        self.get(self.token)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.pass.is_none() && self.token.is_none()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: Option<Span>| s.map(|_| "***");
        f.debug_struct("Credentials")
            .field("user", &mask(self.user))
            .field("pass", &mask(self.pass))
            .field("token", &mask(self.token))
            .finish()
    }
}

/// A string option longer than its fixed capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionTooLong {
    /// Length given.
    pub len: usize,
    /// Capacity of the option.
    pub max: usize,
}

impl fmt::Display for OptionTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "option value of {} bytes is longer than the {} bytes it can hold",
            self.len, self.max
        )
    }
}

impl core::error::Error for OptionTooLong {}

/// Replaces the contents of a fixed-capacity string option.
///
/// ```
/// use courier_core::nats::session::{set_str, ConnectOptions};
/// let mut o = ConnectOptions::default();
/// set_str(&mut o.name, "edge-1").unwrap();
/// set_str(&mut o.inbox_prefix, "_INBOX.k2j3h4").unwrap();
/// assert!(set_str(&mut o.name, &"x".repeat(100)).is_err());
/// ```
pub fn set_str<const N: usize>(target: &mut String<N>, value: &str) -> Result<(), OptionTooLong> {
    *target = bounded(value)?;
    Ok(())
}

fn bounded<const N: usize>(value: &str) -> Result<String<N>, OptionTooLong> {
    let mut s = String::new();
    s.push_str(value).map_err(|_| OptionTooLong {
        len: value.len(),
        max: N,
    })?;
    Ok(s)
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            name: String::new(),
            verbose: false,
            pedantic: false,
            tls_required: false,
            echo: true,
            headers: true,
            no_responders: true,
            credentials: Credentials::default(),
            inbox_prefix: String::new(),
            ping_interval: DEFAULT_PING_INTERVAL,
            max_pings_out: DEFAULT_MAX_PINGS_OUT,
            rx_capacity: 0,
        }
    }
}

/// Identifies an outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u64);

/// Identifies a PING; PONGs answer PINGs in order, so `Pong { ping }`
/// also answers every earlier ping of the same connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PingId(pub u64);

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

/// What [`Session::reset`] did with the queued commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResetReport {
    /// Bytes dropped: the half-written command, session commands meant for
    /// the old connection (CONNECT, PING, PONG, SUB, UNSUB) and publishes
    /// that could not be kept.
    pub discarded_bytes: usize,
    /// Publishes dropped: one half written to the lost transport (the
    /// server discards an incomplete command) and, only if the kept ones
    /// plus the next handshake would not fit the transmit buffer, the
    /// newest ones. Zero means no publish was lost by the reset.
    pub discarded_publishes: usize,
    /// Whole publishes not yet written, kept (held) for the next connection.
    pub kept_publishes: usize,
}

/// Bytes of transmit buffer the handshake needs with `options`: the CONNECT
/// line and the PING written with it. A session whose transmit buffer is
/// smaller fails at INFO with [`Error::TransmitBufferTooSmall`]; give it
/// more if subscriptions (re-sent after each handshake) or publishes should
/// be queued too. Fails only if CONNECT would exceed
/// [`commands::CONNECT_MAX`].
///
/// ```
/// use courier_core::nats::session::{required_tx_capacity, ConnectOptions};
/// let plain = required_tx_capacity(&ConnectOptions::default()).unwrap();
/// assert!(plain > 128 && plain < 256);
/// let o = ConnectOptions::default().with_token("t0k3n").unwrap();
/// assert_eq!(required_tx_capacity(&o).unwrap(), plain + r#","auth_token":"t0k3n""#.len());
/// ```
pub fn required_tx_capacity(options: &ConnectOptions) -> Result<usize, Error> {
    let mut line = [0u8; CONNECT_MAX];
    let len = commands::encode_connect_line(&connect_fields(options, &NoAuth, None), &mut line)?;
    Ok(len + PING_LEN)
}

/// `PING\r\n`.
const PING_LEN: usize = 6;

/// Placeholder signature: the CONNECT length does not depend on the nonce.
const SIGNATURE_PLACEHOLDER: &str = match core::str::from_utf8(&[b'A'; SIGNATURE_B64_LEN]) {
    Ok(s) => s,
    Err(_) => "",
};

fn connect_fields<'a, A: Authenticator>(
    o: &'a ConnectOptions,
    auth: &'a A,
    sig: Option<&'a str>,
) -> Connect<'a> {
    let signs = auth.signs();
    Connect {
        jwt: auth.jwt(),
        // nats.go sends the public key only without a JWT (the JWT names it).
        nkey: if auth.jwt().is_some() {
            None
        } else {
            auth.nkey()
        },
        sig: if signs {
            Some(sig.unwrap_or(SIGNATURE_PLACEHOLDER))
        } else {
            None
        },
        verbose: o.verbose,
        pedantic: o.pedantic,
        tls_required: o.tls_required,
        name: (!o.name.is_empty()).then_some(o.name.as_str()),
        echo: o.echo,
        headers: o.headers,
        no_responders: o.no_responders && o.headers,
        user: o.credentials.user(),
        pass: o.credentials.pass(),
        auth_token: o.credentials.token(),
        ..Connect::default()
    }
}

/// A request waiting for its reply.
#[derive(Clone, Copy, Debug)]
struct PendingRequest {
    id: RequestId,
    deadline: Instant,
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

    fn on_info<'a>(&mut self, json: &[u8]) -> Result<Option<Event<'a>>, Error> {
        let info = match I::from_info_json(json) {
            Ok(info) => info,
            Err(e) => return Err(self.fail(e.into())),
        };
        if self.state != State::AwaitingInfo {
            let lame_duck = info.lame_duck();
            self.info = Some(info);
            return Ok(Some(if lame_duck {
                Event::LameDuckMode
            } else {
                Event::InfoUpdated
            }));
        }
        // CONNECT and PING go together or not at all.
        let connect_len = self.connect_line_len()?;
        let needed = connect_len + PING_LEN;
        if needed > self.out.capacity() {
            // Waiting cannot help: no amount of writing makes room.
            return Err(self.fail(Error::TransmitBufferTooSmall {
                needed,
                capacity: self.out.capacity(),
            }));
        }
        let available = self.out.capacity() - self.out.len();
        if needed > available {
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: self.out.len() + needed,
                capacity: self.out.capacity(),
            }));
        }
        self.write_connect(info.nonce())?;
        commands::ping(&mut Sendable(&mut self.out))?;
        self.first_ping_of_connection = self.next_ping_id;
        self.next_ping_id += 1;
        self.pongs_received = 0;
        self.pings_outstanding = 0;
        self.info = Some(info);
        self.state = State::AwaitingPong;
        Ok(None)
    }

    fn write_connect(&mut self, nonce: &str) -> Result<(), Error> {
        let mut sig_text = [0u8; SIGNATURE_B64_LEN];
        let sig = if self.auth.signs() {
            let raw = self.auth.sign(nonce.as_bytes());
            Some(auth::encode_signature(&raw, &mut sig_text))
        } else {
            None
        };
        let fields = connect_fields(&self.options, &self.auth, sig);
        let mut line = [0u8; CONNECT_MAX];
        let len = commands::encode_connect_line(&fields, &mut line)?;
        let line = line.get(..len).unwrap_or_default();
        Ok(commands::append_parts(
            &mut Sendable(&mut self.out),
            &[line],
        )?)
    }

    fn connect_line_len(&mut self) -> Result<usize, Error> {
        if let Some(len) = self.connect_len {
            return Ok(len);
        }
        let fields = connect_fields(&self.options, &self.auth, None);
        let mut line = [0u8; CONNECT_MAX];
        let len = commands::encode_connect_line(&fields, &mut line)?;
        self.connect_len = Some(len);
        Ok(len)
    }

    /// Transmit bytes the rest of the handshake will need (kept free while
    /// publishes are held).
    fn handshake_reserve(&mut self) -> Result<usize, Error> {
        let connect = match self.state {
            State::AwaitingPong => 0,
            State::Connected => return Ok(0),
            State::AwaitingInfo | State::Closed => self.connect_line_len()? + PING_LEN,
        };
        let subs: usize = self.subs.iter().map(resubscribe_len).sum();
        Ok(connect + subs + HANDSHAKE_SLACK)
    }

    fn on_pong<'a>(&mut self, now: Instant) -> Result<Option<Event<'a>>, Error> {
        let answered = self.first_ping_of_connection + self.pongs_received;
        self.pings_outstanding = 0;
        if self.state == State::AwaitingPong && answered == self.first_ping_of_connection {
            // Re-subscribe before the held publishes are released, so
            // messages published meanwhile reach our own subscriptions.
            // All or nothing: a retry after BufferFull must not repeat SUBs.
            let needed: usize = self.subs.iter().map(resubscribe_len).sum();
            let (queued, capacity) = (self.out.len(), self.out.capacity());
            if queued + needed > capacity {
                return Err(Error::BufferFull(crate::buf::CapacityError {
                    needed: queued + needed,
                    capacity,
                }));
            }
            let mut sink = Sendable(&mut self.out);
            for sub in self.subs.iter() {
                commands::subscribe(&mut sink, &sub.subject, sub.queue.as_deref(), sub.sid.0)?;
                if let Some(remaining) = sub.remaining() {
                    commands::unsubscribe(&mut sink, sub.sid.0, Some(remaining))?;
                }
            }
            self.pongs_received += 1;
            self.out.release();
            self.state = State::Connected;
            let reconnect = self.ever_connected;
            self.ever_connected = true;
            self.next_keepalive = self.keepalive_after(now);
            return Ok(Some(Event::Connected {
                reconnect,
                max_payload_warning: self.max_payload_warning(),
            }));
        }
        self.pongs_received += 1;
        // Drains whose PING this PONG answers are complete: the server
        // processed their UNSUB, so no message for them can follow.
        while let Some(sid) = self.subs.finish_draining(PingId(answered)) {
            self.end_subscription(sid);
        }
        Ok(Some(Event::Pong {
            ping: PingId(answered),
        }))
    }

    fn on_server_error<'a>(&mut self, text: &'a str) -> Result<Event<'a>, Error> {
        let kind = ServerErrorKind::classify(text);
        if !kind.is_fatal() {
            return Ok(Event::ServerError {
                kind,
                message: text,
            });
        }
        let error = if kind == ServerErrorKind::AuthorizationViolation {
            Error::AuthorizationViolation
        } else {
            let mut message = String::<SERVER_MESSAGE_CAPACITY>::new();
            let mut cut = text.len().min(SERVER_MESSAGE_CAPACITY);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let _ = message.push_str(text.get(..cut).unwrap_or_default());
            Error::Server { kind, message }
        };
        Err(self.fail(error))
    }

    fn on_message<'a>(&mut self, frame: MsgFrame<'a>) -> Result<Option<Event<'a>>, Error> {
        // Headers come from another client, not the server: a broken block
        // must not kill our connection. Deliver the message without them.
        let headers = match frame.headers.map(Headers::parse_received) {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => {
                self.stats.malformed_headers += 1;
                None
            }
            None => None,
        };
        let sid = Sid(frame.sid);
        let message = Message {
            sid,
            subject: frame.subject,
            reply: frame.reply,
            headers,
            payload: frame.payload,
            status: headers.and_then(|h| h.status()),
        };
        if self.inbox_sid == Some(sid) {
            let token = frame.subject.rsplit('.').next().unwrap_or_default();
            let id = parser::parse_decimal(token.as_bytes()).map(RequestId);
            let Some(i) = id.and_then(|id| self.requests.iter().position(|r| r.id == id)) else {
                self.stats.late_replies += 1;
                return Ok(None);
            };
            let request = self.requests.swap_remove(i).id;
            self.stats.messages_received += 1;
            if message.status == Some(STATUS_NO_RESPONDERS) {
                return Ok(Some(Event::NoResponders { request }));
            }
            return Ok(Some(Event::Reply { request, message }));
        }
        match self.subs.on_message(sid) {
            Delivery::Drop => {
                self.stats.dropped_unknown_sid += 1;
                Ok(None)
            }
            Delivery::Deliver { last } => {
                if last {
                    // Cannot overflow: each sid ends once and SUBS bounds them.
                    let _ = self.done.push(sid);
                }
                self.stats.messages_received += 1;
                Ok(Some(Event::Message(message)))
            }
        }
    }

    /// Queues [`Event::SubscriptionDone`] for a subscription just removed
    /// from the table.
    fn end_subscription(&mut self, sid: Sid) {
        if self.inbox_sid == Some(sid) {
            self.inbox_sid = None;
        }
        // Cannot overflow: each sid ends once and SUBS bounds them.
        let _ = self.done.push(sid);
    }

    /// Oldest subscription that ended and was not reported yet.
    fn next_done(&mut self) -> Option<Sid> {
        (!self.done.is_empty()).then(|| self.done.remove(0))
    }

    /// Next keepalive time; a zero interval disables keepalive.
    fn keepalive_after(&self, now: Instant) -> Option<Instant> {
        let interval = self.options.ping_interval;
        (interval.as_millis() > 0).then(|| now + interval)
    }

    fn max_payload_warning(&self) -> Option<MaxPayloadWarning> {
        let info = self.info.as_ref()?;
        let rx = self.options.rx_capacity;
        let needed = usize::try_from(info.max_payload())
            .unwrap_or(usize::MAX)
            .saturating_add(CONTROL_LINE_ALLOWANCE);
        (rx != 0 && rx < needed).then_some(MaxPayloadWarning {
            max_payload: info.max_payload(),
            rx_capacity: rx,
        })
    }

    /// Bytes to write to the transport now.
    pub fn transmit(&self) -> &[u8] {
        self.out.sendable()
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// When [`Session::handle_timeout`] must be called next (keepalive PING
    /// or a request deadline), if ever. When an [`Event::SubscriptionDone`]
    /// is waiting to be handed out (an auto-unsubscribe or drain ended, or
    /// a reset ended the drains) this is already due (the earliest
    /// instant), so a driver that calls `handle_timeout` only when
    /// `poll_timeout` has passed still gets it without more input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.done.is_empty() {
            return Some(Instant::from_millis(0));
        }
        let request = self.requests.iter().map(|r| r.deadline).min();
        match (self.next_keepalive, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hands out ended subscriptions ([`Event::SubscriptionDone`]), sends
    /// keepalive PINGs, detects a stale connection and times out requests.
    /// Returns at most one event per call: call until `Ok(None)` once
    /// [`Session::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Event<'static>>, Error> {
        if let Some(sid) = self.next_done() {
            return Ok(Some(Event::SubscriptionDone { sid }));
        }
        if self.state == State::Connected && self.next_keepalive.is_some_and(|at| at <= now) {
            if self.pings_outstanding >= self.options.max_pings_out {
                let pings_outstanding = self.pings_outstanding;
                self.state = State::Closed;
                self.next_keepalive = None;
                return Err(Error::StaleConnection { pings_outstanding });
            }
            // An unwritable PING still counts: a transmit buffer that does
            // not drain for max_pings_out intervals is a dead connection too.
            if commands::ping(&mut Sendable(&mut self.out)).is_ok() {
                self.next_ping_id += 1;
            }
            self.pings_outstanding += 1;
            self.next_keepalive = self.keepalive_after(now);
        }
        if let Some(i) = self.requests.iter().position(|r| r.deadline <= now) {
            let request = self.requests.swap_remove(i).id;
            return Ok(Some(Event::RequestTimedOut { request }));
        }
        Ok(None)
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

    /// Live subscriptions (the request inbox included).
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subs.iter()
    }

    /// Requests waiting for a reply.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Bytes queued for transmission, held publishes included.
    pub fn queued_bytes(&self) -> usize {
        self.out.len()
    }

    /// Bytes of publishes held until the handshake completes (made while
    /// not connected, or kept across a [`Session::reset`]).
    pub fn held_bytes(&self) -> usize {
        self.out.held_len()
    }

    /// [`Error::BufferSmallerThanMaxPayload`] when the server's max_payload
    /// (known after INFO) plus [`CONTROL_LINE_ALLOWANCE`] exceeds the
    /// receive buffer capacity. The same condition is reported, non-fatally,
    /// in [`Event::Connected`].
    pub fn check_buffers(&self) -> Result<(), Error> {
        match self.max_payload_warning() {
            Some(w) => Err(Error::BufferSmallerThanMaxPayload {
                max_payload: w.max_payload,
                capacity: w.rx_capacity,
            }),
            None => Ok(()),
        }
    }

    fn check_publish(&self, headers: Option<&[u8]>, payload_len: usize) -> Result<(), Error> {
        let size = headers.map_or(0, <[u8]>::len).saturating_add(payload_len);
        if headers.is_some() && !self.options.headers {
            return Err(Error::HeadersNotSupported);
        }
        if let Some(info) = &self.info {
            if headers.is_some() && !info.headers() {
                return Err(Error::HeadersNotSupported);
            }
            if info.max_payload() > 0 && size as u64 > info.max_payload() {
                return Err(Error::PayloadTooLarge {
                    size,
                    max_payload: info.max_payload(),
                });
            }
        }
        Ok(())
    }

    /// Publishes `payload` to `subject` (HPUB when `headers` is given: a
    /// complete NATS/1.0 block such as `HeaderWriter::as_bytes()`).
    /// Validated first; written whole or not at all. Queued behind the
    /// handshake when not connected (room for the handshake is kept free).
    pub fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.check_publish(headers, payload.len())?;
        if self.state == State::Connected {
            commands::publish(
                &mut Sendable(&mut self.out),
                subject,
                reply,
                headers,
                payload,
            )
        } else {
            let reserve = self.handshake_reserve()?;
            commands::publish(
                &mut Held {
                    outbox: &mut self.out,
                    reserve,
                },
                subject,
                reply,
                headers,
                payload,
            )
        }
    }

    /// Zero-copy publish: appends only the `PUB`/`HPUB` control line (and
    /// headers) for a payload of `payload_len` bytes and returns the trailer
    /// (`\r\n`). Needs state `Connected` and an empty [`Session::transmit`]
    /// (else [`Error::NotConnected`] / [`Error::BufferFull`]). The driver
    /// writes [`Session::transmit`] (which stops at the end of the prefix),
    /// then the payload, then the trailer, and only then anything else.
    pub fn publish_header_only(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload_len: usize,
    ) -> Result<&'static [u8], Error> {
        if self.state != State::Connected {
            return Err(Error::NotConnected);
        }
        if !self.out.is_empty() {
            // Flush first: the payload must follow its prefix directly.
            let capacity = self.out.capacity();
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: (self.out.len() + 1).min(capacity),
                capacity,
            }));
        }
        self.check_publish(headers, payload_len)?;
        let trailer = commands::publish_header_only(
            &mut Sendable(&mut self.out),
            subject,
            reply,
            headers,
            payload_len,
        )?;
        self.out.mark_vectored();
        Ok(trailer)
    }

    /// Subscribes (with a queue group when `queue` is given). Validated
    /// first. When not connected the SUB is sent after the next handshake.
    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> Result<Sid, Error> {
        let sid = self.subs.insert(subject, queue)?;
        let written = if self.state == State::Connected {
            commands::subscribe(&mut Sendable(&mut self.out), subject, queue, sid.0)
        } else {
            // The SUB will be part of the handshake: keep room for it.
            self.handshake_reserve().and_then(|reserve| {
                let capacity = self.out.capacity();
                let needed = self.out.len() + reserve;
                if needed > capacity {
                    Err(Error::BufferFull(crate::buf::CapacityError {
                        needed,
                        capacity,
                    }))
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = written {
            let _ = self.subs.remove(sid);
            return Err(e);
        }
        Ok(sid)
    }

    /// Ends a subscription now: messages the server routed before it
    /// processes the UNSUB are dropped (counted in
    /// [`Stats::dropped_unknown_sid`]); see
    /// [`Session::unsubscribe_draining`] for the lossless way.
    pub fn unsubscribe(&mut self, sid: Sid) -> Result<(), Error> {
        let Some(sub) = self.subs.get(sid) else {
            return Err(Error::UnknownSubscription(sid));
        };
        // A draining subscription's UNSUB is already on its way.
        if self.state == State::Connected && sub.draining.is_none() {
            commands::unsubscribe(&mut Sendable(&mut self.out), sid.0, None)?;
        }
        self.subs.remove(sid)?;
        if self.inbox_sid == Some(sid) {
            self.inbox_sid = None;
        }
        Ok(())
    }

    /// Ends a subscription without losing a message (nats.go's drain):
    /// writes `UNSUB <sid>` followed by a PING and keeps delivering the
    /// subscription's messages until the PONG to that PING arrives. The
    /// server processes commands in order, so by then it has processed the
    /// UNSUB and routes nothing more; the subscription is removed and
    /// [`Event::SubscriptionDone`] follows the [`Event::Pong`].
    ///
    /// When not connected the server does not know the subscription on the
    /// coming connection (it would be re-sent after the handshake), so it
    /// ends at once. A lost connection ([`Session::reset`]) ends every
    /// drain: nothing more can arrive on the old connection. Calling it
    /// again on a draining subscription does nothing. UNSUB and PING are
    /// written together or not at all ([`Error::BufferFull`]).
    pub fn unsubscribe_draining(&mut self, sid: Sid) -> Result<(), Error> {
        let Some(sub) = self.subs.get(sid) else {
            return Err(Error::UnknownSubscription(sid));
        };
        if sub.draining.is_some() {
            return Ok(());
        }
        if self.state != State::Connected {
            self.subs.remove(sid)?;
            self.end_subscription(sid);
            return Ok(());
        }
        let needed = UNSUB_PREFIX_LEN + decimal_len(sid.0) + CRLF_LEN + PING_LEN;
        let (queued, capacity) = (self.out.len(), self.out.capacity());
        if queued + needed > capacity {
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: queued + needed,
                capacity,
            }));
        }
        let mut sink = Sendable(&mut self.out);
        commands::unsubscribe(&mut sink, sid.0, None)?;
        commands::ping(&mut sink)?;
        let ping = PingId(self.next_ping_id);
        self.next_ping_id += 1;
        self.subs.mark_draining(sid, ping)
    }

    /// True while `sid` drains (UNSUB sent, its PONG not yet received).
    pub fn is_draining(&self, sid: Sid) -> bool {
        self.subs.get(sid).is_some_and(|s| s.draining.is_some())
    }

    /// Ends a subscription after `max` messages in total; the `max`th is the
    /// last delivered, followed by [`Event::SubscriptionDone`] (at once if
    /// `max` were already delivered).
    pub fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), Error> {
        if self.subs.get(sid).is_none() {
            return Err(Error::UnknownSubscription(sid));
        }
        if self.state == State::Connected {
            commands::unsubscribe(&mut Sendable(&mut self.out), sid.0, Some(max))?;
        }
        if self.subs.set_max(sid, max)? {
            let _ = self.done.push(sid);
        }
        Ok(())
    }

    /// Publishes a request whose reply comes back as [`Event::Reply`]
    /// (or [`Event::NoResponders`], or [`Event::RequestTimedOut`] after
    /// `timeout`). The first request subscribes to `<inbox_prefix>.*`.
    pub fn request(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        now: Instant,
        timeout: Duration,
    ) -> Result<RequestId, Error> {
        if self.options.inbox_prefix.is_empty() {
            return Err(Error::InboxNotConfigured);
        }
        if self.requests.is_full() {
            return Err(Error::RequestTableFull { capacity: REQS });
        }
        if self.inbox_sid.is_none() {
            let mut wildcard = String::<{ INBOX_PREFIX_CAPACITY + 2 }>::new();
            let _ = wildcard.push_str(&self.options.inbox_prefix);
            let _ = wildcard.push_str(".*");
            self.inbox_sid = Some(self.subscribe(&wildcard, None)?);
        }
        let id = RequestId(self.next_request);
        let mut reply = String::<{ INBOX_PREFIX_CAPACITY + 21 }>::new();
        let mut digits = [0u8; 20];
        let _ = reply.push_str(&self.options.inbox_prefix);
        let _ = reply.push('.');
        let token = format_decimal(id.0, &mut digits);
        let _ = reply.push_str(core::str::from_utf8(token).unwrap_or_default());
        self.publish(subject, Some(&reply), headers, payload)?;
        self.next_request += 1;
        // Cannot fail: fullness was checked above.
        let _ = self.requests.push(PendingRequest {
            id,
            deadline: now + timeout,
        });
        Ok(id)
    }

    /// Stops waiting for a request (its reply will be dropped). Returns
    /// false if it was not waiting.
    pub fn cancel_request(&mut self, request: RequestId) -> bool {
        match self.requests.iter().position(|r| r.id == request) {
            Some(i) => {
                self.requests.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Sends a PING; [`Event::Pong`] with this id (or a later one) means
    /// the server processed everything written before it (a flush).
    pub fn ping(&mut self) -> Result<PingId, Error> {
        if self.state != State::Connected {
            return Err(Error::NotConnected);
        }
        commands::ping(&mut Sendable(&mut self.out))?;
        let id = PingId(self.next_ping_id);
        self.next_ping_id += 1;
        Ok(id)
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

    /// Publishes held until the handshake completes (see
    /// [`Session::held_bytes`]).
    pub fn held_publishes(&self) -> usize {
        self.out.held_publishes()
    }
}

/// `UNSUB ` on the wire.
const UNSUB_PREFIX_LEN: usize = 6;
/// `\r\n` on the wire.
const CRLF_LEN: usize = 2;

/// Bytes the SUB (and UNSUB for a pending auto-unsubscribe) of `sub` take.
fn resubscribe_len(sub: &Subscription) -> usize {
    let sub_len = 4
        + sub.subject.len()
        + 1
        + sub.queue.as_ref().map_or(0, |q| q.len() + 1)
        + decimal_len(sub.sid.0)
        + 2;
    let unsub_len = sub
        .remaining()
        .map_or(0, |r| 6 + decimal_len(sub.sid.0) + 1 + decimal_len(r) + 2);
    sub_len + unsub_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::CapacityError;
    use crate::nats::error::SubjectError;
    use crate::nats::headers::HeaderWriter;
    use proptest::prelude::*;
    use std::format;
    use std::string::String as StdString;
    use std::vec::Vec as StdVec;

    type TestSession = Session<[u8; 1024], 4, 2>;
    const INFO: &[u8] = b"INFO {\"server_id\":\"S\",\"version\":\"2.15.1\",\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n";
    const T0: Instant = Instant::from_millis(1_000);

    fn options() -> ConnectOptions {
        let mut o = ConnectOptions {
            rx_capacity: 2 * 1024 * 1024,
            ..ConnectOptions::default()
        };
        set_str(&mut o.inbox_prefix, "_INBOX.t").unwrap();
        o
    }

    fn take(s: &mut TestSession) -> StdString {
        let out = StdString::from_utf8_lossy(s.transmit()).into_owned();
        let n = s.transmit().len();
        s.transmitted(n);
        out
    }

    /// Feeds `bytes` the way a driver does and renders every event.
    fn feed(s: &mut TestSession, bytes: &[u8], now: Instant) -> Result<StdVec<StdString>, Error> {
        let mut events = StdVec::new();
        let mut at = 0;
        loop {
            let (used, event) = s.handle_input(&bytes[at..], now)?;
            let had_event = event.is_some();
            if let Some(e) = event {
                events.push(format!("{e:?}"));
            }
            at += used;
            if used == 0 && !had_event {
                break;
            }
        }
        assert_eq!(at, bytes.len(), "unconsumed: {:?}", &bytes[at..]);
        Ok(events)
    }

    fn connected() -> TestSession {
        let mut s = TestSession::new(options(), [0; 1024]);
        feed(&mut s, INFO, T0).unwrap();
        take(&mut s);
        feed(&mut s, b"PONG\r\n", T0).unwrap();
        assert_eq!(s.state(), State::Connected);
        s
    }

    #[test]
    fn handshake_writes_connect_then_ping_and_waits_for_pong() {
        let mut s = TestSession::new(options(), [0; 1024]);
        assert_eq!(s.state(), State::AwaitingInfo);
        assert_eq!(s.transmit(), b"");
        assert_eq!(feed(&mut s, INFO, T0).unwrap(), StdVec::<StdString>::new());
        assert_eq!(s.state(), State::AwaitingPong);
        assert_eq!(
            take(&mut s),
            format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"lang\":\"rust\",\
                 \"version\":\"{}\",\"protocol\":1,\"echo\":true,\"headers\":true,\"no_responders\":true}}\r\nPING\r\n",
                commands::VERSION
            )
        );
        assert_eq!(s.server_info().unwrap().version, "2.15.1");
        let (used, event) = s.handle_input(b"PONG\r\n", T0).unwrap();
        assert_eq!(used, 6);
        assert_eq!(
            event,
            Some(Event::Connected {
                reconnect: false,
                max_payload_warning: None
            })
        );
        assert_eq!(s.poll_timeout(), Some(T0 + DEFAULT_PING_INTERVAL));
    }

    #[test]
    fn handshake_with_real_server_bytes_and_credentials() {
        let mut o = options().with_credentials("alice", "s\"cret").unwrap();
        set_str(&mut o.name, "edge-1").unwrap();
        o.verbose = true;
        let mut s = TestSession::new(o, [0; 1024]);
        let mut info = StdVec::from(&b"INFO "[..]);
        info.extend_from_slice(crate::nats::info::tests::REAL_INFO);
        info.extend_from_slice(b" \r\n");
        feed(&mut s, &info, T0).unwrap();
        let connect = take(&mut s);
        assert!(connect.contains("\"verbose\":true"), "{connect}");
        assert!(connect.contains("\"name\":\"edge-1\""), "{connect}");
        assert!(
            connect.contains("\"user\":\"alice\",\"pass\":\"s\\\"cret\""),
            "{connect}"
        );
        // What nats-server 2.15.1 answered to a verbose CONNECT + PING.
        let events = feed(&mut s, b"+OK\r\nPONG\r\n", T0).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], "Ok");
        assert!(events[1].starts_with("Connected"));
        assert_eq!(s.server_info().unwrap().max_payload, 1_048_576);
    }

    #[test]
    fn missing_credentials_still_connect_and_get_a_typed_error() {
        // Bytes exchanged with nats-server 2.15.1 started with --user/--pass.
        let mut s = TestSession::new(options(), [0; 1024]);
        let mut info = StdVec::from(&b"INFO "[..]);
        info.extend_from_slice(crate::nats::info::tests::REAL_AUTH_INFO);
        info.extend_from_slice(b" \r\n");
        feed(&mut s, &info, T0).unwrap();
        assert!(s.server_info().unwrap().auth_required);
        assert!(take(&mut s).starts_with("CONNECT {"));
        assert_eq!(
            s.handle_input(b"-ERR 'Authorization Violation'\r\n", T0),
            Err(Error::AuthorizationViolation)
        );
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn server_ping_is_answered_with_pong() {
        let mut s = connected();
        assert_eq!(feed(&mut s, b"PING\r\nping\r\n", T0).unwrap().len(), 0);
        assert_eq!(take(&mut s), "PONG\r\nPONG\r\n");
    }

    #[test]
    fn messages_are_zero_copy_events() {
        let mut s = connected();
        let sid = s.subscribe("telemetry.>", Some("workers")).unwrap();
        assert_eq!(take(&mut s), "SUB telemetry.> workers 1\r\n");
        let input = b"MSG telemetry.temp 1 reply.1 4\r\n21.5\r\nHMSG telemetry.hum 1 21 23\r\nNATS/1.0\r\nUnit: %\r\n\r\n40\r\n";
        let (used, event) = s.handle_input(input, T0).unwrap();
        let Some(Event::Message(m)) = event else {
            panic!("{event:?}")
        };
        assert_eq!(used, 38);
        assert_eq!(
            (m.sid, m.subject, m.reply, m.payload),
            (sid, "telemetry.temp", Some("reply.1"), &b"21.5"[..])
        );
        assert!(core::ptr::eq(m.payload.as_ptr(), input[32..].as_ptr()));
        let (_, event) = s.handle_input(&input[used..], T0).unwrap();
        let Some(Event::Message(m)) = event else {
            panic!("{event:?}")
        };
        assert_eq!(m.headers.unwrap().get("unit"), Some("%"));
        assert_eq!(m.payload, b"40");
        assert_eq!(m.status, None);
        assert_eq!(s.stats().messages_received, 2);
    }

    #[test]
    fn malformed_headers_from_a_publisher_do_not_kill_the_connection() {
        let mut s = connected();
        s.subscribe("a", None).unwrap();
        let (_, event) = s
            .handle_input(b"HMSG a 1 7 9\r\nBROKEN!hi\r\n", T0)
            .unwrap();
        let Some(Event::Message(m)) = event else {
            panic!("{event:?}")
        };
        assert_eq!((m.headers, m.payload), (None, &b"hi"[..]));
        assert_eq!(s.stats().malformed_headers, 1);
        assert_eq!(s.state(), State::Connected);
    }

    #[test]
    fn verbose_ok_and_non_fatal_errors_are_events() {
        let mut s = connected();
        let events = feed(
            &mut s,
            b"+OK\r\n-ERR 'Permissions Violation for Publish to \"secret\"'\r\n-ERR 'Invalid Subject'\r\n",
            T0,
        )
        .unwrap();
        assert_eq!(
            events,
            [
                "Ok",
                "ServerError { kind: PermissionsViolation, message: \"Permissions Violation for Publish to \\\"secret\\\"\" }",
                "ServerError { kind: InvalidSubject, message: \"Invalid Subject\" }"
            ]
        );
        assert_eq!(s.state(), State::Connected);
    }

    #[test]
    fn fatal_server_errors_are_typed_and_close() {
        let mut s = TestSession::new(options(), [0; 1024]);
        feed(&mut s, INFO, T0).unwrap();
        let err = s
            .handle_input(b"-ERR 'Authorization Violation'\r\n", T0)
            .unwrap_err();
        assert_eq!(err, Error::AuthorizationViolation);
        assert!(err.is_fatal());
        assert_eq!(s.state(), State::Closed);
        assert_eq!(s.handle_input(b"PING\r\n", T0).unwrap(), (0, None));

        for (text, kind) in [
            (
                "Maximum Payload Violation",
                ServerErrorKind::MaximumPayloadViolation,
            ),
            ("Stale Connection", ServerErrorKind::StaleConnection),
            ("Slow Consumer", ServerErrorKind::SlowConsumer),
            (
                "Unknown Protocol Operation",
                ServerErrorKind::UnknownProtocolOperation,
            ),
            ("something new", ServerErrorKind::Other),
        ] {
            let mut s = connected();
            let line = format!("-ERR '{text}'\r\n");
            match s.handle_input(line.as_bytes(), T0) {
                Err(Error::Server { kind: k, message }) => {
                    assert_eq!(k, kind);
                    assert_eq!(message.as_str(), text);
                }
                other => panic!("{text}: {other:?}"),
            }
            assert_eq!(s.state(), State::Closed);
        }
    }

    #[test]
    fn first_operation_must_be_info() {
        let mut s = TestSession::new(options(), [0; 1024]);
        let err = s.handle_input(b"MSG a 1 0\r\n\r\n", T0).unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ref p) if p.expected.contains("INFO")),
            "{err}"
        );
        let mut s = TestSession::new(options(), [0; 1024]);
        assert!(matches!(
            s.handle_input(b"-ERR 'maximum connections exceeded'\r\n", T0),
            Err(Error::Server {
                kind: ServerErrorKind::MaximumConnectionsExceeded,
                ..
            })
        ));
        let mut s = TestSession::new(options(), [0; 1024]);
        let err = s
            .handle_input(b"HTTP/1.1 400 Bad Request\r\n", T0)
            .unwrap_err();
        assert!(matches!(err, Error::Protocol(_)));
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn frame_too_large_is_reported_before_the_payload() {
        let mut o = options();
        o.rx_capacity = 64;
        let mut s = TestSession::new(o, [0; 1024]);
        feed(&mut s, b"INFO {\"max_payload\":32}\r\n", T0).unwrap();
        take(&mut s);
        feed(&mut s, b"PONG\r\n", T0).unwrap();
        s.subscribe("a", None).unwrap();
        let err = s.handle_input(b"MSG a 1 100\r\n", T0).unwrap_err();
        assert_eq!(
            err,
            Error::FrameTooLarge {
                needed: 13 + 100 + 2,
                capacity: 64
            }
        );
        assert!(format!("{err}").contains("receive buffer holds 64"));
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn max_payload_larger_than_receive_buffer_is_reported_at_connect() {
        let mut o = options();
        o.rx_capacity = 65536;
        let mut s = TestSession::new(o, [0; 1024]);
        feed(&mut s, INFO, T0).unwrap();
        take(&mut s);
        let (_, event) = s.handle_input(b"PONG\r\n", T0).unwrap();
        let warning = MaxPayloadWarning {
            max_payload: 1_048_576,
            rx_capacity: 65536,
        };
        assert_eq!(
            event,
            Some(Event::Connected {
                reconnect: false,
                max_payload_warning: Some(warning)
            })
        );
        assert_eq!(
            s.check_buffers(),
            Err(Error::BufferSmallerThanMaxPayload {
                max_payload: 1_048_576,
                capacity: 65536
            })
        );
    }

    #[test]
    fn publish_checks_limits_before_writing() {
        let mut s = TestSession::new(options(), [0; 1024]);
        feed(
            &mut s,
            b"INFO {\"max_payload\":8,\"headers\":false}\r\n",
            T0,
        )
        .unwrap();
        take(&mut s);
        feed(&mut s, b"PONG\r\n", T0).unwrap();
        assert_eq!(
            s.publish("a", None, None, b"123456789"),
            Err(Error::PayloadTooLarge {
                size: 9,
                max_payload: 8
            })
        );
        assert_eq!(
            s.publish("a", None, Some(b"NATS/1.0\r\n\r\n"), b""),
            Err(Error::HeadersNotSupported)
        );
        assert_eq!(
            s.publish("a.*", None, None, b""),
            Err(Error::InvalidSubject(SubjectError::WildcardInPublish))
        );
        assert_eq!(s.transmit(), b"");
        s.publish("a", None, None, b"12345678").unwrap();
        assert_eq!(take(&mut s), "PUB a 8\r\n12345678\r\n");
    }

    #[test]
    fn full_transmit_buffer_is_typed_and_writes_nothing() {
        let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
        feed_small(&mut s, INFO);
        let n = s.transmit().len();
        s.transmitted(n);
        feed_small(&mut s, b"PONG\r\n");
        s.publish("a", None, None, &[b'x'; 200]).unwrap();
        let before = s.transmit().len();
        assert_eq!(
            s.publish("a", None, None, &[b'y'; 100]),
            Err(Error::BufferFull(CapacityError {
                needed: 213 + 113,
                capacity: 256
            }))
        );
        let long = "b".repeat(50);
        assert_eq!(
            s.subscribe(&long, None),
            Err(Error::BufferFull(CapacityError {
                needed: 213 + 58,
                capacity: 256
            }))
        );
        assert_eq!(s.subscriptions().count(), 0);
        assert_eq!(s.transmit().len(), before);
        assert!(
            format!("{}", s.publish("a", None, None, &[0; 300]).unwrap_err())
                .contains("bigger transmit buffer")
        );
    }

    fn feed_small(s: &mut Session<[u8; 256], 4, 2>, bytes: &[u8]) {
        let (used, _) = s.handle_input(bytes, T0).unwrap();
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn auto_unsubscribe_delivers_exactly_n() {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        s.unsubscribe_after(sid, 3).unwrap();
        assert_eq!(take(&mut s), "SUB a 1\r\nUNSUB 1 3\r\n");
        let mut input = StdVec::new();
        for i in 0..5 {
            input.extend_from_slice(format!("MSG a 1 1\r\n{i}\r\n").as_bytes());
        }
        let events = feed(&mut s, &input, T0).unwrap();
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(events[..3].iter().all(|e| e.starts_with("Message")));
        assert_eq!(events[3], "SubscriptionDone { sid: Sid(1) }");
        assert_eq!(s.stats().dropped_unknown_sid, 2);
        assert_eq!(s.unsubscribe(sid), Err(Error::UnknownSubscription(sid)));
    }

    #[test]
    fn unsubscribe_writes_unsub_and_drops_later_messages() {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        s.unsubscribe(sid).unwrap();
        assert_eq!(take(&mut s), "SUB a 1\r\nUNSUB 1\r\n");
        assert_eq!(feed(&mut s, b"MSG a 1 0\r\n\r\n", T0).unwrap().len(), 0);
        assert_eq!(s.stats().dropped_unknown_sid, 1);
        // Sids are never reused.
        assert_eq!(s.subscribe("a", None).unwrap(), Sid(2));
    }

    #[test]
    fn draining_delivers_until_its_pong_then_ends() {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        let flush = s.ping().unwrap();
        take(&mut s);
        s.unsubscribe_draining(sid).unwrap();
        assert_eq!(take(&mut s), "UNSUB 1\r\nPING\r\n");
        assert!(s.is_draining(sid));
        // Again: nothing more is written.
        s.unsubscribe_draining(sid).unwrap();
        assert_eq!(s.transmit(), b"");
        // Routed by the server before it processed the UNSUB: delivered,
        // also across the PONG of an earlier PING.
        let events = feed(&mut s, b"MSG a 1 1\r\n1\r\nPONG\r\nMSG a 1 1\r\n2\r\n", T0).unwrap();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events[0].starts_with("Message") && events[2].starts_with("Message"));
        assert_eq!(events[1], format!("{:?}", Event::Pong { ping: flush }));
        assert!(s.is_draining(sid));
        assert_eq!(s.stats().messages_received, 2);
        // The PONG to the drain's PING ends it; later strays are dropped.
        let events = feed(&mut s, b"PONG\r\nMSG a 1 1\r\n3\r\n", T0).unwrap();
        assert_eq!(
            events,
            [
                format!(
                    "{:?}",
                    Event::Pong {
                        ping: PingId(flush.0 + 1)
                    }
                ),
                format!("{:?}", Event::SubscriptionDone { sid }),
            ]
        );
        assert_eq!(s.stats().dropped_unknown_sid, 1);
        assert_eq!(s.stats().messages_received, 2);
        assert!(!s.is_draining(sid));
        assert_eq!(s.subscriptions().count(), 0);
        assert_eq!(
            s.unsubscribe_draining(sid),
            Err(Error::UnknownSubscription(sid))
        );
    }

    #[test]
    fn draining_split_anywhere_gives_the_same_events() {
        let stream = b"MSG a 1 1\r\n1\r\nPING\r\nMSG a 1 2\r\n22\r\nPONG\r\nMSG a 1 1\r\n3\r\n";
        let run = |chunk: usize| {
            let mut s = connected();
            let sid = s.subscribe("a", None).unwrap();
            s.unsubscribe_draining(sid).unwrap();
            take(&mut s);
            let mut log = StdVec::new();
            let mut rx: StdVec<u8> = StdVec::new();
            for part in stream.chunks(chunk) {
                rx.extend_from_slice(part);
                loop {
                    let (used, event) = s.handle_input(&rx, T0).unwrap();
                    let had_event = event.is_some();
                    if let Some(e) = event {
                        log.push(format!("{e:?}"));
                    }
                    rx.drain(..used);
                    if used == 0 && !had_event {
                        break;
                    }
                }
            }
            log.push(take(&mut s));
            log.push(format!("{}", s.stats().dropped_unknown_sid));
            log
        };
        let whole = run(stream.len());
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert!(whole[3].starts_with("SubscriptionDone"), "{whole:?}");
        assert_eq!(whole[4], "PONG\r\n");
        assert_eq!(whole[5], "1");
        for chunk in 1..stream.len() {
            assert_eq!(run(chunk), whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_reset_ends_drains_and_poll_timeout_says_so() {
        let mut s = connected();
        let a = s.subscribe("a", None).unwrap();
        let b = s.subscribe("b", None).unwrap();
        s.unsubscribe_draining(a).unwrap();
        take(&mut s);
        let report = s.reset(T0);
        assert_eq!(report.discarded_publishes, 0);
        // Due at once, without more input.
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(0)));
        assert_eq!(
            s.handle_timeout(T0),
            Ok(Some(Event::SubscriptionDone { sid: a }))
        );
        assert_eq!(s.poll_timeout(), None);
        feed(&mut s, INFO, T0).unwrap();
        take(&mut s);
        feed(&mut s, b"PONG\r\n", T0).unwrap();
        assert_eq!(take(&mut s), format!("SUB b {}\r\n", b.0));
        // Not connected: the server will not know it, so it ends at once.
        s.reset(T0);
        s.unsubscribe_draining(b).unwrap();
        assert_eq!(
            s.handle_timeout(T0),
            Ok(Some(Event::SubscriptionDone { sid: b }))
        );
        assert_eq!(s.subscriptions().count(), 0);
    }

    #[test]
    fn draining_needs_room_for_unsub_and_ping_together() {
        let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
        feed_small(&mut s, INFO);
        let n = s.transmit().len();
        s.transmitted(n);
        feed_small(&mut s, b"PONG\r\n");
        let sid = s.subscribe("a", None).unwrap();
        let n = s.transmit().len();
        s.transmitted(n);
        // 256 - 234 = 22 free: UNSUB 1 (9) + PING (6) fit, a 240-byte queue does not.
        s.publish("x", None, None, &[b'x'; 230]).unwrap();
        assert_eq!(
            s.unsubscribe_draining(sid),
            Err(Error::BufferFull(CapacityError {
                needed: 243 + 15,
                capacity: 256
            }))
        );
        assert!(!s.is_draining(sid));
        let n = s.transmit().len();
        s.transmitted(n);
        s.unsubscribe_draining(sid).unwrap();
        assert_eq!(s.transmit(), b"UNSUB 1\r\nPING\r\n");
    }

    #[test]
    fn auto_unsubscribe_done_makes_poll_timeout_due() {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        s.unsubscribe_after(sid, 1).unwrap();
        let (_, event) = s.handle_input(b"MSG a 1 0\r\n\r\n", T0).unwrap();
        assert!(matches!(event, Some(Event::Message(_))));
        assert!(s.poll_timeout().is_some_and(|at| at <= T0));
        assert_eq!(
            s.handle_timeout(T0),
            Ok(Some(Event::SubscriptionDone { sid }))
        );
        assert_eq!(s.poll_timeout(), Some(T0 + DEFAULT_PING_INTERVAL));
    }

    #[test]
    fn transmit_buffer_too_small_for_connect_is_fatal_at_info() {
        let o = options();
        let needed = required_tx_capacity(&o).unwrap();
        let mut small: Session<[u8; 128], 4, 2> = Session::new(o.clone(), [0; 128]);
        let err = small.handle_input(INFO, T0).unwrap_err();
        assert_eq!(
            err,
            Error::TransmitBufferTooSmall {
                needed,
                capacity: 128
            }
        );
        assert!(err.is_fatal());
        assert!(format!("{err}").contains(&format!("at least {needed} bytes")));
        assert_eq!(small.state(), State::Closed);
        assert_eq!(small.transmit(), b"");
        // Exactly enough is enough.
        let mut exact = Session::<StdVec<u8>, 4, 2>::new(o, std::vec![0; needed]);
        let (used, _) = exact.handle_input(INFO, T0).unwrap();
        assert_eq!(used, INFO.len());
        assert_eq!(exact.transmit().len(), needed);
        assert!(exact.transmit().ends_with(b"}\r\nPING\r\n"));
    }

    #[test]
    fn lame_duck_info_is_its_own_event() {
        let mut s = connected();
        let events = feed(
            &mut s,
            b"INFO {\"server_id\":\"S\",\"connect_urls\":[\"10.0.0.2:4222\"]}\r\nINFO {\"server_id\":\"S\",\"ldm\":true}\r\n",
            T0,
        )
        .unwrap();
        assert_eq!(events, ["InfoUpdated", "LameDuckMode"]);
        assert!(s.server_info().unwrap().ldm);
        assert_eq!(s.state(), State::Connected);
    }

    #[test]
    fn reset_counts_discarded_publishes() {
        let o = options();
        let handshake = required_tx_capacity(&o).unwrap() + HANDSHAKE_SLACK;
        let mut s: Session<[u8; 512], 4, 2> = Session::new(o, [0; 512]);
        s.handle_input(INFO, T0).unwrap();
        let n = s.transmit().len();
        s.transmitted(n);
        s.handle_input(b"PONG\r\n", T0).unwrap();
        for _ in 0..4 {
            s.publish("a", None, None, &[b'x'; 100]).unwrap();
        }
        // Half of the first publish went out (lost with the transport); of
        // the other three only as many as leave room for the next
        // handshake are kept, oldest first.
        s.transmitted(10);
        let keep_limit = 512 - handshake;
        assert_eq!(
            keep_limit / 113,
            2,
            "CONNECT length changed: adjust the test"
        );
        let report = s.reset(T0);
        assert_eq!(
            report,
            ResetReport {
                discarded_bytes: 4 * 113 - 10 - 2 * 113,
                discarded_publishes: 2,
                kept_publishes: 2,
            }
        );
        assert_eq!(s.held_publishes(), 2);
        assert_eq!(s.stats().publishes_discarded_on_reset, 2);
        assert_eq!(s.stats().discarded_on_reset, report.discarded_bytes as u64);
    }

    #[test]
    fn request_reply_no_responders_timeout_and_late_reply() {
        let mut s = connected();
        let timeout = Duration::from_secs(5);
        let r1 = s.request("svc.echo", None, b"hi", T0, timeout).unwrap();
        assert_eq!(
            take(&mut s),
            "SUB _INBOX.t.* 1\r\nPUB svc.echo _INBOX.t.1 2\r\nhi\r\n"
        );
        let r2 = s.request("svc.none", None, b"", T0, timeout).unwrap();
        assert_eq!(take(&mut s), "PUB svc.none _INBOX.t.2 0\r\n\r\n");
        assert_eq!(
            s.request("svc.x", None, b"", T0, timeout),
            Err(Error::RequestTableFull { capacity: 2 })
        );
        let (_, event) = s
            .handle_input(b"MSG _INBOX.t.1 1 5\r\nHI!!!\r\n", T0)
            .unwrap();
        let Some(Event::Reply { request, message }) = event else {
            panic!("{event:?}")
        };
        assert_eq!((request, message.payload), (r1, &b"HI!!!"[..]));
        let events = feed(
            &mut s,
            b"HMSG _INBOX.t.2 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
            T0,
        )
        .unwrap();
        assert_eq!(
            events,
            [format!("{:?}", Event::NoResponders { request: r2 })]
        );

        let r3 = s.request("svc.slow", None, b"", T0, timeout).unwrap();
        take(&mut s);
        assert_eq!(s.poll_timeout(), Some(T0 + timeout));
        assert_eq!(
            s.handle_timeout(T0 + Duration::from_millis(4_999)),
            Ok(None)
        );
        assert_eq!(
            s.handle_timeout(T0 + timeout),
            Ok(Some(Event::RequestTimedOut { request: r3 }))
        );
        assert_eq!(s.handle_timeout(T0 + timeout), Ok(None));
        assert_eq!(
            feed(&mut s, b"MSG _INBOX.t.3 1 0\r\n\r\n", T0)
                .unwrap()
                .len(),
            0
        );
        assert_eq!(s.stats().late_replies, 1);
        assert_eq!(s.pending_requests(), 0);
    }

    #[test]
    fn request_needs_an_inbox_prefix() {
        let mut o = options();
        o.inbox_prefix.clear();
        let mut s = TestSession::new(o, [0; 1024]);
        assert_eq!(
            s.request("a", None, b"", T0, Duration::from_secs(1)),
            Err(Error::InboxNotConfigured)
        );
    }

    #[test]
    fn keepalive_pings_and_stale_connection() {
        let mut s = connected();
        let interval = DEFAULT_PING_INTERVAL;
        assert_eq!(s.handle_timeout(T0), Ok(None));
        assert_eq!(s.transmit(), b"");
        let t1 = T0 + interval;
        assert_eq!(s.handle_timeout(t1), Ok(None));
        assert_eq!(take(&mut s), "PING\r\n");
        // Answered: the count restarts.
        let events = feed(&mut s, b"PONG\r\n", t1).unwrap();
        assert_eq!(events, ["Pong { ping: PingId(2) }"]);
        let t2 = t1 + interval;
        s.handle_timeout(t2).unwrap();
        let t3 = t2 + interval;
        s.handle_timeout(t3).unwrap();
        assert_eq!(take(&mut s), "PING\r\nPING\r\n");
        assert_eq!(
            s.handle_timeout(t3 + interval),
            Err(Error::StaleConnection {
                pings_outstanding: 2
            })
        );
        assert_eq!(s.state(), State::Closed);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn user_ping_is_answered_in_order() {
        let mut s = connected();
        let p1 = s.ping().unwrap();
        let p2 = s.ping().unwrap();
        assert!(p2 > p1);
        assert_eq!(take(&mut s), "PING\r\nPING\r\n");
        let (_, e) = s.handle_input(b"PONG\r\n", T0).unwrap();
        assert_eq!(e, Some(Event::Pong { ping: p1 }));
        let (_, e) = s.handle_input(b"PONG\r\n", T0).unwrap();
        assert_eq!(e, Some(Event::Pong { ping: p2 }));
        let mut fresh = TestSession::new(options(), [0; 1024]);
        assert_eq!(fresh.ping(), Err(Error::NotConnected));
    }

    #[test]
    fn reconnect_resubscribes_then_releases_held_publishes() {
        let mut s = connected();
        let a = s.subscribe("a.*", None).unwrap();
        let b = s.subscribe("b", Some("q")).unwrap();
        s.unsubscribe_after(b, 10).unwrap();
        take(&mut s);
        feed(&mut s, b"MSG b 2 0\r\n\r\n", T0).unwrap();
        // Queued but never written when the transport dies.
        s.publish("x", None, None, b"kept").unwrap();
        s.ping().unwrap();
        assert_eq!(
            s.reset(T0),
            ResetReport {
                discarded_bytes: 6,
                discarded_publishes: 0,
                kept_publishes: 1
            }
        );
        assert_eq!(s.held_publishes(), 1);
        assert_eq!(s.state(), State::AwaitingInfo);
        s.publish("y", None, None, b"later").unwrap();
        let c = s.subscribe("c", None).unwrap();
        assert_eq!(s.transmit(), b"", "nothing goes out before the handshake");
        assert_eq!(s.held_bytes(), 15 + 16);

        feed(&mut s, INFO, T0).unwrap();
        let handshake = take(&mut s);
        assert!(
            handshake.starts_with("CONNECT {") && handshake.ends_with("}\r\nPING\r\n"),
            "{handshake}"
        );
        s.publish("z", None, None, b"").unwrap();
        assert_eq!(s.transmit(), b"");
        let (_, event) = s.handle_input(b"PONG\r\n", T0).unwrap();
        assert_eq!(
            event,
            Some(Event::Connected {
                reconnect: true,
                max_payload_warning: None
            })
        );
        assert_eq!(
            take(&mut s),
            format!(
                "SUB a.* {}\r\nSUB b q {}\r\nUNSUB {} 9\r\nSUB c {}\r\nPUB x 4\r\nkept\r\nPUB y 5\r\nlater\r\nPUB z 0\r\n\r\n",
                a.0, b.0, b.0, c.0
            )
        );
    }

    #[test]
    fn subscriptions_made_before_connecting_are_sent_in_the_handshake() {
        let mut s = TestSession::new(options(), [0; 1024]);
        s.subscribe("early", None).unwrap();
        s.publish("early", None, None, b"1").unwrap();
        feed(&mut s, INFO, T0).unwrap();
        take(&mut s);
        feed(&mut s, b"PONG\r\n", T0).unwrap();
        assert_eq!(take(&mut s), "SUB early 1\r\nPUB early 1\r\n1\r\n");
    }

    #[test]
    fn held_publishes_leave_room_for_the_handshake() {
        let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
        let mut queued = 0;
        while s.publish("a", None, None, b"0123456789").is_ok() {
            queued += 1;
        }
        assert!(queued > 0);
        let (used, _) = s.handle_input(INFO, T0).unwrap();
        assert_eq!(used, INFO.len());
        assert!(s.transmit().starts_with(b"CONNECT"));
    }

    #[test]
    fn headers_round_trip_through_publish() {
        let mut s = connected();
        let mut h = HeaderWriter::new([0u8; 64]).unwrap();
        h.insert("Unit", "C").unwrap();
        s.publish("a", Some("r"), Some(h.as_bytes()), b"21")
            .unwrap();
        assert_eq!(
            take(&mut s),
            "HPUB a r 21 23\r\nNATS/1.0\r\nUnit: C\r\n\r\n21\r\n"
        );
    }

    #[test]
    fn header_only_publish_for_vectored_writes() {
        let mut s = connected();
        let trailer = s.publish_header_only("big", None, None, 5).unwrap();
        assert_eq!(trailer, b"\r\n");
        // A server PING arriving meanwhile waits behind the payload.
        feed(&mut s, b"PING\r\n", T0).unwrap();
        assert_eq!(s.transmit(), b"PUB big 5\r\n");
        assert!(matches!(
            s.publish_header_only("big", None, None, 5),
            Err(Error::BufferFull(_))
        ));
        s.transmitted(11);
        assert_eq!(take(&mut s), "PONG\r\n");
    }

    #[test]
    fn split_reads_give_the_same_events() {
        let mut stream = StdVec::from(INFO);
        stream.extend_from_slice(b"PONG\r\nMSG a 1 5\r\nhello\r\nPING\r\nHMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n");
        let reference = run_split(&stream, &[stream.len()]);
        assert_eq!(reference.len(), 5, "{reference:?}");
        for size in 1..stream.len() {
            assert_eq!(run_split(&stream, &[size]), reference, "chunks of {size}");
        }
    }

    /// Drives a session over `stream` delivered in chunks, like a driver
    /// with a receive buffer, and returns the events and written bytes.
    fn run_split(stream: &[u8], chunks: &[usize]) -> StdVec<StdString> {
        let mut s = TestSession::new(options(), [0; 1024]);
        s.subscribe("a", None).unwrap();
        let mut rx: StdVec<u8> = StdVec::new();
        let mut log = StdVec::new();
        let mut fed = 0;
        let mut sizes = chunks.iter().copied().cycle();
        while fed < stream.len() {
            let n = sizes.next().unwrap_or(1).max(1).min(stream.len() - fed);
            rx.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            loop {
                let (used, event) = s.handle_input(&rx, T0).unwrap();
                let had_event = event.is_some();
                if let Some(e) = event {
                    log.push(format!("{e:?}"));
                }
                rx.drain(..used);
                if used == 0 && !had_event {
                    break;
                }
            }
        }
        log.push(take(&mut s));
        log
    }

    proptest! {
        #[test]
        fn split_anywhere_same_events(chunks in proptest::collection::vec(1usize..30, 1..12)) {
            let mut stream = StdVec::from(INFO);
            stream.extend_from_slice(b"PONG\r\nMSG a 1 5\r\nhello\r\nPING\r\nHMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Permissions Violation for Subscription to \"x\"'\r\n");
            prop_assert_eq!(run_split(&stream, &chunks), run_split(&stream, &[stream.len()]));
        }

        #[test]
        fn auto_unsubscribe_delivers_exactly_min_of_max_and_sent(max in 1u64..30, sent in 0u64..40) {
            let mut s = connected();
            let sid = s.subscribe("a", None).unwrap();
            s.unsubscribe_after(sid, max).unwrap();
            let mut input = StdVec::new();
            for _ in 0..sent {
                input.extend_from_slice(b"MSG a 1 0\r\n\r\n");
            }
            let events = feed(&mut s, &input, T0).unwrap();
            let delivered = events.iter().filter(|e| e.starts_with("Message")).count() as u64;
            prop_assert_eq!(delivered, max.min(sent));
            let done = events.iter().filter(|e| e.starts_with("SubscriptionDone")).count();
            prop_assert_eq!(done, usize::from(sent >= max));
            prop_assert_eq!(s.stats().dropped_unknown_sid, sent.saturating_sub(max));
        }

        #[test]
        fn replies_in_any_order_find_their_requests(order in Just([0usize, 1]).prop_shuffle()) {
            let mut s = connected();
            let ids: StdVec<RequestId> = (0..2)
                .map(|i| s.request("svc", None, format!("{i}").as_bytes(), T0, Duration::from_secs(1)).unwrap())
                .collect();
            for i in order {
                let line = format!("MSG _INBOX.t.{} 1 1\r\n{i}\r\n", ids[i].0);
                let (_, event) = s.handle_input(line.as_bytes(), T0).unwrap();
                let Some(Event::Reply { request, message }) = event else { panic!("{event:?}") };
                prop_assert_eq!(request, ids[i]);
                let expected = format!("{i}");
                prop_assert_eq!(message.payload, expected.as_bytes());
            }
            prop_assert_eq!(s.pending_requests(), 0);
        }

        #[test]
        fn arbitrary_input_never_panics(
            prefix in proptest::bool::ANY,
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut o = options();
            o.rx_capacity = 128;
            let mut s = TestSession::new(o, [0; 1024]);
            let mut input = StdVec::new();
            if prefix {
                input.extend_from_slice(b"INFO {}\r\nPONG\r\n");
            }
            input.extend_from_slice(&bytes);
            let mut rest = &input[..];
            for _ in 0..64 {
                match s.handle_input(rest, T0) {
                    Ok((0, None)) | Err(_) => break,
                    Ok((used, _)) => rest = &rest[used..],
                }
            }
            let _ = s.handle_timeout(T0 + Duration::from_secs(1000));
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::nats::info::EssentialInfo;

    #[test]
    fn publish_only_session_compiles_with_zero_tables() {
        let o = ConnectOptions {
            rx_capacity: 512,
            ..ConnectOptions::default()
        };
        let mut s: Session<[u8; 256], 0, 0> = Session::new(o, [0; 256]);
        assert_eq!(
            s.subscribe("a", None),
            Err(Error::SubscriptionTableFull { capacity: 0 })
        );
        std::println!(
            "Session<[u8; 256], 0, 0> is {} bytes (ConnectOptions {}, ServerInfo {}); \
             Session<[u8; 256], 0, 0, EssentialInfo> is {} bytes (EssentialInfo {})",
            core::mem::size_of::<Session<[u8; 256], 0, 0>>(),
            core::mem::size_of::<ConnectOptions>(),
            core::mem::size_of::<ServerInfo>(),
            core::mem::size_of::<Session<[u8; 256], 0, 0, EssentialInfo>>(),
            core::mem::size_of::<EssentialInfo>(),
        );
    }

    /// The state a publish-only device carries besides its buffers. Before
    /// the shrink it was 2616 bytes (ConnectOptions 992 with three 256-byte
    /// credential strings, ServerInfo 1136); the bounds below keep it from
    /// growing back unnoticed.
    #[test]
    fn publish_only_state_stays_small() {
        type Lean = Session<[u8; 256], 0, 0, EssentialInfo>;
        let state = core::mem::size_of::<Lean>() - 256;
        assert!(
            core::mem::size_of::<ConnectOptions>() <= 480,
            "ConnectOptions grew"
        );
        assert!(state <= 750, "publish-only session state is {state} bytes");
        // And it works: handshake, publish, an INFO update.
        let o = ConnectOptions {
            rx_capacity: 512,
            ..ConnectOptions::default()
        };
        let mut s: Lean = Session::new(o, [0; 256]);
        s.handle_input(
            b"INFO {\"server_id\":\"S\",\"max_payload\":4,\"headers\":false}\r\n",
            Instant::from_millis(0),
        )
        .unwrap();
        let n = s.transmit().len();
        s.transmitted(n);
        s.handle_input(b"PONG\r\n", Instant::from_millis(0))
            .unwrap();
        assert_eq!(s.state(), State::Connected);
        assert_eq!(
            s.publish("a", None, None, b"12345"),
            Err(Error::PayloadTooLarge {
                size: 5,
                max_payload: 4
            })
        );
        assert_eq!(
            s.publish("a", None, Some(b"NATS/1.0\r\n\r\n"), b""),
            Err(Error::HeadersNotSupported)
        );
        s.publish("a", None, None, b"1234").unwrap();
        assert_eq!(s.transmit(), b"PUB a 4\r\n1234\r\n");
        let (_, event) = s
            .handle_input(b"INFO {\"ldm\":true}\r\n", Instant::from_millis(0))
            .unwrap();
        assert_eq!(event, Some(Event::LameDuckMode));
        assert!(s.server_info().unwrap().ldm);
    }
}
