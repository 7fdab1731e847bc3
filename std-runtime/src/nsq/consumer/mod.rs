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
use crate::session_io::{Clock, Wakeups};

mod keeper;
mod message;
mod nodes;

use keeper::add_keeper;
pub use message::{Handler, HandlerError, Message};
use nodes::{lookup_loop, poll_lookupds};
pub use nodes::{LookupNodes, Nodes, ServerNodes};

/// Most connections one consumer tracks (nodes x couplets).
pub const MAX_CONNS: usize = 512;
/// Most handler tasks; `max_in_flight` beyond this still bounds RDY.
pub const MAX_WORKERS: usize = 4096;
/// The same connection failure is logged once per window, with a count.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// How long `stop` waits for each connection task to close its socket
/// after the handlers drained.
const CLOSE_WAIT_PER_CONNECTION: Duration = Duration::from_secs(5);
/// Beyond `connect_timeout` twice (connect, then handshake), how long
/// `start` waits for the first round of connections.
const FIRST_ROUND_SLACK: Duration = Duration::from_secs(1);
/// After the first round subscribed, how long `start` watches for those
/// connections dying at once (nsqd accepted SUB, then sent garbage or
/// closed mid-frame): the end of stream of such a connection arrives one
/// read later than the SUB's OK.
const FIRST_ROUND_SETTLE: Duration = Duration::from_millis(20);

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
    /// "Something `start` or `stop` waits for changed": a connection
    /// subscribed, ended, or got CLOSE_WAIT; a handler finished while
    /// stopping.
    wake: Wakeups,
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
            wake: Wakeups::new(),
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
        let limit = self.inner.config.connect_timeout * 2 + FIRST_ROUND_SLACK;
        let deadline = tokio::time::Instant::now() + limit;
        let inner = &self.inner;
        let _ = inner
            .wake
            .wait_until(Some(deadline), || {
                (inner.state.borrow().first_round_pending == 0).then_some(())
            })
            .await;
        // Every connection has answered; one that nsqd broke right after
        // SUB (garbage or a close in the same burst) ends within a moment,
        // and start should report that rather than return a consumer with
        // nothing behind it. Returns at once when all of them ended.
        let settle = tokio::time::Instant::now() + FIRST_ROUND_SETTLE;
        let _ = inner
            .wake
            .wait_until(Some(settle), || {
                inner.state.borrow().conns.is_empty().then_some(())
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
        let deadline = tokio::time::Instant::now() + inner.config.stop_timeout;
        let drained = inner
            .wake
            .wait_until(Some(deadline), || {
                let st = inner.state.borrow();
                let all_closed = conns
                    .iter()
                    .all(|c| c.is_ended() || st.close_waited.contains(&c.info.id));
                (all_closed && st.busy == 0).then_some(())
            })
            .await;
        if drained.is_none() {
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
            if tokio::time::timeout(CLOSE_WAIT_PER_CONNECTION, k.task)
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
        let stopping = st.stopping;
        drop(st);
        inner.rdy_wake.notify_one();
        if stopping {
            inner.wake.state_changed();
        }
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
