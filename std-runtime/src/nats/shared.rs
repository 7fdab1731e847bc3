//! The state the client handles and the connection task share, split by
//! concern: the session and its bookkeeping ([`Shared`]), the servers the
//! connection goes to ([`Servers`], the connection task's), where received
//! messages, replies and PONGs go ([`Receivers`]) and the application's
//! event sinks ([`Events`]); plus the wake-ups ([`Inner::wake`]).
//!
//! Both `client.rs` and `connection.rs` build on this file; neither reaches
//! into the other.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use courier_core::nats::{self as core_nats, PingId};
use courier_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use tokio::sync::oneshot;

use super::message::Slab;
use super::options::{Callback, ConnectOptions, Event};
use super::subscriber::SharedQueue;
use super::unconfirmed::Unconfirmed;
use super::url::ServerAddr;
use super::{Error, HeaderMap, Message};
use crate::session_io::{Clock, Wakeups};

/// Subscriptions one client can hold (the request inbox takes one).
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// Requests one client can have waiting for replies at once.
pub const MAX_PENDING_REQUESTS: usize = 1024;

pub(crate) type CoreSession = core_nats::Session<
    Box<[u8]>,
    MAX_SUBSCRIPTIONS,
    MAX_PENDING_REQUESTS,
    core_nats::ServerInfo,
    super::auth::AuthOptions,
>;

/// Events kept for one [`EventStream`](super::EventStream) that is not being read.
const EVENT_STREAM_CAPACITY: usize = 1024;

/// Where the client is: [`Client::connection_state`](super::Client::connection_state)
/// derives it from the core session's state (connected or not) and the
/// runtime's own [`Lifecycle`] (draining, closed); it is never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or reconnecting (publishes go to the reconnect buffer).
    Disconnected,
    /// Handshake done; commands flow.
    Connected,
    /// Draining ([`Client::drain`](super::Client::drain)): no new subscriptions or requests;
    /// publishes are accepted until every subscription has drained (so
    /// handlers can still reply), then refused while the rest is flushed.
    Draining,
    /// Closed for good.
    Closed,
}

/// What only the runtime knows about the client's life; whether a
/// connection is up is the core session's (`State::Connected`), kept once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// In use: connected or (re)connecting, as the session says.
    Open,
    /// [`Client::drain`](super::Client::drain) began (see `publishing_closed`).
    Draining,
    /// Closed for good.
    Closed,
}

pub(crate) struct Shared {
    /// Boxed: the subscription and request tables make it ~280 KB.
    pub(crate) session: Box<CoreSession>,
    pub(crate) options: ConnectOptions,
    /// Draining or closed; connected or not is `session.state()`.
    pub(crate) lifecycle: Lifecycle,
    pub(crate) clock: Clock,
    /// Which servers the connection task goes to.
    pub(crate) servers: Servers,
    /// Where what the connection reads goes.
    pub(crate) receivers: Receivers,
    /// The application's event sinks.
    pub(crate) events: Events,
    /// Bytes of publishes queued since the connection was lost (bounded by
    /// `reconnect_buffer_size`).
    pub(crate) reconnect_buffered: usize,
    /// Set by `close`; the connection task stops.
    pub(crate) close_requested: bool,
    /// Set by `drain` once the subscriptions drained: publishes are refused.
    pub(crate) publishing_closed: bool,
    /// A large publish whose payload is written from where it lies
    /// (vectored), behind its control line at the head of the transmit
    /// buffer.
    pub(crate) vectored: Option<VectoredPublish>,
    pub(crate) statistics: Statistics,
    /// Publishes written and not yet confirmed (see `unconfirmed.rs`).
    pub(crate) unconfirmed: Unconfirmed,
}

/// The servers the connection task goes to (only it changes them).
pub(crate) struct Servers {
    /// URLs given, then servers discovered from INFO connect_urls.
    pub(crate) known: Vec<ServerAddr>,
    /// The one in use.
    pub(crate) current: Option<ServerAddr>,
    /// The server in use entered lame duck mode and another one is known:
    /// the writer ends the connection once nothing is left to write.
    pub(crate) leaving: Option<String>,
}

/// Where what the connection reads goes: subscriber queues, requests
/// waiting for replies, flushes waiting for PONGs, and the slab messages
/// are copied into.
pub(crate) struct Receivers {
    pub(crate) subs: HashMap<u64, SharedQueue>,
    pub(crate) requests: HashMap<u64, PendingRequest>,
    pub(crate) flushes: VecDeque<PendingFlush>,
    pub(crate) slab: Slab,
}

/// The application's event sinks: events not dispatched yet, event
/// streams, callbacks.
pub(crate) struct Events {
    pub(crate) pending: Vec<Event>,
    pub(crate) streams: Vec<Rc<RefCell<EventQueue>>>,
    pub(crate) callbacks: Vec<Callback>,
}

/// Message counters of one client (payload bytes, headers excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Messages delivered to subscribers and requests (dropped slow-consumer
    /// messages included: they did arrive).
    pub in_messages: u64,
    /// Their payload bytes.
    pub in_bytes: u64,
    /// Messages accepted by `publish*` (queued; see the delivery contract).
    pub out_messages: u64,
    /// Their payload bytes.
    pub out_bytes: u64,
    /// Successful reconnects.
    pub reconnects: u64,
    /// Bytes handed to sockets, all connections together (commands
    /// included).
    pub written_bytes: u64,
    /// How many of `written_bytes` a server confirmed having processed (the
    /// PONG of the latest completed flush or confirmation ping). The
    /// difference may or may not have reached a server that went away.
    pub confirmed_bytes: u64,
    /// Publishes written to a server that went away before confirming
    /// them, and not resent: each may or may not have been processed
    /// (at-most-once). Zero with [`ConnectOptions::resend_unconfirmed`].
    pub unconfirmed_publishes: u64,
    /// Publishes queued again after a disconnect
    /// ([`ConnectOptions::resend_unconfirmed`]): each may arrive twice.
    pub resent_publishes: u64,
}

/// A header-only publish waiting for the writer: `prefix_len` bytes of the
/// session's transmit buffer, then `payload`, then `trailer`.
pub(crate) struct VectoredPublish {
    pub(crate) subject: String,
    pub(crate) reply: Option<String>,
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) payload: Bytes,
    pub(crate) trailer: &'static [u8],
    pub(crate) prefix_len: usize,
}

/// Payloads at least this large, given as `Bytes`, are written vectored
/// (not copied into the transmit buffer).
pub const VECTORED_PAYLOAD_MIN: usize = 64 * 1024;

/// A flush waiting for the PONG to its PING.
pub(crate) struct PendingFlush {
    pub(crate) ping: PingId,
    /// Cumulative written bytes once everything up to this PING is written.
    pub(crate) position: u64,
    pub(crate) done: oneshot::Sender<Result<(), Error>>,
}

pub(crate) struct PendingRequest {
    pub(crate) subject: String,
    pub(crate) timeout: Duration,
    pub(crate) reply: oneshot::Sender<Result<Message, Error>>,
}

pub(crate) struct EventQueue {
    pub(crate) events: VecDeque<Event>,
    pub(crate) waker: Option<Waker>,
    pub(crate) closed: bool,
}

impl Shared {
    /// Where the client is, from the session's state and the lifecycle.
    pub(crate) fn connection_state(&self) -> ConnectionState {
        match self.lifecycle {
            Lifecycle::Closed => ConnectionState::Closed,
            Lifecycle::Draining => ConnectionState::Draining,
            Lifecycle::Open if self.session.state() == core_nats::State::Connected => {
                ConnectionState::Connected
            }
            Lifecycle::Open => ConnectionState::Disconnected,
        }
    }

    pub(crate) fn now(&self) -> CoreInstant {
        self.clock.now()
    }

    pub(crate) fn to_tokio(&self, at: CoreInstant) -> tokio::time::Instant {
        self.clock.deadline(at)
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.pending.push(event);
    }

    /// Ends every waiter after the connection was lost: flushes fail
    /// (their PONG will never come), publishers re-check the state.
    pub(crate) fn fail_flushes(&mut self, error: impl Fn() -> Error) {
        for flush in self.receivers.flushes.drain(..) {
            let _ = flush.done.send(Err(error()));
        }
    }

    /// Ends everything for good.
    pub(crate) fn shut_down(&mut self) {
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        self.lifecycle = Lifecycle::Closed;
        self.close_requested = true;
        self.fail_flushes(|| Error::Closed);
        for (_, req) in self.receivers.requests.drain() {
            let _ = req.reply.send(Err(Error::Closed));
        }
        for (_, q) in self.receivers.subs.drain() {
            q.borrow_mut().close();
        }
        self.emit(Event::Closed);
    }
}

pub(crate) struct Inner {
    pub(crate) shared: RefCell<Shared>,
    /// The writer's wake-up (bytes to send, a state change, close), "room
    /// was made in the transmit buffer" and "the state changed".
    pub(crate) wake: Wakeups,
    /// Live `Client` handles (not counting the connection task).
    pub(crate) handles: Cell<usize>,
}

impl Inner {
    /// Runs callbacks and feeds event streams, outside any borrow.
    pub(crate) fn dispatch_events(&self) {
        loop {
            let (events, callbacks, streams) = {
                let mut sh = self.shared.borrow_mut();
                if sh.events.pending.is_empty() {
                    return;
                }
                (
                    std::mem::take(&mut sh.events.pending),
                    sh.events.callbacks.clone(),
                    sh.events.streams.clone(),
                )
            };
            for event in events {
                match &event {
                    Event::Error { message } => log::warn!("nats: {message}"),
                    Event::SlowConsumer { .. } | Event::Disconnected { .. } => {
                        log::warn!("nats: {event}")
                    }
                    _ => log::info!("nats: {event}"),
                }
                for cb in &callbacks {
                    cb(&event);
                }
                for s in &streams {
                    let mut q = s.borrow_mut();
                    if q.events.len() == EVENT_STREAM_CAPACITY {
                        q.events.pop_front();
                    }
                    if event == Event::Closed {
                        q.closed = true;
                    }
                    q.events.push_back(event.clone());
                    if let Some(w) = q.waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        self.wake.wake_all();
    }
}

fn core_options(options: &ConnectOptions) -> core_nats::ConnectOptions {
    let mut core = core_nats::ConnectOptions {
        verbose: options.verbose,
        pedantic: options.pedantic,
        echo: options.echo,
        ping_interval: CoreDuration::from_millis(options.ping_interval.as_millis() as u64),
        max_pings_out: options.max_pings_outstanding,
        rx_capacity: options.receive_buffer_size,
        ..Default::default()
    };
    if let Some(name) = &options.name {
        // Cut at a char boundary to what CONNECT carries.
        let mut end = name.len().min(core_nats::session::NAME_CAPACITY);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let _ = core.name.push_str(&name[..end]);
    }
    let _ = core.inbox_prefix.push_str(&options.inbox_prefix);
    core
}

/// Refuses options the core cannot store, instead of failing later with a
/// confusing error (an inbox that cannot be used, credentials cut off).
pub(crate) fn check_option_lengths(
    servers: &[ServerAddr],
    options: &ConnectOptions,
) -> Result<(), Error> {
    let inbox_max = core_nats::session::INBOX_PREFIX_CAPACITY;
    if options.inbox_prefix.len() > inbox_max {
        return Err(Error::InvalidOption {
            option: "inbox_prefix",
            reason: format!(
                "{} bytes with its unique token, at most {inbox_max} fit: use a shorter prefix",
                options.inbox_prefix.len()
            ),
        });
    }
    let cred_max = core_nats::session::CREDENTIAL_CAPACITY;
    for server in servers {
        let (user, pass, token) = effective_credentials(options, server);
        let total: usize = [&user, &pass, &token]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum();
        if total > cred_max {
            return Err(Error::InvalidOption {
                option: "credentials",
                reason: format!(
                    "user, password and token for {server} take {total} bytes together, at most \
                     {cred_max} are supported"
                ),
            });
        }
    }
    Ok(())
}

/// User, password and token for `server`: the options' win over the URL's.
fn effective_credentials(
    options: &ConnectOptions,
    server: &ServerAddr,
) -> (Option<String>, Option<String>, Option<String>) {
    let (user, pass) = match &options.user {
        Some((u, p)) => (Some(u.clone()), Some(p.clone())),
        None => (
            server.user().map(str::to_string),
            server.password().map(str::to_string),
        ),
    };
    let token = options
        .token
        .clone()
        .or_else(|| server.token().map(str::to_string));
    (user, pass, token)
}

/// Sets the credentials for the next handshake with `server`: the options'
/// credentials win over the URL's.
pub(crate) fn apply_credentials(sh: &mut Shared, server: &ServerAddr) {
    let (user, pass, token) = effective_credentials(&sh.options, server);
    // Cannot fail: connect checked the length for every server given, and a
    // server learned from INFO carries no credentials of its own.
    let credentials =
        core_nats::Credentials::new(user.as_deref(), pass.as_deref(), token.as_deref())
            .unwrap_or_default();
    sh.session.options_mut().credentials = credentials;
}

/// Builds the shared state outside any async fn, so the large session is
/// never part of a future (and never copied around the stack of one).
#[inline(never)]
pub(crate) fn new_inner(servers: Vec<ServerAddr>, options: ConnectOptions) -> Rc<Inner> {
    // The transmit buffer also holds publishes made while disconnected.
    let tx =
        vec![0u8; options.transmit_buffer_size + options.reconnect_buffer_size].into_boxed_slice();
    let session = Box::new(CoreSession::with_authenticator(
        core_options(&options),
        tx,
        options.auth.clone(),
    ));
    let unconfirmed = Unconfirmed::new(
        options.resend_unconfirmed,
        options.confirm_bytes,
        options.confirm_interval,
    );
    Rc::new(Inner {
        shared: RefCell::new(Shared {
            session,
            lifecycle: Lifecycle::Open,
            clock: Clock::new(),
            servers: Servers {
                known: servers,
                current: None,
                leaving: None,
            },
            receivers: Receivers {
                subs: HashMap::new(),
                requests: HashMap::new(),
                flushes: VecDeque::new(),
                slab: Slab::new(options.payload_chunk_size),
            },
            events: Events {
                pending: Vec::new(),
                streams: Vec::new(),
                callbacks: options.callbacks.clone(),
            },
            reconnect_buffered: 0,
            close_requested: false,
            publishing_closed: false,
            vectored: None,
            statistics: Statistics::default(),
            unconfirmed,
            options,
        }),
        wake: Wakeups::new(),
        handles: Cell::new(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` whole, polling the session's events first as the
    /// connection task does.
    fn feed(sh: &mut Shared, bytes: &[u8]) -> Result<(), core_nats::Error> {
        while sh.session.poll_event().is_some() {}
        let now = sh.now();
        let (used, _) = sh.session.handle_input(bytes, now)?;
        assert_eq!(used, bytes.len());
        Ok(())
    }

    fn handshake(sh: &mut Shared) {
        feed(sh, b"INFO {\"server_id\":\"S\",\"max_payload\":1024}\r\n").unwrap();
        let n = sh.session.transmit().len();
        sh.session.transmitted(n);
        feed(sh, b"PONG\r\n").unwrap();
    }

    #[test]
    fn connection_state_follows_the_session_and_the_lifecycle() {
        let server = ServerAddr::parse("nats://127.0.0.1:4222").unwrap();
        let inner = new_inner(vec![server], ConnectOptions::default());
        let mut sh = inner.shared.borrow_mut();
        assert_eq!(sh.connection_state(), ConnectionState::Disconnected);
        handshake(&mut sh);
        assert_eq!(sh.connection_state(), ConnectionState::Connected);
        // The transport is lost: `start` alone makes it Disconnected.
        let now = sh.now();
        sh.session.start(now);
        assert_eq!(sh.connection_state(), ConnectionState::Disconnected);
        handshake(&mut sh);
        // A fatal server error closes the session: not connected any more,
        // before the connection task has even seen the socket end.
        feed(&mut sh, b"-ERR 'Authorization Violation'\r\n").unwrap_err();
        assert_eq!(sh.connection_state(), ConnectionState::Disconnected);
        // Draining is the runtime's own fact: it stays across a reconnect.
        sh.lifecycle = Lifecycle::Draining;
        let now = sh.now();
        sh.session.start(now);
        assert_eq!(sh.connection_state(), ConnectionState::Draining);
        handshake(&mut sh);
        assert_eq!(sh.connection_state(), ConnectionState::Draining);
        sh.shut_down();
        assert_eq!(sh.connection_state(), ConnectionState::Closed);
        assert_eq!(sh.events.pending.last(), Some(&Event::Closed));
        // Closed is for good, whatever the session does next.
        let now = sh.now();
        sh.session.start(now);
        handshake(&mut sh);
        assert_eq!(sh.connection_state(), ConnectionState::Closed);
    }
}
