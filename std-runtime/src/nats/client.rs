//! The client handle and the state it shares with the connection task.
//!
//! Everything runs on the runtime's one thread, so state is shared through
//! `Rc<RefCell<..>>`. A borrow is never held across an `.await`, and user
//! callbacks run only after the borrow is released (see
//! [`Inner::dispatch_events`]), so a callback may call the client.
//!
//! Publishing writes the command straight into the core session's transmit
//! buffer (no per-message allocation, no channel) and wakes the connection
//! task's writer.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use courier_core::nats::{
    self as core_nats, Error as CoreError, PingId, RequestId, ServerInfo, Sid, State,
};
use courier_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use futures::Stream;
use tokio::sync::{oneshot, Notify};

use super::message::Slab;
use super::options::{Callback, ConnectOptions, Event};
use super::subscriber::{SharedQueue, SubQueue, Subscriber};
use super::unconfirmed::Unconfirmed;
use super::url::ServerAddr;
use super::{Error, HeaderMap, Message};

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

/// Events kept for one [`EventStream`] that is not being read.
const EVENT_STREAM_CAPACITY: usize = 1024;

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or reconnecting (publishes go to the reconnect buffer).
    Disconnected,
    /// Handshake done; commands flow.
    Connected,
    /// Draining ([`Client::drain`]): no new subscriptions or requests;
    /// publishes are accepted until every subscription has drained (so
    /// handlers can still reply), then refused while the rest is flushed.
    Draining,
    /// Closed for good.
    Closed,
}

pub(crate) struct Shared {
    /// Boxed: the subscription and request tables make it ~280 KB.
    pub(crate) session: Box<CoreSession>,
    pub(crate) options: ConnectOptions,
    pub(crate) state: ConnectionState,
    /// URLs given, then servers discovered from INFO connect_urls.
    pub(crate) servers: Vec<ServerAddr>,
    pub(crate) current_server: Option<ServerAddr>,
    pub(crate) epoch: std::time::Instant,
    pub(crate) subs: HashMap<u64, SharedQueue>,
    pub(crate) requests: HashMap<u64, PendingRequest>,
    pub(crate) flushes: VecDeque<PendingFlush>,
    pub(crate) slab: Slab,
    /// Bytes of publishes queued since the connection was lost (bounded by
    /// `reconnect_buffer_size`).
    pub(crate) reconnect_buffered: usize,
    pub(crate) pending_events: Vec<Event>,
    pub(crate) event_streams: Vec<Rc<RefCell<EventQueue>>>,
    pub(crate) callbacks: Vec<Callback>,
    /// Set by `close`; the connection task stops.
    pub(crate) close_requested: bool,
    /// Set by `drain` once the subscriptions drained: publishes are refused.
    pub(crate) publishing_closed: bool,
    /// The server in use entered lame duck mode and another one is known:
    /// the writer ends the connection once nothing is left to write.
    pub(crate) leaving: Option<String>,
    /// A large publish whose payload is written from where it lies
    /// (vectored), behind its control line at the head of the transmit
    /// buffer.
    pub(crate) vectored: Option<VectoredPublish>,
    pub(crate) statistics: Statistics,
    /// Publishes written and not yet confirmed (see `unconfirmed.rs`).
    pub(crate) unconfirmed: Unconfirmed,
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
    events: VecDeque<Event>,
    waker: Option<Waker>,
    closed: bool,
}

impl Shared {
    pub(crate) fn now(&self) -> CoreInstant {
        CoreInstant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    pub(crate) fn to_tokio(&self, at: CoreInstant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_millis(at.as_millis()))
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.pending_events.push(event);
    }

    /// Ends every waiter after the connection was lost: flushes fail
    /// (their PONG will never come), publishers re-check the state.
    pub(crate) fn fail_flushes(&mut self, error: impl Fn() -> Error) {
        for flush in self.flushes.drain(..) {
            let _ = flush.done.send(Err(error()));
        }
    }

    /// Ends everything for good.
    pub(crate) fn shut_down(&mut self) {
        if self.state == ConnectionState::Closed {
            return;
        }
        self.state = ConnectionState::Closed;
        self.close_requested = true;
        self.fail_flushes(|| Error::Closed);
        for (_, req) in self.requests.drain() {
            let _ = req.reply.send(Err(Error::Closed));
        }
        for (_, q) in self.subs.drain() {
            q.borrow_mut().close();
        }
        self.emit(Event::Closed);
    }
}

pub(crate) struct Inner {
    pub(crate) shared: RefCell<Shared>,
    /// Wakes the writer: bytes to send, a state change, or close.
    pub(crate) writer: Notify,
    /// Wakes publishers waiting for room in the transmit buffer.
    pub(crate) tx_space: Notify,
    /// Wakes whoever waits for a state change (flush waiting to connect).
    pub(crate) state_changed: Notify,
    /// Live `Client` handles (not counting the connection task).
    handles: Cell<usize>,
}

impl Inner {
    /// Runs callbacks and feeds event streams, outside any borrow.
    pub(crate) fn dispatch_events(&self) {
        loop {
            let (events, callbacks, streams) = {
                let mut sh = self.shared.borrow_mut();
                if sh.pending_events.is_empty() {
                    return;
                }
                (
                    std::mem::take(&mut sh.pending_events),
                    sh.callbacks.clone(),
                    sh.event_streams.clone(),
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
        self.writer.notify_one();
        self.tx_space.notify_waiters();
        self.state_changed.notify_waiters();
    }
}

/// A handle to a NATS connection; cheap to clone (all clones share the
/// connection). Not `Send`: it lives on the courier runtime's thread.
///
/// The connection closes when the last handle (and subscriber) is dropped,
/// or at [`Client::close`] / [`Client::drain`].
pub struct Client {
    pub(crate) inner: Rc<Inner>,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        self.inner.handles.set(self.inner.handles.get() + 1);
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let left = self.inner.handles.get() - 1;
        self.inner.handles.set(left);
        if left == 0 {
            self.inner.shared.borrow_mut().close_requested = true;
            self.inner.wake_all();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sh = self.inner.shared.borrow();
        f.debug_struct("Client")
            .field("state", &sh.state)
            .field("server", &sh.current_server)
            .finish()
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
fn check_option_lengths(servers: &[ServerAddr], options: &ConnectOptions) -> Result<(), Error> {
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

/// Connects to the first reachable server of `urls` with default options.
///
/// ```no_run
/// courier::run(async {
///     let client = courier::nats::connect(["nats://127.0.0.1:4222"]).await?;
///     client.publish("greet", "hello").await?;
///     client.flush().await?;
///     Ok::<_, courier::nats::Error>(())
/// }).unwrap();
/// ```
pub async fn connect<I, U>(urls: I) -> Result<Client, Error>
where
    I: IntoIterator<Item = U>,
    U: AsRef<str>,
{
    connect_with(urls, ConnectOptions::new()).await
}

pub(crate) async fn connect_with<I, U>(urls: I, options: ConnectOptions) -> Result<Client, Error>
where
    I: IntoIterator<Item = U>,
    U: AsRef<str>,
{
    let servers = urls
        .into_iter()
        .map(|u| ServerAddr::parse(u.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(Error::NoServers);
    }
    check_option_lengths(&servers, &options)?;
    let inner = new_inner(servers, options);
    let client = Client {
        inner: inner.clone(),
    };
    let (first_tx, first_rx) = oneshot::channel();
    crate::runtime::spawn(super::connection::run(inner, first_tx));
    match first_rx.await {
        Ok(Ok(())) => {
            let on_connect = client.inner.shared.borrow().options.on_connect.clone();
            if let Some(f) = on_connect {
                crate::runtime::spawn(f(client.clone()));
            }
            Ok(client)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Closed),
    }
}

/// Builds the shared state outside any async fn, so the large session is
/// never part of a future (and never copied around the stack of one).
#[inline(never)]
fn new_inner(servers: Vec<ServerAddr>, options: ConnectOptions) -> Rc<Inner> {
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
            state: ConnectionState::Disconnected,
            servers,
            current_server: None,
            epoch: std::time::Instant::now(),
            subs: HashMap::new(),
            requests: HashMap::new(),
            flushes: VecDeque::new(),
            slab: Slab::new(options.payload_chunk_size),
            reconnect_buffered: 0,
            pending_events: Vec::new(),
            event_streams: Vec::new(),
            callbacks: options.callbacks.clone(),
            close_requested: false,
            publishing_closed: false,
            leaving: None,
            vectored: None,
            statistics: Statistics::default(),
            unconfirmed,
            options,
        }),
        writer: Notify::new(),
        tx_space: Notify::new(),
        state_changed: Notify::new(),
        handles: Cell::new(1),
    })
}

impl Client {
    /// Publishes `payload` to `subject`.
    ///
    /// `Ok` means the command is in the transmit buffer and will be written
    /// in order; while disconnected, it sits in the bounded reconnect buffer
    /// and is written right after the next handshake. Await
    /// [`Client::flush`] to know the server has it. Waits when the transmit
    /// buffer is full (backpressure).
    pub async fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> Result<(), Error> {
        self.publish_raw(subject, None, None, payload.as_ref())
            .await
    }

    /// Publishes with a reply subject for the receiver to answer to.
    pub async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        self.publish_raw(subject, Some(reply), None, payload.as_ref())
            .await
    }

    /// Publishes with headers (HPUB).
    pub async fn publish_with_headers(
        &self,
        subject: &str,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        self.publish_raw(subject, None, Some(headers.as_bytes()), payload.as_ref())
            .await
    }

    /// Publishes with a reply subject and optional headers.
    pub async fn publish_with_reply_and_headers(
        &self,
        subject: &str,
        reply: &str,
        headers: Option<&HeaderMap>,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        self.publish_raw(
            subject,
            Some(reply),
            headers.map(HeaderMap::as_bytes),
            payload.as_ref(),
        )
        .await
    }

    async fn publish_raw(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), Error> {
        loop {
            if let Some(done) = self.try_publish(subject, reply, headers, payload) {
                return done;
            }
            // The writer frees room (or the state changes); then retry.
            self.inner.writer.notify_one();
            self.inner.tx_space.notified().await;
        }
    }

    /// One publish attempt; `None` means "wait for room and retry".
    fn try_publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Option<Result<(), Error>> {
        let mut sh = self.inner.shared.borrow_mut();
        let connected = match sh.state {
            ConnectionState::Closed => return Some(Err(Error::Closed)),
            ConnectionState::Draining if sh.publishing_closed => return Some(Err(Error::Closed)),
            ConnectionState::Draining => sh.session.state() == State::Connected,
            ConnectionState::Connected => true,
            ConnectionState::Disconnected => false,
        };
        let len = if connected {
            // Bound what waits in memory while connected: past the transmit
            // buffer size, wait for the writer.
            if sh.session.transmit().len() >= sh.options.transmit_buffer_size {
                return None;
            }
            0
        } else {
            let len = match sh
                .session
                .publish_size(subject, reply, headers, payload.len())
            {
                Ok(len) => len,
                Err(e) => return Some(Err(e.into())),
            };
            let capacity = sh.options.reconnect_buffer_size;
            if sh.reconnect_buffered + len > capacity {
                return Some(Err(Error::ReconnectBufferFull {
                    needed: sh.reconnect_buffered + len,
                    capacity,
                }));
            }
            len
        };
        match sh.session.publish(subject, reply, headers, payload) {
            Ok(()) => {
                sh.reconnect_buffered += len;
                sh.statistics.out_messages += 1;
                sh.statistics.out_bytes += payload.len() as u64;
                drop(sh);
                self.inner.writer.notify_one();
                Some(Ok(()))
            }
            // Room comes once the writer drains what is pending.
            Err(CoreError::BufferFull(_)) if connected && !sh.session.transmit().is_empty() => None,
            Err(CoreError::BufferFull(e)) if !connected => Some(Err(Error::ReconnectBufferFull {
                needed: e.needed,
                capacity: e.capacity,
            })),
            Err(e) => Some(Err(e.into())),
        }
    }

    /// Publishes a payload the caller already owns as `Bytes`.
    ///
    /// Payloads of [`VECTORED_PAYLOAD_MIN`] bytes or more are not copied:
    /// the control line goes into the transmit buffer and the payload is
    /// handed to the kernel as a second slice of one vectored write. Smaller
    /// ones (and any made while disconnected) take the ordinary path. Same
    /// delivery contract as [`Client::publish`]; a vectored publish caught
    /// by a lost connection is queued again (copied) for the next one.
    pub async fn publish_bytes(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<(), Error> {
        let raw_headers = headers.map(HeaderMap::as_bytes);
        if payload.len() < VECTORED_PAYLOAD_MIN {
            return self.publish_raw(subject, None, raw_headers, &payload).await;
        }
        loop {
            match self.try_publish_vectored(subject, headers, &payload) {
                Vectored::Done(res) => return res,
                Vectored::Copy => {
                    return self.publish_raw(subject, None, raw_headers, &payload).await
                }
                Vectored::Wait => {
                    self.inner.writer.notify_one();
                    self.inner.tx_space.notified().await;
                }
            }
        }
    }

    fn try_publish_vectored(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &Bytes,
    ) -> Vectored {
        let mut sh = self.inner.shared.borrow_mut();
        match sh.state {
            ConnectionState::Closed => return Vectored::Done(Err(Error::Closed)),
            ConnectionState::Draining if sh.publishing_closed => {
                return Vectored::Done(Err(Error::Closed))
            }
            ConnectionState::Draining if sh.session.state() != State::Connected => {
                return Vectored::Copy
            }
            ConnectionState::Disconnected => return Vectored::Copy,
            ConnectionState::Connected | ConnectionState::Draining => {}
        }
        // The control line must lead an empty transmit buffer.
        if sh.vectored.is_some() || sh.session.queued_bytes() > 0 {
            return Vectored::Wait;
        }
        let raw_headers = headers.map(HeaderMap::as_bytes);
        match sh
            .session
            .publish_header_only(subject, None, raw_headers, payload.len())
        {
            Ok(trailer) => {
                let prefix_len = sh.session.transmit().len();
                sh.vectored = Some(VectoredPublish {
                    subject: subject.to_string(),
                    reply: None,
                    headers: headers.cloned(),
                    payload: payload.clone(),
                    trailer,
                    prefix_len,
                });
                sh.statistics.out_messages += 1;
                sh.statistics.out_bytes += payload.len() as u64;
                drop(sh);
                self.inner.writer.notify_one();
                Vectored::Done(Ok(()))
            }
            Err(CoreError::BufferFull(_)) | Err(CoreError::NotConnected) => Vectored::Wait,
            Err(e) => Vectored::Done(Err(e.into())),
        }
    }

    /// Subscribes to `subject` (wildcards `*` and `>` allowed).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, None).await
    }

    /// Subscribes as a member of queue group `group`: each message goes to
    /// one member of the group.
    pub async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, Some(group)).await
    }

    async fn subscribe_inner(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscriber, Error> {
        loop {
            {
                let mut sh = self.inner.shared.borrow_mut();
                if matches!(
                    sh.state,
                    ConnectionState::Closed | ConnectionState::Draining
                ) {
                    return Err(Error::Closed);
                }
                match sh.session.subscribe(subject, queue) {
                    Ok(sid) => {
                        let q = SubQueue::new(subject, sh.options.pending_limits);
                        sh.subs.insert(sid.0, q.clone());
                        drop(sh);
                        self.inner.writer.notify_one();
                        return Ok(Subscriber {
                            sid,
                            queue: q,
                            client: self.clone(),
                        });
                    }
                    Err(CoreError::BufferFull(_)) if !sh.session.transmit().is_empty() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.inner.tx_space.notified().await;
        }
    }

    pub(crate) fn unsubscribe_sid(&self, sid: Sid) -> Result<(), Error> {
        let mut sh = self.inner.shared.borrow_mut();
        if let Some(q) = sh.subs.remove(&sid.0) {
            q.borrow_mut().close();
        }
        if sh.state == ConnectionState::Closed {
            return Ok(());
        }
        let res = sh.session.unsubscribe(sid);
        drop(sh);
        self.inner.writer.notify_one();
        match res {
            Ok(()) | Err(CoreError::UnknownSubscription(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn unsubscribe_after_sid(&self, sid: Sid, max: u64) -> Result<(), Error> {
        let mut sh = self.inner.shared.borrow_mut();
        let res = sh.session.unsubscribe_after(sid, max);
        // If `max` was already reached the core ends it at once.
        let live = sh.session.subscriptions().any(|s| s.sid == sid);
        if !live {
            if let Some(q) = sh.subs.remove(&sid.0) {
                q.borrow_mut().close();
            }
        }
        drop(sh);
        self.inner.writer.notify_one();
        match res {
            Ok(()) | Err(CoreError::UnknownSubscription(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a request and waits for the first reply, up to the options'
    /// request timeout.
    pub async fn request(
        &self,
        subject: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<Message, Error> {
        let timeout = self.inner.shared.borrow().options.request_timeout;
        self.request_with(subject, None, payload.as_ref(), timeout)
            .await
    }

    /// Sends a request with optional headers and an explicit timeout.
    ///
    /// Errors: [`Error::NoResponders`] when nothing subscribes to
    /// `subject`, [`Error::TimedOut`] when no reply came in time.
    pub async fn request_with(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        let id = loop {
            {
                let mut sh = self.inner.shared.borrow_mut();
                if matches!(
                    sh.state,
                    ConnectionState::Closed | ConnectionState::Draining
                ) {
                    return Err(Error::Closed);
                }
                let now = sh.now();
                let core_timeout = CoreDuration::from_millis(timeout.as_millis() as u64);
                match sh.session.request(
                    subject,
                    headers.map(HeaderMap::as_bytes),
                    payload,
                    now,
                    core_timeout,
                ) {
                    Ok(id) => break id,
                    Err(CoreError::BufferFull(_))
                        if sh.state == ConnectionState::Connected
                            && !sh.session.transmit().is_empty() => {}
                    Err(CoreError::BufferFull(e)) => {
                        return Err(Error::ReconnectBufferFull {
                            needed: e.needed,
                            capacity: e.capacity,
                        })
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if tokio::time::timeout_at(deadline, self.inner.tx_space.notified())
                .await
                .is_err()
            {
                return Err(Error::TimedOut {
                    operation: "request",
                    after: timeout,
                });
            }
        };
        self.inner.shared.borrow_mut().requests.insert(
            id.0,
            PendingRequest {
                subject: subject.to_string(),
                timeout,
                reply: tx,
            },
        );
        self.inner.writer.notify_one();
        let guard = RequestGuard { client: self, id };
        // The core times the request out; the extra margin only guards
        // against a core timer that never fires (e.g. while disconnected).
        let res = tokio::time::timeout_at(deadline + Duration::from_millis(100), rx).await;
        drop(guard);
        match res {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::TimedOut {
                operation: "request",
                after: timeout,
            }),
        }
    }

    /// Round trip to the server (PING/PONG): when it returns `Ok`, the
    /// server has processed every command sent before it. Waits for a
    /// reconnect if needed; never waits longer than the flush timeout.
    pub async fn flush(&self) -> Result<(), Error> {
        let timeout = self.inner.shared.borrow().options.flush_timeout;
        self.flush_timeout(timeout).await
    }

    /// [`Client::flush`] with an explicit timeout.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let attempt = async {
            loop {
                let rx = {
                    let mut sh = self.inner.shared.borrow_mut();
                    match sh.state {
                        ConnectionState::Closed => return Err(Error::Closed),
                        ConnectionState::Disconnected => None,
                        ConnectionState::Connected | ConnectionState::Draining => {
                            match sh.session.ping() {
                                Ok(id) => {
                                    let (tx, rx) = oneshot::channel();
                                    let position = sh.statistics.written_bytes
                                        + sh.session.queued_bytes() as u64;
                                    sh.unconfirmed.boundary(position);
                                    sh.flushes.push_back(PendingFlush {
                                        ping: id,
                                        position,
                                        done: tx,
                                    });
                                    Some(rx)
                                }
                                Err(CoreError::BufferFull(_)) => None,
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                };
                match rx {
                    Some(rx) => {
                        self.inner.writer.notify_one();
                        return rx.await.unwrap_or(Err(Error::Closed));
                    }
                    None => {
                        // Not connected or no room: wait for a change.
                        let changed = self.inner.state_changed.notified();
                        let room = self.inner.tx_space.notified();
                        futures::pin_mut!(changed, room);
                        futures::future::select(changed, room).await;
                    }
                }
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(Error::TimedOut {
                operation: "flush",
                after: timeout,
            }))
    }

    /// Graceful shutdown without losing a message (nats.go's drain):
    ///
    /// 1. every subscription drains: `UNSUB` then a PING is sent, and the
    ///    messages the server routed before it processed the UNSUB keep
    ///    arriving until the PONG proves it did; then the subscription's
    ///    stream ends after its queued messages. No new subscriptions or
    ///    requests meanwhile; publishes are still accepted (handlers can
    ///    reply);
    /// 2. publishes are refused and everything queued is flushed (a round
    ///    trip);
    /// 3. the client closes.
    ///
    /// Each step is bounded by the flush timeout. A connection lost during
    /// the drain ends the subscriptions (nothing more can arrive) and fails
    /// the flush.
    pub async fn drain(&self) -> Result<(), Error> {
        let sids: Vec<Sid> = {
            let mut sh = self.inner.shared.borrow_mut();
            if sh.state == ConnectionState::Closed {
                return Err(Error::Closed);
            }
            sh.state = ConnectionState::Draining;
            sh.subs.keys().map(|&sid| Sid(sid)).collect()
        };
        let subscriptions = self.drain_subscriptions(&sids).await;
        self.inner.shared.borrow_mut().publishing_closed = true;
        self.inner.wake_all();
        let flushed = self.flush().await;
        self.close_now();
        subscriptions.and(flushed)
    }

    /// Drains `sids` (see [`Client::drain`]) and waits until the server
    /// confirmed every UNSUB, bounded by the flush timeout.
    pub(crate) async fn drain_subscriptions(&self, sids: &[Sid]) -> Result<(), Error> {
        let timeout = self.inner.shared.borrow().options.flush_timeout;
        let attempt = async {
            for &sid in sids {
                loop {
                    let room = self.inner.tx_space.notified();
                    {
                        let mut sh = self.inner.shared.borrow_mut();
                        if sh.state == ConnectionState::Closed {
                            return Err(Error::Closed);
                        }
                        match sh.session.unsubscribe_draining(sid) {
                            Ok(()) | Err(CoreError::UnknownSubscription(_)) => {
                                if !sh.session.is_draining(sid) {
                                    // Ended at once (not connected) or
                                    // already gone: nothing more can come.
                                    if let Some(q) = sh.subs.remove(&sid.0) {
                                        q.borrow_mut().close();
                                    }
                                }
                                break;
                            }
                            Err(CoreError::BufferFull(_)) if !sh.session.transmit().is_empty() => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    self.inner.writer.notify_one();
                    room.await;
                }
            }
            self.inner.writer.notify_one();
            loop {
                let changed = self.inner.state_changed.notified();
                {
                    let sh = self.inner.shared.borrow();
                    if sids.iter().all(|sid| !sh.subs.contains_key(&sid.0)) {
                        return Ok(());
                    }
                    if sh.state == ConnectionState::Closed {
                        return Err(Error::Closed);
                    }
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(Error::TimedOut {
                operation: "drain",
                after: timeout,
            }))
    }

    /// Writes what is pending (bounded by the flush timeout) and closes.
    /// Subscriber streams end after their queued messages; waiting requests
    /// and flushes fail with [`Error::Closed`].
    ///
    /// Closing while disconnected returns [`Error::NotSent`] when publishes
    /// were still held for the next connection: they are dropped, and said
    /// so.
    pub async fn close(&self) -> Result<(), Error> {
        let connected = self.inner.shared.borrow().state == ConnectionState::Connected;
        let res = if connected {
            self.flush().await
        } else {
            match self.unsent_bytes() {
                0 => Ok(()),
                bytes => Err(Error::NotSent { bytes }),
            }
        };
        self.close_now();
        res
    }

    fn close_now(&self) {
        self.inner.shared.borrow_mut().shut_down();
        self.inner.wake_all();
        self.inner.dispatch_events();
    }

    /// The INFO of the server currently (or last) connected.
    pub fn server_info(&self) -> Option<ServerInfo> {
        self.inner.shared.borrow().session.server_info().cloned()
    }

    /// The server in use (`nats://host:port`, no credentials).
    pub fn connected_url(&self) -> Option<String> {
        self.inner
            .shared
            .borrow()
            .current_server
            .as_ref()
            .map(|s| s.to_string())
    }

    /// Where the connection is.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.shared.borrow().state
    }

    /// Messages and bytes in and out, and reconnects.
    pub fn statistics(&self) -> Statistics {
        self.inner.shared.borrow().statistics
    }

    /// Publishes written to the current connection and not yet confirmed
    /// by a PONG (a flush or a confirmation ping): if the server dies now,
    /// these are in doubt (see [`ConnectOptions::resend_unconfirmed`]).
    pub fn unconfirmed_publishes(&self) -> usize {
        self.inner.shared.borrow().unconfirmed.count()
    }

    /// Bytes of commands not yet written to a socket: publishes waiting in
    /// the transmit buffer, including those held for the next handshake
    /// while disconnected. Zero after a successful [`Client::flush`] unless
    /// more was published since.
    pub fn unsent_bytes(&self) -> usize {
        self.inner.shared.borrow().session.queued_bytes()
    }

    /// The core session's counters (dropped unknown-sid messages, late
    /// replies, bytes discarded on reset).
    pub fn protocol_stats(&self) -> core_nats::Stats {
        self.inner.shared.borrow().session.stats()
    }

    /// A stream of connection [`Event`]s from now on. Keeps the newest 1024
    /// when not read; ends after [`Event::Closed`].
    pub fn events(&self) -> EventStream {
        let q = Rc::new(RefCell::new(EventQueue {
            events: VecDeque::new(),
            waker: None,
            closed: self.inner.shared.borrow().state == ConnectionState::Closed,
        }));
        self.inner.shared.borrow_mut().event_streams.push(q.clone());
        EventStream { queue: q }
    }

    /// The inbox prefix of this client's requests (`<prefix>.<token>`).
    pub fn inbox_prefix(&self) -> String {
        self.inner.shared.borrow().options.inbox_prefix.clone()
    }

    /// A fresh unique subject under this client's inbox prefix, for
    /// hand-made request/reply.
    pub fn new_inbox(&self) -> String {
        format!("{}.{}", self.inbox_prefix(), super::options::random_token())
    }
}

/// Outcome of one vectored publish attempt.
enum Vectored {
    Done(Result<(), Error>),
    /// Not connected: take the ordinary (copying, buffered) path.
    Copy,
    /// Wait for the writer to empty the transmit buffer.
    Wait,
}

/// Cancels a request whose future was dropped, so its slot is freed.
struct RequestGuard<'a> {
    client: &'a Client,
    id: RequestId,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        let mut sh = self.client.inner.shared.borrow_mut();
        if sh.requests.remove(&self.id.0).is_some() {
            sh.session.cancel_request(self.id);
        }
    }
}

/// Connection events as a `Stream` (see [`Client::events`]).
pub struct EventStream {
    queue: Rc<RefCell<EventQueue>>,
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut q = self.queue.borrow_mut();
        if let Some(e) = q.events.pop_front() {
            return Poll::Ready(Some(e));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
