//! One AMQP connection: the core [`Session`] driven by a reader, a writer
//! and a timer task on the current runtime (io_uring or epoll), and the
//! tables that route the session's events to the tasks waiting for them.
//!
//! Frames are written into the session's transmit buffer by whoever calls
//! (publishers, acks, RPCs); the writer copies what is pending into its own
//! buffer and sends it as one write, so many frames batch into one syscall.
//! The reader parses frame by frame: confirms and deliveries are handled as
//! they arrive, never behind a slow writer, and heartbeats are sent only
//! when nothing else was (the core decides).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use courier_core::amqp::{
    self, ChannelId, Delivery, DeliveryKind, Event, Options as CoreOptions, Reply, Session,
};
use courier_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use tokio::sync::oneshot;

use super::channel::Channel;
use super::confirms::ConfirmSlab;
use super::consumers::{Consumers, Settle, Sink};
use super::message::Message;
use super::url::AmqpUrl;
use super::Error;
use crate::session_io::{wait_for_room, Clock, Wakeups};

/// Channels one connection can have open at once.
pub const MAX_CHANNELS: usize = 64;
/// Confirm window per channel in units of 64 publishes (2,048).
pub(crate) const CONFIRM_WORDS: usize = 32;

pub(crate) type CoreSession = Session<Vec<u8>, MAX_CHANNELS, CONFIRM_WORDS>;

/// The one clock of every AMQP connection in this process (the shared
/// skeleton's [`Clock`], epoch at its first use).
pub(crate) fn clock() -> Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    *CLOCK.get_or_init(Clock::new)
}

/// The core's current instant on [`clock`].
pub(crate) fn now() -> CoreInstant {
    clock().now()
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    /// Heartbeat interval wanted, seconds (0: none).
    pub heartbeat: u16,
    /// Receive buffer: the largest message (plus 8 bytes per frame) that
    /// can arrive. Default 4 MiB.
    pub rx_capacity: usize,
    /// Transmit buffer: the largest publish (plus framing). Default 4 MiB.
    pub tx_capacity: usize,
    /// Longest a resource alarm may block publishing before the connection
    /// is given up (None: wait for ever). Default 60 s.
    pub blocked_timeout: Option<Duration>,
    /// Longest the handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Reconnect after a lost connection (not after a refused login or
    /// [`Connection::close`]), with backoff and jitter, and restore what
    /// this connection declared: channels (confirm mode, QoS), exchanges,
    /// queues, bindings and consumers. Default on.
    pub reconnect: bool,
    /// Longest wait between reconnect attempts (the wait doubles from
    /// 100 ms up to this, each with ±50 % jitter). Default 5 s.
    pub max_backoff: Duration,
    /// TLS for `amqps://` URLs: CA, client certificate, server name
    /// (None: verify against the Mozilla roots). See
    /// [`ConnectOptions::with_tls`].
    pub tls: Option<crate::layers::TlsConfig>,
    /// Log in with SASL EXTERNAL (the TLS client certificate names the
    /// user) instead of PLAIN. See [`ConnectOptions::external_auth`].
    pub external: bool,
}

impl ConnectOptions {
    /// Defaults for `url`.
    pub fn new(url: &str) -> Self {
        ConnectOptions {
            url: url.to_string(),
            connection_name: String::new(),
            heartbeat: 60,
            rx_capacity: 4 << 20,
            tx_capacity: 4 << 20,
            blocked_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(10),
            reconnect: true,
            max_backoff: Duration::from_secs(5),
            tls: None,
            external: false,
        }
    }
}

impl Shared {
    pub(crate) fn set_connected_waiter(&mut self, tx: oneshot::Sender<Result<(), Error>>) {
        self.connected = Some(tx);
    }
}

pub(crate) struct Shared {
    pub session: CoreSession,
    /// Why the connection ended, once it did.
    pub closed: Option<Error>,
    connected: Option<oneshot::Sender<Result<(), Error>>>,
    pub opens: HashMap<ChannelId, oneshot::Sender<Result<(), Error>>>,
    pub replies: HashMap<ChannelId, VecDeque<oneshot::Sender<Result<Reply, Error>>>>,
    /// Message slots of pending basic.gets (beside their reply waiters).
    pub gets: HashMap<ChannelId, VecDeque<super::basic_get::GetWaiter>>,
    /// Publishes waiting for their confirm.
    pub confirm_slab: ConfirmSlab,
    /// Handler answers the transmit buffer had no room for, in order.
    pub deferred: VecDeque<(ChannelId, u64, Settle)>,
    /// Returns seen on a channel and not yet matched with their confirm.
    returned: HashMap<ChannelId, VecDeque<Error>>,
    pub consumers: Consumers,
    /// Channels the server closed, with its reason.
    pub channel_errors: HashMap<ChannelId, amqp::CloseReason>,
    /// The writer has bytes in flight.
    pub writing: bool,
    /// The body of the session's pending `publish_body_later`, written by
    /// the writer from here (`large_body`).
    pub large_body: Option<bytes::Bytes>,
    /// Connection generation: 1, then +1 per reconnect. IO tasks of an older
    /// one stop; acks of messages from an older one are not sent.
    pub epoch: u64,
    /// A reconnect is under way: calls wait for it instead of failing.
    pub recovering: bool,
    /// What to restore after a reconnect.
    pub topology: super::recovery::Topology,
    connected_once: bool,
}

pub(crate) struct Inner {
    /// Itself, for the messages' ack handles.
    me: std::rc::Weak<Inner>,
    pub shared: RefCell<Shared>,
    /// The writer's wake-up (something was queued) and "room was made"
    /// (bytes written, confirms settled, unblocked, restored, closed).
    pub wake: Wakeups,
    /// The write half, lent by the idle writer of connection generation
    /// `.0` (plaintext only) so that a publish awaited alone is written
    /// from the caller's task ([`io_tasks::write_now`](super::io_tasks::write_now)).
    pub direct: RefCell<Option<(u64, crate::transport::WriteHalf)>>,
}

/// True when the command that failed with `BufferFull` fits the transmit
/// buffer once the writer drains it. The error's `needed` counts the bytes
/// already pending plus the command (nothing was written on failure), so
/// the command alone is `needed - pending`: comparing `needed` itself with
/// the capacity made a full buffer look like a message that can never fit.
fn fits_when_drained(c: &courier_core::buf::CapacityError, session: &CoreSession) -> bool {
    let pending = session.tx_capacity() - session.tx_available();
    c.needed.saturating_sub(pending) <= c.capacity
}

impl Inner {
    /// Runs `f` on the session, waiting for room while it says "buffer
    /// full", "confirm window full" or "blocked"; wakes the writer after.
    pub async fn with_room<T>(
        &self,
        mut f: impl FnMut(&mut Shared) -> Result<T, amqp::Error>,
    ) -> Result<T, Error> {
        self.with_room_now(|sh| f(sh).map(|v| (v, false))).await
    }

    /// Like [`Inner::with_room`]; when `f` also answers true (a command the
    /// caller will wait on alone, e.g. a publish with no other confirm
    /// outstanding on its channel) and the writer is idle, the command is
    /// written at once from this task with one non-blocking `send(2)`
    /// instead of waking the writer: on a latency-bound loop (publish,
    /// await its confirm) that saves the writer's wake-up and, on io_uring,
    /// a write submission and its completion per round trip. Whatever the
    /// socket does not take is left to the writer, in order.
    pub async fn with_room_now<T>(
        &self,
        mut f: impl FnMut(&mut Shared) -> Result<(T, bool), amqp::Error>,
    ) -> Result<T, Error> {
        let answer = wait_for_room(&self.wake, None, || {
            let mut sh = self.shared.borrow_mut();
            if let Some(e) = &sh.closed {
                return Some(Err(e.clone()));
            }
            // While reconnecting, wait for the restore (room is made when
            // it is done).
            if sh.recovering {
                return None;
            }
            match f(&mut sh) {
                Ok(v) => Some(Ok(v)),
                Err(amqp::Error::BufferFull(c)) if fits_when_drained(&c, &sh.session) => None,
                Err(
                    amqp::Error::ConfirmWindowFull { .. }
                    | amqp::Error::Blocked
                    | amqp::Error::FlowPaused(_)
                    | amqp::Error::BodyInFlight,
                ) => None,
                Err(amqp::Error::ChannelNotOpen(ch)) => {
                    Some(Err(match sh.channel_errors.get(&ch) {
                        Some(r) => Error::ChannelClosed(r.clone()),
                        None => Error::Protocol(amqp::Error::ChannelNotOpen(ch)),
                    }))
                }
                Err(e) => Some(Err(e.into())),
            }
        })
        .await
        // No deadline: it waits until the session answers.
        .unwrap_or_else(|| Err(Error::Disconnected("connection ended".into())));
        match answer {
            Ok((v, now)) => {
                if !(now && super::io_tasks::write_now(self)) {
                    self.wake.wake_writer();
                }
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }

    /// The connection of generation `epoch` ended with `error`: reconnect
    /// when that is wanted and possible, else end for good.
    pub fn lost(&self, epoch: u64, error: Error) {
        let recover = {
            let mut sh = self.shared.borrow_mut();
            if sh.epoch != epoch || sh.closed.is_some() {
                return;
            }
            if sh.recovering {
                // A reconnect attempt failed: wake the recovery task, which
                // waits on these, and stop this attempt's IO tasks.
                let gone = Error::Disconnected(error.to_string());
                sh.epoch += 1;
                if let Some(c) = sh.connected.take() {
                    let _ = c.send(Err(gone.clone()));
                }
                for (_, w) in sh.opens.drain() {
                    let _ = w.send(Err(gone.clone()));
                }
                sh.gets.clear();
                for (_, q) in sh.replies.drain() {
                    for w in q {
                        let _ = w.send(Err(gone.clone()));
                    }
                }
                return;
            }
            let refused = matches!(
                error,
                Error::Protocol(
                    amqp::Error::AccessRefused(_)
                        | amqp::Error::MechanismNotOffered { .. }
                        | amqp::Error::FrameTooLarge { .. }
                ) | Error::Tls(_)
            );
            sh.topology.options.reconnect && sh.connected_once && !refused
        };
        if !recover {
            self.fail(error);
            return;
        }
        let gone = Error::Disconnected(error.to_string());
        {
            let mut sh = self.shared.borrow_mut();
            sh.recovering = true;
            sh.epoch += 1;
            for (_, w) in sh.opens.drain() {
                let _ = w.send(Err(gone.clone()));
            }
            sh.gets.clear();
            for (_, q) in sh.replies.drain() {
                for w in q {
                    let _ = w.send(Err(gone.clone()));
                }
            }
            // Unconfirmed at the cut: each waiting publisher hears it.
            sh.confirm_slab.fail_all(&gone);
            // Answers to deliveries of the dead connection: the broker
            // redelivers those messages.
            sh.deferred.clear();
            sh.returned.clear();
            sh.large_body = None;
        }
        log::warn!("amqp: connection lost ({error}); reconnecting");
        self.wake.room_made();
        self.wake.wake_writer();
        if let Some(me) = self.me.upgrade() {
            crate::spawn(super::recovery::recover(me));
        }
    }

    /// Ends the connection with `error`: every waiter gets it.
    pub fn fail(&self, error: Error) {
        let mut sh = self.shared.borrow_mut();
        sh.recovering = false;
        if sh.closed.is_none() {
            sh.closed = Some(error.clone());
        }
        let gone = match &error {
            Error::Disconnected(_) => error.clone(),
            other => Error::Disconnected(other.to_string()),
        };
        if let Some(c) = sh.connected.take() {
            let _ = c.send(Err(error));
        }
        for (_, w) in sh.opens.drain() {
            let _ = w.send(Err(gone.clone()));
        }
        sh.gets.clear();
        for (_, q) in sh.replies.drain() {
            for w in q {
                let _ = w.send(Err(gone.clone()));
            }
        }
        sh.confirm_slab.fail_all(&gone);
        sh.consumers.end_all(&gone);
        sh.deferred.clear();
        sh.large_body = None;
        drop(sh);
        self.wake.room_made();
        self.wake.wake_writer();
    }

    /// A weak handle on itself (for messages' ack handles).
    pub(crate) fn me(&self) -> std::rc::Weak<Inner> {
        self.me.clone()
    }

    pub(crate) fn on_delivery(&self, sh: &mut Shared, d: Delivery<'_>) {
        match d.kind {
            DeliveryKind::Deliver { consumer_tag, .. } => {
                let epoch = sh.epoch;
                if let Some(Sink::Stream(tx)) = sh.consumers.get_mut(d.channel, consumer_tag) {
                    let mut m = Message::from_delivery(&d);
                    m.conn = self.me.clone();
                    m.epoch = epoch;
                    let _ = tx.send(Ok(m));
                }
                // No consumer (cancelled by us): unacked, requeued by the
                // broker when the channel closes.
            }
            DeliveryKind::Return {
                reply_code,
                reply_text,
            } => sh
                .returned
                .entry(d.channel)
                .or_default()
                .push_back(Error::Returned {
                    code: reply_code,
                    text: reply_text.to_string(),
                }),
            DeliveryKind::Get { .. } => super::basic_get::on_get_ok(self, sh, &d),
        }
    }

    pub(crate) fn on_event(&self, sh: &mut Shared, event: Event) {
        match event {
            Event::Connected { .. } => {
                sh.connected_once = true;
                if let Some(c) = sh.connected.take() {
                    let _ = c.send(Ok(()));
                }
            }
            Event::ChannelOpened { channel } => {
                if let Some(w) = sh.opens.remove(&channel) {
                    let _ = w.send(Ok(()));
                }
            }
            Event::ChannelClosed {
                channel, reason, ..
            } => {
                let err = match &reason {
                    Some(r) => Error::ChannelClosed(r.clone()),
                    None => Error::Protocol(amqp::Error::ChannelNotOpen(channel)),
                };
                if let Some(r) = reason {
                    sh.channel_errors.insert(channel, r);
                }
                sh.topology.channel_closed(channel);
                if let Some(w) = sh.opens.remove(&channel) {
                    let _ = w.send(Err(err.clone()));
                }
                sh.gets.remove(&channel);
                for w in sh.replies.remove(&channel).unwrap_or_default() {
                    let _ = w.send(Err(err.clone()));
                }
                sh.confirm_slab.fail_channel(channel, &err);
                sh.returned.remove(&channel);
                sh.deferred.retain(|(ch, _, _)| *ch != channel);
                sh.consumers.end_channel(channel, &err);
            }
            Event::Reply { channel, reply } => {
                if matches!(reply, Reply::GetEmpty) {
                    super::basic_get::on_get_empty(sh, channel);
                }
                if let Some(w) = sh.replies.get_mut(&channel).and_then(|q| q.pop_front()) {
                    let _ = w.send(Ok(reply));
                }
            }
            Event::Confirm {
                channel,
                delivery_tag,
                multiple,
                ack,
                ..
            } => {
                // RabbitMQ sends a mandatory publish's basic.return right
                // before the confirm whose tag is that publish.
                let mut returned = sh.returned.get_mut(&channel).and_then(|q| q.pop_front());
                sh.confirm_slab
                    .settle(channel, delivery_tag, multiple, |tag| {
                        if !ack {
                            Err(Error::Nacked { delivery_tag: tag })
                        } else if tag == delivery_tag {
                            returned.take().map_or(Ok(()), Err)
                        } else {
                            Ok(())
                        }
                    });
                self.wake.room_made();
            }
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
            } => {
                let tag = consumer_tag.to_string();
                sh.topology.forget_consumer(channel, &tag);
                if let Some(sink) = sh.consumers.remove(channel, &tag) {
                    sink.end(Error::ConsumerCancelled { consumer_tag: tag });
                }
            }
            // A resumed channel.flow or an unblocked connection: publishes
            // waiting for room retry.
            Event::Unblocked | Event::Flow { active: true, .. } => self.wake.room_made(),
            _ => {}
        }
    }
}

/// A connection to RabbitMQ; cheap to clone (all clones share it).
///
/// Not `Send`: it lives on the runtime thread that made it, like the NATS
/// and NSQ clients. When the last handle (connection, channel or consumer)
/// is dropped, the connection is closed (connection.close, then the socket)
/// and its tasks end.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Rc<Inner>,
    _last: Rc<LastHandle>,
}

/// Closes the connection when the last handle goes (the IO tasks hold
/// `Inner` too, so it would otherwise live as long as the socket).
struct LastHandle(std::rc::Weak<Inner>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        if inner.shared.borrow().closed.is_some() {
            return;
        }
        let _ = inner.shared.borrow_mut().session.close(now());
        inner.fail(Error::Disconnected("the connection was dropped".into()));
    }
}

impl Connection {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Connection, Error> {
        Self::connect_with(ConnectOptions::new(url)).await
    }

    /// Connects, logs in and opens the URL's virtual host.
    pub async fn connect_with(options: ConnectOptions) -> Result<Connection, Error> {
        let url = AmqpUrl::parse(&options.url)?;
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| Error::Url(format!("{}: no address", url.host)))?;
        let (read, write, tls) = super::tls::dial(&options, addr).await?;
        let mut core = if options.external {
            CoreOptions::external(&url.vhost)
        } else {
            CoreOptions::new(&url.user, &url.password, &url.vhost)
        }
        .map_err(|e| Error::Url(e.to_string()))?;
        if !options.connection_name.is_empty() {
            core = core
                .with_connection_name(&options.connection_name)
                .map_err(|e| Error::Url(e.to_string()))?;
        }
        core.heartbeat = options.heartbeat;
        core.rx_capacity = options.rx_capacity;
        core.handshake_timeout =
            CoreDuration::from_millis(options.handshake_timeout.as_millis() as u64);
        core.blocked_timeout = options
            .blocked_timeout
            .map(|d| CoreDuration::from_millis(d.as_millis() as u64));
        let mut session = CoreSession::new(core, vec![0u8; options.tx_capacity]);
        session.start(now());
        let (tx, rx) = oneshot::channel();
        let inner = Rc::new_cyclic(|me| Inner {
            me: me.clone(),
            shared: RefCell::new(Shared {
                session,
                closed: None,
                connected: Some(tx),
                opens: HashMap::new(),
                replies: HashMap::new(),
                gets: HashMap::new(),
                confirm_slab: ConfirmSlab::default(),
                deferred: VecDeque::new(),
                returned: HashMap::new(),
                consumers: Consumers::default(),
                channel_errors: HashMap::new(),
                writing: false,
                large_body: None,
                epoch: 1,
                recovering: false,
                topology: super::recovery::Topology::new(addr, options.clone()),
                connected_once: false,
            }),
            wake: Wakeups::new(),
            direct: RefCell::new(None),
        });
        super::io_tasks::spawn_io(&inner, read, write, tls, 1);
        match rx.await {
            Ok(Ok(())) => Ok(Connection {
                _last: Rc::new(LastHandle(Rc::downgrade(&inner))),
                inner,
            }),
            Ok(Err(e)) if inner.shared.borrow().closed.is_none() => {
                // Failed before the handshake completed: stop the tasks.
                inner.fail(e.clone());
                Err(e)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Disconnected("connection task ended".into())),
        }
    }

    /// Opens a channel.
    pub async fn channel(&self) -> Result<Channel, Error> {
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let id = self
            .inner
            .with_room(|sh| {
                let id = sh.session.open_channel()?;
                if let Some(tx) = tx.take() {
                    sh.opens.insert(id, tx);
                }
                Ok(id)
            })
            .await?;
        rx.await
            .map_err(|_| Error::Disconnected("connection ended".into()))??;
        self.inner.shared.borrow_mut().topology.channel_opened(id);
        Ok(Channel::new(self.clone(), id))
    }

    /// Closes the connection gracefully (connection.close / close-ok).
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.with_room(|sh| sh.session.close(now())).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let closed =
            || (self.inner.shared.borrow().session.state() == amqp::State::Closed).then_some(());
        // Past the deadline the socket is dropped anyway.
        let _ = self.inner.wake.wait_until(Some(deadline), closed).await;
        Ok(())
    }

    /// Waits until everything queued so far (publishes, acks, nacks, a
    /// large body...) was written to the socket.
    pub async fn flush(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let flushed = || {
            let sh = inner.shared.borrow();
            if let Some(e) = &sh.closed {
                return Some(Err(e.clone()));
            }
            let idle = sh.session.transmit().is_empty() && !sh.session.body_in_flight();
            if idle && !sh.writing {
                return Some(Ok(()));
            }
            inner.wake.wake_writer();
            None
        };
        inner.wake.wait_until(None, flushed).await.unwrap_or(Ok(()))
    }

    /// Why the connection ended, if it did.
    pub fn error(&self) -> Option<Error> {
        self.inner.shared.borrow().closed.clone()
    }

    /// What client and broker negotiated (channel-max, frame-max, heartbeat).
    pub fn tune(&self) -> amqp::Tune {
        self.inner.shared.borrow().session.tune()
    }

    /// True while the broker blocks publishing (a resource alarm).
    pub fn is_blocked(&self) -> bool {
        self.inner.shared.borrow().session.is_blocked()
    }
}
