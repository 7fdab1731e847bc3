//! The consumer: connections per (nsqd, couplet), message dispatch to the
//! application's [`Handler`] by class, RDY through the core's controller.
//!
//! Steady-state consume path: a message's body is copied once from the
//! receive buffer into a pooled `Vec` (returned to the pool after the
//! handler), queued for a fixed set of worker tasks (one per
//! `max_in_flight` slot, capped at [`MAX_WORKERS`]), and FIN/REQ/RDY are
//! encoded into the connection's reused buffers: no heap allocation per
//! message once the pools are warm.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use courier_core::nsq::{ConnId, Event, MessageId, RdyConfig, RdyController, RdyPolicy};
use courier_core::time::Duration as CoreDuration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::config::reconnect_policy;
use super::conn::{self, Conn, ConnInfo, Sink};
use super::{lookup, Callbacks, Config, Error, NoCallbacks};
use crate::reconnect::{Backoff, RepeatFilter};
use crate::session_io::Clock;

/// Most connections one consumer tracks (nodes x couplets).
pub const MAX_CONNS: usize = 512;
/// Most handler tasks; `max_in_flight` beyond this still bounds RDY.
pub const MAX_WORKERS: usize = 4096;

/// Where the nsqd nodes come from.
#[derive(Clone, Debug)]
pub enum Nodes {
    /// nsqd TCP addresses: connect to each and subscribe every couplet.
    Server(ServerNodes),
    /// nsqlookupd HTTP addresses, polled for the nsqd nodes of each topic.
    Lookup(LookupNodes),
}

/// nsqd TCP `host:port` addresses (the nsqs seed's `ServerNodes`).
#[derive(Clone, Debug)]
pub struct ServerNodes(pub Vec<String>);

impl ServerNodes {
    /// These nsqd nodes.
    pub fn new<I: IntoIterator<Item = A>, A: Into<String>>(nodes: I) -> Self {
        ServerNodes(nodes.into_iter().map(Into::into).collect())
    }
}

/// nsqlookupd HTTP addresses, `http://host:port` (the seed's
/// `LookupNodes`).
#[derive(Clone, Debug)]
pub struct LookupNodes(pub Vec<String>);

impl LookupNodes {
    /// These nsqlookupd nodes.
    pub fn new<I: IntoIterator<Item = A>, A: Into<String>>(nodes: I) -> Self {
        LookupNodes(nodes.into_iter().map(Into::into).collect())
    }
}

impl From<ServerNodes> for Nodes {
    fn from(n: ServerNodes) -> Self {
        Nodes::Server(n)
    }
}

impl From<LookupNodes> for Nodes {
    fn from(n: LookupNodes) -> Self {
        Nodes::Lookup(n)
    }
}

/// Why a handler failed; the message is requeued (REQ) after
/// `requeue_delay` or the configured backoff delay.
#[derive(Debug, Clone)]
pub struct HandlerError {
    /// What went wrong (logged).
    pub reason: Cow<'static, str>,
    /// REQ delay; None uses `Config::requeue_delay * attempts`.
    pub requeue_delay: Option<Duration>,
}

impl HandlerError {
    /// A failure with the default requeue delay.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        HandlerError {
            reason: reason.into(),
            requeue_delay: None,
        }
    }

    /// A failure requeued after `delay`.
    pub fn requeue_after(reason: impl Into<Cow<'static, str>>, delay: Duration) -> Self {
        HandlerError {
            reason: reason.into(),
            requeue_delay: Some(delay),
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HandlerError {}

/// A message handed to a handler. The body is owned (pooled); FIN, REQ
/// and TOUCH go to the connection it came from.
pub struct Message {
    id: MessageId,
    attempts: u16,
    timestamp_ns: i64,
    body: Vec<u8>,
    conn: Rc<Conn>,
    /// Some(true) after FIN, Some(false) after REQ.
    outcome: Cell<Option<bool>>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("body_len", &self.body.len())
            .field("nsqd", &self.conn.info.addr)
            .finish()
    }
}

impl Message {
    /// The id nsqd assigned.
    pub fn id(&self) -> &MessageId {
        &self.id
    }
    /// Deliveries so far, this one included (1 the first time).
    pub fn attempts(&self) -> u16 {
        self.attempts
    }
    /// When nsqd received it, in nanoseconds since the Unix epoch.
    pub fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The connection (nsqd, topic, channel) it came from.
    pub fn connection(&self) -> &ConnInfo {
        &self.conn.info
    }
    /// True once FIN or REQ was sent for it.
    pub fn has_responded(&self) -> bool {
        self.outcome.get().is_some()
    }
    /// `TOUCH`: resets nsqd's timeout for this message (long handlers).
    pub fn touch(&self) -> Result<(), Error> {
        self.conn.with_session(|s| s.touch(&self.id))
    }
    /// `FIN` now (normally done after the handler returns Ok).
    pub fn finish(&self) -> Result<(), Error> {
        if self.has_responded() {
            return Ok(());
        }
        self.outcome.set(Some(true));
        self.conn.with_session(|s| s.fin(&self.id))
    }
    /// `REQ` now: nsqd redelivers it after `delay`.
    pub fn requeue(&self, delay: Duration) -> Result<(), Error> {
        if self.has_responded() {
            return Ok(());
        }
        self.outcome.set(Some(false));
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.conn.with_session(|s| s.req(&self.id, ms))
    }
}

/// The application's message handling (the nsqs seed's
/// `MessageHandler`): classify each message into a class and a context,
/// then handle it per class; [`Handler::default_handler`] takes the
/// unclassified ones.
///
/// Returning `Ok` FINs the message (unless `Config::auto_finish` is off),
/// `Err` REQs it with a delay. After `Config::max_attempts` deliveries
/// [`Handler::give_up`] runs instead and the message is FIN'd.
///
/// ```
/// use courier::nsq::{Handler, HandlerError, Message};
///
/// enum Class { Dummy, Alert }
///
/// struct App;
///
/// impl Handler for App {
///     type Class = Class;
///     type Context = ();
///     fn classify(&self, m: &Message) -> Option<(Class, ())> {
///         match m.body().first() {
///             Some(b'd') => Some((Class::Dummy, ())),
///             Some(b'a') => Some((Class::Alert, ())),
///             _ => None,
///         }
///     }
///     async fn handle(&self, class: Class, _: (), m: &Message) -> Result<(), HandlerError> {
///         match class {
///             Class::Dummy => Ok(()),
///             Class::Alert if m.attempts() < 3 => Err(HandlerError::new("pager busy")),
///             Class::Alert => Ok(()),
///         }
///     }
/// }
/// ```
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Handler: 'static {
    /// The message classes (an enum, a `&'static str`...).
    type Class;
    /// What classification learned (e.g. the decoded body).
    type Context;
    /// Classifies a message; `None` sends it to the default handler.
    fn classify(&self, message: &Message) -> Option<(Self::Class, Self::Context)>;
    /// Handles a classified message.
    async fn handle(
        &self,
        class: Self::Class,
        context: Self::Context,
        message: &Message,
    ) -> Result<(), HandlerError>;
    /// Handles an unclassified message; the default logs and FINs it.
    async fn default_handler(&self, message: &Message) -> Result<(), HandlerError> {
        log::warn!("squashing unclassified message {}", message.id());
        Ok(())
    }
    /// Runs when a message exceeded `max_attempts`; it is FIN'd after.
    fn give_up(&self, message: &Message) {
        log::warn!(
            "giving up on message {} after {} attempts",
            message.id(),
            message.attempts()
        );
    }
}

struct Policy(Rc<dyn Callbacks>);

impl RdyPolicy for Policy {
    fn rdy_replenish(&mut self, conn: ConnId, current_rdy: u32, original_rdy: u32) -> u32 {
        self.0.rdy_replenish(conn, current_rdy, original_rdy)
    }
}

struct Delivery {
    conn: Rc<Conn>,
    id: MessageId,
    attempts: u16,
    timestamp_ns: i64,
    body: Vec<u8>,
}

struct Keeper {
    retired: Rc<Cell<bool>>,
    current: Rc<RefCell<Option<Rc<Conn>>>>,
    task: JoinHandle<()>,
}

struct State {
    rdy: RdyController<MAX_CONNS, Policy>,
    /// Subscribed connections.
    conns: HashMap<ConnId, Rc<Conn>>,
    /// Connections that answered CLS with CLOSE_WAIT.
    close_waited: HashSet<ConnId>,
    queue: VecDeque<Delivery>,
    pool: Vec<Vec<u8>>,
    /// Messages queued or being handled.
    busy: usize,
    stopping: bool,
    workers_exit: bool,
    next_id: u64,
    keepers: HashMap<(String, usize), Keeper>,
    first_round_pending: usize,
    first_round_failures: Vec<String>,
    /// The first failure of the first round that retrying will not fix
    /// (credentials, TLS, not an nsqd): `start` returns it as it is.
    first_round_definite: Option<Error>,
    /// The last connection failure (`addr: error`), so a `start` whose
    /// connections all died right after subscribing can say why.
    last_failure: Option<String>,
    max_seen_in_flight: u32,
}

struct Inner<H: Handler> {
    couplets: Vec<(String, String)>,
    config: Rc<Config>,
    /// One clock for the RDY controller and every connection's session.
    clock: Clock,
    callbacks: Rc<dyn Callbacks>,
    handler: H,
    state: RefCell<State>,
    work: Notify,
    rdy_wake: Notify,
    stop_wake: Notify,
}

/// Builds a [`Consumer`]; see [`Consumer::builder`].
pub struct ConsumerBuilder<H: Handler> {
    couplets: Vec<(String, String)>,
    nodes: Nodes,
    max_in_flight: u32,
    handler: H,
    config: Config,
    callbacks: Rc<dyn Callbacks>,
}

impl<H: Handler> ConsumerBuilder<H> {
    /// Connection and delivery settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Connection callbacks (connect, identify, broken, message_received,
    /// rdy_replenish).
    pub fn callbacks(mut self, callbacks: Rc<dyn Callbacks>) -> Self {
        self.callbacks = callbacks;
        self
    }

    /// Starts consuming. With [`ServerNodes`], returns after one connection
    /// attempt to each node (an error if none could subscribe; unreachable
    /// ones are retried in the background). With [`LookupNodes`], returns
    /// after the first poll.
    pub async fn start(self) -> Result<Consumer<H>, Error> {
        if self.couplets.is_empty() {
            return Err(Error::Config("no (topic, channel) couplet given".into()));
        }
        let node_count = match &self.nodes {
            Nodes::Server(n) => n.0.len(),
            Nodes::Lookup(n) => n.0.len(),
        };
        if node_count == 0 {
            return Err(Error::NoNodes);
        }
        let mut rdy_config = RdyConfig::new(self.max_in_flight);
        rdy_config.backoff_base = CoreDuration::from_millis(self.config.backoff.as_millis() as u64);
        rdy_config.backoff_max =
            CoreDuration::from_millis(self.config.max_backoff.as_millis() as u64);
        let workers = (self.max_in_flight as usize).clamp(1, MAX_WORKERS);
        let inner = Rc::new(Inner {
            couplets: self.couplets,
            config: Rc::new(self.config),
            clock: Clock::new(),
            callbacks: self.callbacks.clone(),
            handler: self.handler,
            state: RefCell::new(State {
                rdy: RdyController::with_policy(rdy_config, Policy(self.callbacks)),
                conns: HashMap::new(),
                close_waited: HashSet::new(),
                queue: VecDeque::with_capacity(workers),
                pool: Vec::with_capacity(workers),
                busy: 0,
                stopping: false,
                workers_exit: false,
                next_id: 0,
                keepers: HashMap::new(),
                first_round_pending: 0,
                first_round_failures: Vec::new(),
                first_round_definite: None,
                last_failure: None,
                max_seen_in_flight: 0,
            }),
            work: Notify::new(),
            rdy_wake: Notify::new(),
            stop_wake: Notify::new(),
        });
        let mut tasks = Vec::with_capacity(workers + 2);
        for _ in 0..workers {
            tasks.push(crate::spawn(worker(inner.clone())));
        }
        tasks.push(crate::spawn(rdy_timer(inner.clone())));
        let consumer = Consumer {
            inner: inner.clone(),
            tasks: RefCell::new(tasks),
        };
        match self.nodes {
            Nodes::Server(nodes) => {
                for addr in &nodes.0 {
                    for ci in 0..inner.couplets.len() {
                        inner.state.borrow_mut().first_round_pending += 1;
                        add_keeper(&inner, addr.clone(), ci);
                    }
                }
                consumer.wait_first_round().await;
                if !consumer.is_alive() {
                    let error = {
                        let mut st = inner.state.borrow_mut();
                        let mut attempts = std::mem::take(&mut st.first_round_failures);
                        if attempts.is_empty() {
                            // Subscribed, then lost before start returned.
                            attempts.extend(st.last_failure.take());
                        }
                        if attempts.is_empty() {
                            attempts.push(format!(
                                "no connection was subscribed within {:?} (nsqd did not \
                                 finish the handshake)",
                                inner.config.connect_timeout
                            ));
                        }
                        st.first_round_definite
                            .take()
                            .unwrap_or(Error::Unreachable { attempts })
                    };
                    consumer.stop().await;
                    return Err(error);
                }
            }
            Nodes::Lookup(lookupds) => {
                poll_lookupds(&inner, &lookupds.0, true).await;
                consumer.wait_first_round().await;
                let poller = crate::spawn(lookup_loop(inner.clone(), lookupds.0));
                consumer.tasks.borrow_mut().push(poller);
            }
        }
        Ok(consumer)
    }
}

/// Consumes (topic, channel) couplets from nsqd; see [`Consumer::builder`].
pub struct Consumer<H: Handler> {
    inner: Rc<Inner<H>>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
}

impl<H: Handler> Consumer<H> {
    /// A consumer of `couplets` on `nodes`, with at most `max_in_flight`
    /// un-finished messages across all connections, handled by `handler`.
    ///
    /// ```no_run
    /// # use courier::nsq::*;
    /// # struct App;
    /// # impl Handler for App { type Class = (); type Context = ();
    /// #   fn classify(&self, _: &Message) -> Option<((), ())> { Some(((), ())) }
    /// #   async fn handle(&self, _: (), _: (), _: &Message) -> Result<(), HandlerError> { Ok(()) } }
    /// courier::run(async {
    ///     let consumer = Consumer::builder(
    ///         [("test_topic", "test_channel")],
    ///         LookupNodes::new(["http://127.0.0.1:4161"]),
    ///         500,
    ///         App,
    ///     )
    ///     .start()
    ///     .await?;
    ///     while consumer.is_alive() {
    ///         tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///     }
    ///     consumer.stop().await;
    ///     Ok::<_, Error>(())
    /// }).unwrap();
    /// ```
    pub fn builder<I, T, C>(
        couplets: I,
        nodes: impl Into<Nodes>,
        max_in_flight: u32,
        handler: H,
    ) -> ConsumerBuilder<H>
    where
        I: IntoIterator<Item = (T, C)>,
        T: Into<String>,
        C: Into<String>,
    {
        ConsumerBuilder {
            couplets: couplets
                .into_iter()
                .map(|(t, c)| (t.into(), c.into()))
                .collect(),
            nodes: nodes.into(),
            max_in_flight,
            handler,
            config: Config::default(),
            callbacks: Rc::new(NoCallbacks),
        }
    }

    /// True while at least one connection is subscribed.
    pub fn is_alive(&self) -> bool {
        !self.inner.state.borrow().conns.is_empty()
    }

    /// Subscribed connections right now.
    pub fn connection_count(&self) -> usize {
        self.inner.state.borrow().conns.len()
    }

    /// The nsqd addresses currently subscribed to.
    pub fn connected_nodes(&self) -> Vec<String> {
        let st = self.inner.state.borrow();
        let mut v: Vec<String> = st.conns.values().map(|c| c.info.addr.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The highest number of un-finished messages the RDY controller ever
    /// counted (a check that `max_in_flight` held).
    pub fn max_seen_in_flight(&self) -> u32 {
        self.inner.state.borrow().max_seen_in_flight
    }

    /// The handler (e.g. to read counters it keeps).
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// Changes `max_in_flight` (0 pauses).
    pub fn set_max_in_flight(&self, max_in_flight: u32) {
        let mut st = self.inner.state.borrow_mut();
        st.rdy
            .set_max_in_flight(max_in_flight, self.inner.clock.now());
        apply_rdy(&mut st);
        drop(st);
        self.inner.rdy_wake.notify_one();
    }

    async fn wait_first_round(&self) {
        let limit = self.inner.config.connect_timeout * 2 + Duration::from_secs(1);
        let _ = tokio::time::timeout(limit, async {
            while self.inner.state.borrow().first_round_pending > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    /// Graceful stop (go-nsq #323 done right): `CLS` on every connection,
    /// wait until nsqd answered `CLOSE_WAIT` and every in-flight handler
    /// finished (its FIN/REQ sent), then close the connections. Bounded by
    /// `Config::stop_timeout`.
    pub async fn stop(&self) {
        let conns: Vec<Rc<Conn>> = {
            let mut st = self.inner.state.borrow_mut();
            if st.stopping {
                return;
            }
            st.stopping = true;
            st.conns.values().cloned().collect()
        };
        self.inner.stop_wake.notify_waiters();
        for conn in &conns {
            let _ = conn.with_session(|s| s.close());
        }
        let inner = &self.inner;
        let drained = async {
            loop {
                {
                    let st = inner.state.borrow();
                    let all_closed = conns
                        .iter()
                        .all(|c| c.is_ended() || st.close_waited.contains(&c.info.id));
                    if all_closed && st.busy == 0 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(inner.config.stop_timeout, drained)
            .await
            .is_err()
        {
            log::warn!(
                "consumer stop: handlers still busy after {:?}; closing anyway",
                inner.config.stop_timeout
            );
        }
        let keepers: Vec<Keeper> = {
            let mut st = inner.state.borrow_mut();
            st.workers_exit = true;
            st.keepers.drain().map(|(_, k)| k).collect()
        };
        for k in &keepers {
            k.retired.set(true);
            if let Some(c) = k.current.borrow().as_ref() {
                c.shutdown();
            }
        }
        self.inner.work.notify_waiters();
        self.inner.rdy_wake.notify_one();
        for k in keepers {
            if tokio::time::timeout(Duration::from_secs(5), k.task)
                .await
                .is_err()
            {
                log::warn!("consumer stop: a connection did not close in 5 s");
            }
        }
        for t in self.tasks.borrow_mut().drain(..) {
            t.abort();
        }
    }
}

impl<H: Handler> Drop for Consumer<H> {
    /// Dropping without [`Consumer::stop`] closes every connection at once
    /// (in-flight messages are redelivered by nsqd after their timeout).
    fn drop(&mut self) {
        if let Ok(mut st) = self.inner.state.try_borrow_mut() {
            st.stopping = true;
            st.workers_exit = true;
            for (_, k) in st.keepers.drain() {
                k.retired.set(true);
                k.task.abort();
            }
            st.conns.clear();
        }
        for t in self.tasks.get_mut().drain(..) {
            t.abort();
        }
    }
}

fn apply_rdy(st: &mut State) {
    while let Some((id, count)) = st.rdy.poll_update() {
        if let Some(conn) = st.conns.get(&id) {
            if let Err(e) = conn.with_session(|s| s.ready(count)) {
                log::debug!("RDY {count} to {}: {e}", conn.info.addr);
            }
        }
    }
}

fn add_keeper<H: Handler>(inner: &Rc<Inner<H>>, addr: String, couplet: usize) {
    let retired = Rc::new(Cell::new(false));
    let current = Rc::new(RefCell::new(None));
    let task = crate::spawn(keep_connected(
        inner.clone(),
        addr.clone(),
        couplet,
        retired.clone(),
        current.clone(),
    ));
    inner.state.borrow_mut().keepers.insert(
        (addr, couplet),
        Keeper {
            retired,
            current,
            task,
        },
    );
}

fn first_round_done(st: &mut State, failure: Option<String>) {
    if st.first_round_pending > 0 {
        st.first_round_pending -= 1;
        if let Some(f) = failure {
            st.first_round_failures.push(f);
        }
    }
}

/// Connects, runs, and reconnects one (nsqd, couplet) until stopped or
/// retired (vanished from nsqlookupd).
async fn keep_connected<H: Handler>(
    inner: Rc<Inner<H>>,
    addr: String,
    couplet: usize,
    retired: Rc<Cell<bool>>,
    current: Rc<RefCell<Option<Rc<Conn>>>>,
) {
    let mut backoff = Backoff::new(reconnect_policy(&inner.config));
    // The same failure is logged once a minute with its count, not per
    // attempt.
    let mut repeats = RepeatFilter::new(Duration::from_secs(60));
    let mut warn = |line: String| {
        if let Some(n) = repeats.check(&line, std::time::Instant::now()) {
            if n > 0 {
                log::warn!("{line} (and {n} more like it in the last minute)");
            } else {
                log::warn!("{line}");
            }
        }
    };
    let mut first = true;
    loop {
        if retired.get() || inner.state.borrow().stopping {
            break;
        }
        let id = {
            let mut st = inner.state.borrow_mut();
            st.next_id += 1;
            ConnId(st.next_id)
        };
        let (topic, channel) = inner.couplets[couplet].clone();
        let info = ConnInfo {
            id,
            addr: addr.clone(),
            topic: Some(topic),
            channel: Some(channel),
        };
        let started = std::time::Instant::now();
        match conn::open(info, inner.config.clone(), inner.clock, false).await {
            Err(e) => {
                backoff.record_failure();
                warn(format!("nsqd {addr}: {e}"));
                let mut st = inner.state.borrow_mut();
                st.last_failure = Some(format!("{addr}: {e}"));
                if first {
                    first_round_done(&mut st, Some(format!("{addr}: {e}")));
                    if e.is_definite() && st.first_round_definite.is_none() {
                        st.first_round_definite = Some(e);
                    }
                }
            }
            Ok((conn, read, write)) => {
                inner.callbacks.connect(&conn.info);
                *current.borrow_mut() = Some(conn.clone());
                let sink = ConsumerSink {
                    inner: inner.clone(),
                    first: Cell::new(first),
                };
                let result = {
                    // nsqd must finish the handshake (IDENTIFY, AUTH, SUB)
                    // within connect_timeout, as for the producer: an nsqd
                    // that never answers IDENTIFY is an error, not silence.
                    let limit = inner.config.connect_timeout;
                    let drive = conn::drive(conn.clone(), read, write, &sink);
                    let watchdog = async {
                        tokio::time::sleep(limit).await;
                        if inner.state.borrow().conns.contains_key(&id) {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        r = drive => r,
                        _ = watchdog => {
                            conn.shutdown();
                            Err(Error::TimedOut {
                                operation: "nsqd handshake",
                                after: limit,
                            })
                        }
                    }
                };
                *current.borrow_mut() = None;
                let subscribed = {
                    let mut st = inner.state.borrow_mut();
                    let was = st.conns.remove(&id).is_some();
                    st.close_waited.remove(&id);
                    st.rdy.remove_connection(id, inner.clock.now());
                    apply_rdy(&mut st);
                    let reason = match &result {
                        Ok(()) => "closed during the handshake".to_string(),
                        Err(e) => e.to_string(),
                    };
                    st.last_failure = Some(format!("{addr}: {reason}"));
                    if sink.first.get() {
                        first_round_done(&mut st, Some(format!("{addr}: {reason}")));
                        if let Err(e) = &result {
                            if e.is_definite() && st.first_round_definite.is_none() {
                                // Re-made: Error is not Clone (io::Error).
                                st.first_round_definite = e.definite_copy();
                            }
                        }
                    }
                    was
                };
                inner.rdy_wake.notify_one();
                let error = match result {
                    Ok(()) => Error::Closed,
                    Err(e) => e,
                };
                inner.callbacks.broken(&conn.info, &error);
                // A subscription that died within its first seconds (nsqd
                // shakes hands, then sends garbage or closes) is a failed
                // attempt: the backoff keeps growing.
                if !subscribed {
                    backoff.record_failure();
                } else {
                    backoff.connection_ended(started.elapsed());
                }
                log::info!("nsqd {addr} connection ended: {error}");
            }
        }
        first = false;
        if retired.get() || inner.state.borrow().stopping {
            break;
        }
        // Every reconnect waits a jittered step, growing with the
        // failures since the last healthy connection.
        let delay = backoff.delay_for(backoff.failed_attempts().saturating_sub(1));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = inner.stop_wake.notified() => {}
        }
    }
}

struct ConsumerSink<H: Handler> {
    inner: Rc<Inner<H>>,
    /// Still in the first connection attempt (reported to `start`).
    first: Cell<bool>,
}

impl<H: Handler> Sink for ConsumerSink<H> {
    fn on_message(&self, conn: &Rc<Conn>, m: courier_core::nsq::Message<'_>) -> Result<(), Error> {
        let inner = &self.inner;
        inner.callbacks.message_received(&conn.info, &m);
        let mut st = inner.state.borrow_mut();
        let at = inner.clock.now();
        let admission = st.rdy.on_message(conn.info.id, at);
        if admission == courier_core::nsq::Admission::OverBudget {
            // nsqd sent beyond the RDY we granted: hand it back at
            // once instead of exceeding max_in_flight.
            let _ = conn.with_session(|s| s.req(&m.id, 0));
            st.rdy.on_finished(conn.info.id, true, at);
            apply_rdy(&mut st);
            return Ok(());
        }
        let in_flight = st.rdy.in_flight();
        st.max_seen_in_flight = st.max_seen_in_flight.max(in_flight);
        let mut body = st.pool.pop().unwrap_or_default();
        body.extend_from_slice(m.body);
        st.queue.push_back(Delivery {
            conn: conn.clone(),
            id: m.id,
            attempts: m.attempts,
            timestamp_ns: m.timestamp_ns,
            body,
        });
        st.busy += 1;
        apply_rdy(&mut st);
        drop(st);
        inner.work.notify_one();
        inner.rdy_wake.notify_one();
        Ok(())
    }

    fn on_event(&self, conn: &Rc<Conn>, event: Event) -> Result<(), Error> {
        let inner = &self.inner;
        match event {
            Event::Identified => inner
                .callbacks
                .identify(&conn.info, conn.negotiated().as_ref()),
            Event::Ready => {
                let (topic, channel) = match (&conn.info.topic, &conn.info.channel) {
                    (Some(t), Some(c)) => (t.as_str(), c.as_str()),
                    _ => {
                        return Err(Error::Config(
                            "consumer connection without a couplet".into(),
                        ))
                    }
                };
                conn.with_session(|s| s.subscribe(topic, channel))?;
            }
            Event::Subscribed => {
                let mut st = inner.state.borrow_mut();
                if st.stopping {
                    conn.shutdown();
                    return Ok(());
                }
                if let Err(e) =
                    st.rdy
                        .add_connection(conn.info.id, conn.max_rdy(), inner.clock.now())
                {
                    return Err(Error::Config(e.to_string()));
                }
                st.conns.insert(conn.info.id, conn.clone());
                if self.first.replace(false) {
                    first_round_done(&mut st, None);
                }
                apply_rdy(&mut st);
                drop(st);
                inner.rdy_wake.notify_one();
            }
            Event::Closed => {
                inner.state.borrow_mut().close_waited.insert(conn.info.id);
            }
            Event::Error(e) => log::warn!("nsqd {}: {e}", conn.info.addr),
            _ => {}
        }
        Ok(())
    }
}

async fn worker<H: Handler>(inner: Rc<Inner<H>>) {
    loop {
        let delivery = loop {
            {
                let mut st = inner.state.borrow_mut();
                if let Some(d) = st.queue.pop_front() {
                    break d;
                }
                if st.workers_exit {
                    return;
                }
            }
            inner.work.notified().await;
        };
        let message = Message {
            id: delivery.id,
            attempts: delivery.attempts,
            timestamp_ns: delivery.timestamp_ns,
            body: delivery.body,
            conn: delivery.conn,
            outcome: Cell::new(None),
        };
        let config = &inner.config;
        let success = if config.max_attempts > 0 && message.attempts > config.max_attempts {
            inner.handler.give_up(&message);
            let _ = message.finish();
            true
        } else {
            let handling = std::panic::AssertUnwindSafe(async {
                match inner.handler.classify(&message) {
                    Some((class, context)) => inner.handler.handle(class, context, &message).await,
                    None => inner.handler.default_handler(&message).await,
                }
            });
            // A panicking handler must not take its worker (and the
            // message's in-flight slot) with it: it counts as a failure.
            let result = match futures::FutureExt::catch_unwind(handling).await {
                Ok(result) => result,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("a non-string payload");
                    log::error!("handler panicked on message {}: {what}", message.id);
                    Err(HandlerError::new("the handler panicked"))
                }
            };
            match (result, message.outcome.get()) {
                (_, Some(done)) => done,
                (Ok(()), None) => {
                    if config.auto_finish {
                        let _ = message.finish();
                    }
                    true
                }
                (Err(e), None) => {
                    let delay = e.requeue_delay.unwrap_or_else(|| {
                        (config.requeue_delay * message.attempts as u32)
                            .min(config.max_requeue_delay)
                    });
                    log::debug!("message {} failed ({e}); REQ in {delay:?}", message.id);
                    let _ = message.requeue(delay);
                    false
                }
            }
        };
        let conn_id = message.conn.info.id;
        let Message { mut body, conn, .. } = message;
        drop(conn);
        body.clear();
        let mut st = inner.state.borrow_mut();
        st.pool.push(body);
        st.busy = st.busy.saturating_sub(1);
        st.rdy.on_finished(conn_id, success, inner.clock.now());
        apply_rdy(&mut st);
        drop(st);
        inner.rdy_wake.notify_one();
    }
}

async fn rdy_timer<H: Handler>(inner: Rc<Inner<H>>) {
    loop {
        let deadline = {
            let st = inner.state.borrow();
            if st.workers_exit {
                return;
            }
            st.rdy.poll_timeout()
        };
        tokio::select! {
            _ = inner.clock.sleep_until(deadline) => {}
            _ = inner.rdy_wake.notified() => {}
        }
        let mut st = inner.state.borrow_mut();
        let at = inner.clock.now();
        if st.rdy.poll_timeout().is_some_and(|d| at >= d) {
            st.rdy.handle_timeout(at);
            apply_rdy(&mut st);
        }
    }
}

async fn lookup_loop<H: Handler>(inner: Rc<Inner<H>>, lookupds: Vec<String>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.config.lookup_poll_interval) => {}
            _ = inner.stop_wake.notified() => {}
        }
        if inner.state.borrow().stopping {
            return;
        }
        poll_lookupds(&inner, &lookupds, false).await;
    }
}

/// Queries every nsqlookupd for every topic; connects to new producers and
/// retires the ones no answering nsqlookupd lists any more.
async fn poll_lookupds<H: Handler>(inner: &Rc<Inner<H>>, lookupds: &[String], first: bool) {
    let timeout = inner.config.connect_timeout;
    let mut topics: Vec<&str> = inner.couplets.iter().map(|(t, _)| t.as_str()).collect();
    topics.sort();
    topics.dedup();
    let mut want: HashSet<(String, usize)> = HashSet::new();
    let mut answered: HashSet<&str> = HashSet::new();
    for topic in &topics {
        for base in lookupds {
            match lookup::lookup(base, topic, timeout).await {
                Ok(addrs) => {
                    answered.insert(topic);
                    for addr in addrs {
                        for (ci, (t, _)) in inner.couplets.iter().enumerate() {
                            if t == topic {
                                want.insert((addr.clone(), ci));
                            }
                        }
                    }
                }
                Err(e) => log::warn!("{e}"),
            }
        }
    }
    if inner.state.borrow().stopping {
        return;
    }
    let (new, gone): (Vec<(String, usize)>, Vec<Keeper>) = {
        let mut st = inner.state.borrow_mut();
        let new: Vec<_> = want
            .iter()
            .filter(|k| !st.keepers.contains_key(*k))
            .cloned()
            .collect();
        let gone_keys: Vec<_> = st
            .keepers
            .keys()
            .filter(|k| !want.contains(*k) && answered.contains(inner.couplets[k.1].0.as_str()))
            .cloned()
            .collect();
        let gone = gone_keys
            .iter()
            .filter_map(|k| st.keepers.remove(k))
            .collect();
        if first {
            st.first_round_pending += new.len();
        }
        (new, gone)
    };
    for k in gone {
        log::info!("nsqd vanished from nsqlookupd: closing its connection");
        k.retired.set(true);
        if let Some(c) = k.current.borrow().as_ref() {
            c.shutdown();
        }
    }
    for (addr, ci) in new {
        add_keeper(inner, addr, ci);
    }
}
