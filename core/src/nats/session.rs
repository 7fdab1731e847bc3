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

use heapless::String;

use super::error::{Error, ServerErrorKind};
use super::headers::Headers;
use super::info::ServerInfo;
use super::subscriptions::{Sid, Subscription, SubscriptionTable};
use crate::time::{Duration, Instant};

/// Capacity of the client name sent in CONNECT.
pub const NAME_CAPACITY: usize = 64;
/// Capacity of user, password and token.
pub const CREDENTIAL_CAPACITY: usize = 256;
/// Capacity of the inbox prefix (`_INBOX.<unique>`).
pub const INBOX_PREFIX_CAPACITY: usize = 64;
/// Default interval between client keepalive PINGs (as nats.go).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default number of unanswered PINGs before the connection is stale.
pub const DEFAULT_MAX_PINGS_OUT: u32 = 2;

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
    /// User for user/password auth.
    pub user: Option<String<CREDENTIAL_CAPACITY>>,
    /// Password for user/password auth.
    pub pass: Option<String<CREDENTIAL_CAPACITY>>,
    /// Token for token auth.
    pub auth_token: Option<String<CREDENTIAL_CAPACITY>>,
    /// Unique inbox prefix, e.g. `_INBOX.<random>`; requests subscribe to
    /// `<prefix>.*`. The core has no RNG, so the driver supplies it; empty
    /// means requests fail with [`Error::InboxNotConfigured`].
    pub inbox_prefix: String<INBOX_PREFIX_CAPACITY>,
    /// Interval between keepalive PINGs.
    pub ping_interval: Duration,
    /// Unanswered PINGs after which the connection is stale.
    pub max_pings_out: u32,
    /// Capacity of the driver's receive buffer: the largest frame the
    /// session can receive (compared with the server's max_payload).
    pub rx_capacity: usize,
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
            user: None,
            pass: None,
            auth_token: None,
            inbox_prefix: String::new(),
            ping_interval: DEFAULT_PING_INTERVAL,
            max_pings_out: DEFAULT_MAX_PINGS_OUT,
            rx_capacity: 0,
        }
    }
}

/// Identifies an outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies a PING; PONGs answer PINGs in order, so `Pong { ping }`
/// also answers every earlier ping of the same connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PingId(pub u64);

/// Where the session is in the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The server's max_payload exceeds what the receive buffer can hold:
/// messages that large would fail with [`Error::FrameTooLarge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPayloadWarning {
    /// The server's limit.
    pub max_payload: u64,
    /// The receive buffer capacity from the options.
    pub rx_capacity: usize,
}

/// A received message; every slice borrows the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The server sent a new INFO (cluster change, lame duck mode...).
    InfoUpdated,
    /// An auto-unsubscribe reached its count: the subscription ended.
    SubscriptionDone {
        /// Which subscription.
        sid: Sid,
    },
}

/// Counters the session keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages dropped because no live subscription had their sid.
    pub dropped_unknown_sid: u64,
    /// Replies that arrived after their request timed out (dropped).
    pub late_replies: u64,
    /// Bytes of queued commands discarded by [`Session::reset`].
    pub discarded_on_reset: u64,
}

/// The NATS client state machine.
///
/// `S` is the transmit buffer storage (`[u8; N]`, `&mut [u8]`, `Box<[u8]>`),
/// `SUBS` the number of subscriptions it can hold (the request inbox uses
/// one slot), `REQS` the number of outstanding requests.
pub struct Session<S, const SUBS: usize, const REQS: usize> {
    options: ConnectOptions,
    #[allow(dead_code)] // skeleton: used once the bodies land
    tx: S,
    subs: SubscriptionTable<SUBS>,
    info: Option<ServerInfo>,
    state: State,
    stats: Stats,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, const SUBS: usize, const REQS: usize> Session<S, SUBS, REQS> {
    /// A session waiting for the server's INFO; `tx` is the transmit buffer.
    pub fn new(options: ConnectOptions, tx: S) -> Self {
        Session {
            options,
            tx,
            subs: SubscriptionTable::new(),
            info: None,
            state: State::AwaitingInfo,
            stats: Stats::default(),
        }
    }

    /// Parses at most one server operation from `input` (the unconsumed
    /// received bytes). Returns how many bytes it used and the event, if
    /// any. `(0, None)` means more bytes are needed. Consume the bytes from
    /// the receive buffer after handling the event (it borrows them).
    pub fn handle_input<'a>(
        &mut self,
        input: &'a [u8],
        now: Instant,
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        let _ = (input, now);
        todo!()
    }

    /// Bytes to write to the transport now.
    pub fn transmit(&self) -> &[u8] {
        todo!()
    }

    /// Records that the transport wrote `n` bytes of [`Session::transmit`].
    pub fn transmitted(&mut self, n: usize) {
        let _ = n;
        todo!()
    }

    /// When [`Session::handle_timeout`] must be called next (keepalive PING
    /// or a request deadline), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Sends keepalive PINGs, detects a stale connection and times out
    /// requests. Returns at most one event per call: call until `Ok(None)`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Event<'static>>, Error> {
        let _ = now;
        todo!()
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last INFO the server sent, if any.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.info.as_ref()
    }

    /// The options (the next CONNECT uses them).
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Changes the options, e.g. credentials for the next server; they take
    /// effect at the next handshake.
    pub fn options_mut(&mut self) -> &mut ConnectOptions {
        &mut self.options
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live subscriptions (the request inbox included).
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subs.iter()
    }

    /// [`Error::BufferSmallerThanMaxPayload`] when the server's max_payload
    /// (known after INFO) exceeds the receive buffer capacity.
    pub fn check_buffers(&self) -> Result<(), Error> {
        todo!()
    }

    /// Publishes `payload` to `subject` (HPUB when `headers` is given: a
    /// complete NATS/1.0 block such as `HeaderWriter::as_bytes()`).
    /// Validated first; written whole or not at all. Queued behind the
    /// handshake when not connected.
    pub fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), Error> {
        let _ = (subject, reply, headers, payload);
        todo!()
    }

    /// Zero-copy publish: appends only the `PUB`/`HPUB` control line (and
    /// headers) for a payload of `payload_len` bytes and returns the trailer
    /// (`\r\n`). The driver must write all of [`Session::transmit`], then
    /// the payload, then the trailer, before calling anything else that
    /// writes. Needs state `Connected`.
    pub fn publish_header_only(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload_len: usize,
    ) -> Result<&'static [u8], Error> {
        let _ = (subject, reply, headers, payload_len);
        todo!()
    }

    /// Subscribes (with a queue group when `queue` is given).
    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> Result<Sid, Error> {
        let _ = (subject, queue);
        todo!()
    }

    /// Ends a subscription now.
    pub fn unsubscribe(&mut self, sid: Sid) -> Result<(), Error> {
        let _ = sid;
        todo!()
    }

    /// Ends a subscription after `max` messages in total; the `max`th is the
    /// last delivered, followed by [`Event::SubscriptionDone`].
    pub fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), Error> {
        let _ = (sid, max);
        todo!()
    }

    /// Publishes a request whose reply comes back as [`Event::Reply`]
    /// (or [`Event::NoResponders`], or [`Event::RequestTimedOut`] after
    /// `timeout`).
    pub fn request(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        now: Instant,
        timeout: Duration,
    ) -> Result<RequestId, Error> {
        let _ = (subject, headers, payload, now, timeout);
        todo!()
    }

    /// Stops waiting for a request (its reply will be dropped).
    pub fn cancel_request(&mut self, request: RequestId) -> bool {
        let _ = request;
        todo!()
    }

    /// Sends a PING; [`Event::Pong`] with this id (or a later one) means
    /// the server processed everything written before it (a flush).
    pub fn ping(&mut self) -> Result<PingId, Error> {
        todo!()
    }

    /// After the transport was lost: forgets bytes for the old connection
    /// (keeping whole publishes not yet written), state -> `AwaitingInfo`.
    /// Live subscriptions are re-sent after the next handshake; outstanding
    /// requests stay (they may time out). Returns the bytes discarded.
    pub fn reset(&mut self, now: Instant) -> usize {
        let _ = now;
        todo!()
    }
}
