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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use courier_core::nats::{
    self as core_nats, Error as CoreError, RequestId, ServerInfo, Sid, State,
};
use courier_core::time::Duration as CoreDuration;
use futures::Stream;
use tokio::sync::oneshot;

use super::message::Block;
use super::options::{ConnectOptions, Event};
use super::shared::{
    check_option_lengths, new_inner, ConnectionState, EventQueue, Inner, Lifecycle, PendingFlush,
    PendingRequest, Shared, Statistics, VectoredPublish, VECTORED_PAYLOAD_MIN,
};
use super::subscriber::{SubQueue, Subscriber};
use super::url::ServerAddr;
use super::{Error, HeaderMap, Message};
use crate::session_io::wait_for_room;

/// True when `e` says the transmit buffer is full of bytes the writer will
/// drain: waiting makes room (an empty buffer that cannot take the command
/// never will).
fn waits_for_room(sh: &Shared, e: &CoreError) -> bool {
    matches!(e, CoreError::BufferFull(_)) && !sh.session.transmit().is_empty()
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
            .field("state", &sh.connection_state())
            .field("server", &sh.servers.current)
            .finish()
    }
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
        self.publish_raw(
            subject,
            None,
            Some(headers.publish_form()),
            payload.as_ref(),
        )
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
            headers.map(HeaderMap::publish_form),
            payload.as_ref(),
        )
        .await
    }

    async fn publish_raw(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Block<'_>>,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.with_room(None, |sh| {
            self.try_publish(sh, subject, reply, headers, payload)
        })
        .await
        .unwrap_or(Err(Error::Closed))
    }

    /// Runs `attempt` on the shared state until it answers. `None` from it
    /// means "no room in the transmit buffer now, or not connected": the
    /// writer is woken and `attempt` runs again once the writer made room
    /// or the state changed (the one place of the BufferFull -> wake the
    /// writer -> wait for room -> retry dance). `None` when `deadline`
    /// passed first.
    async fn with_room<R>(
        &self,
        deadline: Option<tokio::time::Instant>,
        mut attempt: impl FnMut(&mut Shared) -> Option<R>,
    ) -> Option<R> {
        // Nearly every publish finds room: answer without building (and
        // dropping) the wait's future (callgrind, 16 B publish).
        if let Some(r) = attempt(&mut self.inner.shared.borrow_mut()) {
            return Some(r);
        }
        wait_for_room(&self.inner.wake, deadline, || {
            attempt(&mut self.inner.shared.borrow_mut())
        })
        .await
    }

    /// One publish attempt; `None` means "wait for room and retry".
    fn try_publish(
        &self,
        sh: &mut Shared,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Block<'_>>,
        payload: &[u8],
    ) -> Option<Result<(), Error>> {
        let connected = match sh.connection_state() {
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
            let len = match sh.session.publish_size(
                subject,
                reply,
                headers.map(Block::as_bytes),
                payload.len(),
            ) {
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
        // A block built valid is not checked again (see `HeaderMap`).
        let published = match headers {
            Some(Block::Checked(h)) => sh.session.publish_checked(subject, reply, h, payload),
            h => sh
                .session
                .publish(subject, reply, h.map(Block::as_bytes), payload),
        };
        match published {
            Ok(()) => {
                sh.reconnect_buffered += len;
                sh.statistics.out_messages += 1;
                sh.statistics.out_bytes += payload.len() as u64;
                self.inner.wake.wake_writer();
                Some(Ok(()))
            }
            // Room comes once the writer drains what is pending.
            Err(e) if connected && waits_for_room(sh, &e) => None,
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
        let raw_headers = headers.map(HeaderMap::publish_form);
        if payload.len() < VECTORED_PAYLOAD_MIN {
            return self.publish_raw(subject, None, raw_headers, &payload).await;
        }
        let attempt = self
            .with_room(None, |sh| {
                match self.try_publish_vectored(sh, subject, headers, &payload) {
                    Vectored::Wait => None,
                    other => Some(other),
                }
            })
            .await;
        match attempt {
            Some(Vectored::Done(res)) => res,
            Some(Vectored::Copy) => self.publish_raw(subject, None, raw_headers, &payload).await,
            Some(Vectored::Wait) | None => Err(Error::Closed),
        }
    }

    fn try_publish_vectored(
        &self,
        sh: &mut Shared,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &Bytes,
    ) -> Vectored {
        match sh.connection_state() {
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
                self.inner.wake.wake_writer();
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
        self.with_room(None, |sh| {
            if matches!(
                sh.connection_state(),
                ConnectionState::Closed | ConnectionState::Draining
            ) {
                return Some(Err(Error::Closed));
            }
            match sh.session.subscribe(subject, queue) {
                Ok(sid) => {
                    let q = SubQueue::new(subject, sh.options.pending_limits);
                    sh.receivers.subs.insert(sid.0, q.clone());
                    self.inner.wake.wake_writer();
                    Some(Ok(Subscriber {
                        sid,
                        queue: q,
                        client: self.clone(),
                    }))
                }
                Err(e) if waits_for_room(sh, &e) => None,
                Err(e) => Some(Err(e.into())),
            }
        })
        .await
        .unwrap_or(Err(Error::Closed))
    }

    pub(crate) fn unsubscribe_sid(&self, sid: Sid) -> Result<(), Error> {
        let mut sh = self.inner.shared.borrow_mut();
        if let Some(q) = sh.receivers.subs.remove(&sid.0) {
            q.borrow_mut().close();
        }
        if sh.connection_state() == ConnectionState::Closed {
            return Ok(());
        }
        let res = sh.session.unsubscribe(sid);
        drop(sh);
        self.inner.wake.wake_writer();
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
            if let Some(q) = sh.receivers.subs.remove(&sid.0) {
                q.borrow_mut().close();
            }
        }
        drop(sh);
        self.inner.wake.wake_writer();
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
        let queued = self.with_room(Some(deadline), |sh| {
            if matches!(
                sh.connection_state(),
                ConnectionState::Closed | ConnectionState::Draining
            ) {
                return Some(Err(Error::Closed));
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
                Ok(id) => Some(Ok(id)),
                Err(e)
                    if sh.connection_state() == ConnectionState::Connected
                        && waits_for_room(sh, &e) =>
                {
                    None
                }
                Err(CoreError::BufferFull(e)) => Some(Err(Error::ReconnectBufferFull {
                    needed: e.needed,
                    capacity: e.capacity,
                })),
                Err(e) => Some(Err(e.into())),
            }
        });
        let id = match queued.await {
            Some(queued) => queued?,
            None => {
                return Err(Error::TimedOut {
                    operation: "request",
                    after: timeout,
                })
            }
        };
        self.inner.shared.borrow_mut().receivers.requests.insert(
            id.0,
            PendingRequest {
                subject: subject.to_string(),
                timeout,
                reply: tx,
            },
        );
        self.inner.wake.wake_writer();
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
            // Not connected or no room: wait for a change.
            let pinged = self.with_room(None, |sh| match sh.connection_state() {
                ConnectionState::Closed => Some(Err(Error::Closed)),
                ConnectionState::Disconnected => None,
                ConnectionState::Connected | ConnectionState::Draining => match sh.session.ping() {
                    Ok(id) => {
                        let (tx, rx) = oneshot::channel();
                        let position =
                            sh.statistics.written_bytes + sh.session.queued_bytes() as u64;
                        sh.receivers.flushes.push_back(PendingFlush {
                            ping: id,
                            position,
                            done: tx,
                        });
                        Some(Ok(rx))
                    }
                    Err(CoreError::BufferFull(_)) => None,
                    Err(e) => Some(Err(e.into())),
                },
            });
            let rx = pinged.await.unwrap_or(Err(Error::Closed))?;
            self.inner.wake.wake_writer();
            rx.await.unwrap_or(Err(Error::Closed))
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
            if sh.connection_state() == ConnectionState::Closed {
                return Err(Error::Closed);
            }
            sh.lifecycle = Lifecycle::Draining;
            sh.receivers.subs.keys().map(|&sid| Sid(sid)).collect()
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
                let unsubscribed = self.with_room(None, |sh| {
                    if sh.connection_state() == ConnectionState::Closed {
                        return Some(Err(Error::Closed));
                    }
                    match sh.session.unsubscribe_draining(sid) {
                        Ok(()) | Err(CoreError::UnknownSubscription(_)) => {
                            if !sh.session.is_draining(sid) {
                                // Ended at once (not connected) or already
                                // gone: nothing more can come.
                                if let Some(q) = sh.receivers.subs.remove(&sid.0) {
                                    q.borrow_mut().close();
                                }
                            }
                            Some(Ok(()))
                        }
                        Err(e) if waits_for_room(sh, &e) => None,
                        Err(e) => Some(Err(e.into())),
                    }
                });
                unsubscribed.await.unwrap_or(Err(Error::Closed))?;
            }
            self.inner.wake.wake_writer();
            let ended = self.inner.wake.wait_until(None, || {
                let sh = self.inner.shared.borrow();
                if sids
                    .iter()
                    .all(|sid| !sh.receivers.subs.contains_key(&sid.0))
                {
                    return Some(Ok(()));
                }
                (sh.connection_state() == ConnectionState::Closed).then_some(Err(Error::Closed))
            });
            ended.await.unwrap_or(Err(Error::Closed))
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
        let connected = self.inner.shared.borrow().connection_state() == ConnectionState::Connected;
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
            .servers
            .current
            .as_ref()
            .map(|s| s.to_string())
    }

    /// Where the connection is.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.shared.borrow().connection_state()
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
            closed: self.inner.shared.borrow().connection_state() == ConnectionState::Closed,
        }));
        self.inner
            .shared
            .borrow_mut()
            .events
            .streams
            .push(q.clone());
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
        if sh.receivers.requests.remove(&self.id.0).is_some() {
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
