//! Publishing to one or more nsqd nodes, with failover.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use courier_core::nsq::{ConnId, Event, PublishId, SessionError};
use tokio::sync::{oneshot, Notify};

use super::config::reconnect_policy;
use super::conn::{self, Conn, ConnInfo, Sink};
use super::publish_deadline::arm_deadline;
use super::{Callbacks, Config, Error, NoCallbacks};
use crate::reconnect::Backoff;
use crate::session_io::Clock;

/// Publishes to nsqd. Each publish returns once nsqd answered `OK`.
///
/// Publishes go to one nsqd at a time (the first reachable of the list);
/// when it fails, the next publish connects to the next node (failover),
/// so a producer survives an nsqd going down while another is up.
///
/// # Delivery: at-least-once
///
/// A publish returns `Ok` only once nsqd answered `OK`: that message is
/// confirmed. When the connection breaks before the answer (nsqd killed or
/// restarted), the producer reconnects with jittered, growing backoff (the
/// shared [`crate::reconnect`] policy over `Config::reconnect_delay`
/// ..`reconnect_delay_max`) and sends the same command again, to the same
/// or the next node. nsqd may already have had the first copy, so a
/// message can arrive twice (count them with
/// [`Producer::resent_publishes`]); none is lost while the publish is
/// retrying. After `Config::reconnect_attempts` failed reconnects in a row
/// the publish returns [`Error::Unreachable`]; `stop` ends the retrying
/// with [`Error::Disconnected`]. Retrying starts only once the producer was
/// connected: a first connect that fails returns at once. Each attempt
/// waits at most `Config::publish_timeout` for its answer.
///
/// # Throughput
///
/// Each publish waits for nsqd's answer, so one task publishing in a loop
/// is bound by the round trip: one PUB per round trip, whatever the
/// hardware (on loopback some 20-35k PUB/s). Two ways past that, both on one
/// connection:
///
/// - **Batch**: [`Producer::multi_publish`] sends many messages in one MPUB
///   and one round trip (hundreds of thousands of messages per second), and
///   they are published atomically.
/// - **Pipeline**: publish from several tasks at once through clones of one
///   `Producer` (clones share the connection). PUBs of different tasks are in
///   flight together; nsqd answers them in order and each task gets its own
///   answer (one answer wakes one task). PUBs issued while others are in
///   flight leave in one write. Up to 1024 commands can await an answer per
///   connection; more wait for a free slot. With 16 tasks on loopback this
///   gives several times the rate of one task (see
///   `std-runtime/tests/nsq_pipeline.rs`).
///
/// A publish alone in flight is written immediately from the publishing task
/// (no writer wake-up, no io_uring submission), which is what keeps the
/// one-task loop close to the round-trip bound.
///
/// ```no_run
/// // Pipelining: 16 tasks share one connection.
/// courier::run(async {
///     let producer = courier::nsq::Producer::new(["127.0.0.1:4150"], Default::default())?;
///     let tasks: Vec<_> = (0..16)
///         .map(|t| {
///             let producer = producer.clone();
///             courier::spawn(async move {
///                 for i in 0..1000 {
///                     producer.publish("events", format!("{t}/{i}").as_bytes()).await?;
///                 }
///                 Ok::<_, courier::nsq::Error>(())
///             })
///         })
///         .collect();
///     for task in tasks {
///         task.await.expect("publisher task panicked")?;
///     }
///     producer.stop().await;
///     Ok::<_, courier::nsq::Error>(())
/// }).unwrap();
/// ```
///
/// ```no_run
/// courier::run(async {
///     let producer = courier::nsq::Producer::new(["127.0.0.1:4150"], Default::default())?;
///     producer.publish("events", b"hello").await?;
///     producer.multi_publish("events", &[b"a".as_slice(), b"b"]).await?;
///     producer.deferred_publish("events", std::time::Duration::from_secs(5), b"later").await?;
///     producer.stop().await;
///     Ok::<_, courier::nsq::Error>(())
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Rc<Inner>,
}

pub(super) struct Inner {
    nodes: Vec<String>,
    pub(super) config: Rc<Config>,
    clock: Clock,
    callbacks: Rc<dyn Callbacks>,
    pub(super) state: RefCell<State>,
    /// Wakes tasks waiting for a free pending slot, a connection, or (in
    /// [`Producer::stop`]) the last answer. A publisher waiting for its own
    /// answer is woken through its [`Slot`] instead, so one answer wakes one
    /// task, however many publishes are in flight.
    pub(super) changed: Notify,
}

pub(super) struct State {
    current: Option<Rc<Conn>>,
    /// Index of the node to try first.
    next_node: usize,
    connecting: bool,
    /// Publishes in flight, keyed by (connection, publish id) since each
    /// session numbers from 0. The map keeps its capacity, so a publish
    /// allocates nothing in steady state. A publish removes its own entry
    /// when it returns, times out or is dropped.
    pub(super) pending: HashMap<PublishKey, Slot, BuildHasherDefault<KeyHasher>>,
    stopped: bool,
    next_conn_id: u64,
    /// A connection completed its handshake once: from then on a lost
    /// connection is retried.
    ever_connected: bool,
    /// Commands sent again after a lost connection (possible duplicates).
    resent: u64,
    /// Earliest deadline the deadline watcher must wake for (`None`: no
    /// unanswered publish it knows of). See `publish_deadline.rs`.
    pub(super) watch: Option<Instant>,
    /// The deadline watcher task's waker, while it waits.
    pub(super) watcher: Option<Waker>,
    /// The deadline watcher task was spawned (it ends with the producer).
    pub(super) watcher_running: bool,
}

type PublishKey = (ConnId, PublishId);

/// Hashes a [`PublishKey`]: two counters this producer made itself (no
/// outside input, so nothing to flood), one rotate-xor-multiply per word
/// (the FxHash step) instead of SipHash, which was ~1,250 of the ~12,600
/// instructions of one PUB round trip (callgrind, about five map operations
/// per publish). Written here rather than adding a hasher crate for one
/// map of internal integers.
#[derive(Clone, Copy, Default)]
pub(super) struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// One publish in flight: nsqd's answer once it came, and who to wake.
pub(super) struct Slot {
    pub(super) answer: Option<Result<(), Error>>,
    pub(super) waker: Option<Waker>,
    /// When the publish gives up with [`Error::TimedOut`]: checked by the
    /// producer's one deadline watcher, not by a timer per publish.
    pub(super) deadline: Instant,
}

impl State {
    fn unanswered(&self) -> bool {
        self.pending.values().any(|slot| slot.answer.is_none())
    }
}

/// Removes its publish from [`State::pending`] when the publish returns, times
/// out or is dropped mid-wait, so a cancelled publish leaves nothing behind.
struct Registration<'a> {
    inner: &'a Inner,
    key: Option<PublishKey>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let removed = self.inner.state.borrow_mut().pending.remove(&key);
            // Gave up before the answer: `stop` may be waiting for it.
            if removed.is_some_and(|slot| slot.answer.is_none()) {
                self.inner.changed.notify_waiters();
            }
        }
    }
}

struct ProducerSink {
    /// Weak so that dropping the last `Producer` closes the connection.
    inner: std::rc::Weak<Inner>,
    ready: RefCell<Option<oneshot::Sender<()>>>,
}

impl Sink for ProducerSink {
    fn on_event(&self, conn: &Rc<Conn>, event: Event) -> Result<(), Error> {
        match event {
            Event::Identified => {
                if let Some(inner) = self.inner.upgrade() {
                    inner
                        .callbacks
                        .identify(&conn.info, conn.negotiated().as_ref())
                }
            }
            Event::Ready => {
                if let Some(tx) = self.ready.borrow_mut().take() {
                    let _ = tx.send(());
                }
            }
            Event::Published { id } => {
                if let Some(inner) = self.inner.upgrade() {
                    inner.answer((conn.info.id, id), Ok(()))
                }
            }
            Event::PublishFailed { id, error } => {
                if let Some(inner) = self.inner.upgrade() {
                    inner.answer((conn.info.id, id), Err(Error::Server(error)))
                }
            }
            Event::Error(e) => log::warn!("nsqd {}: {e}", conn.info.addr),
            _ => {}
        }
        Ok(())
    }
}

impl Inner {
    fn answer(&self, key: PublishKey, result: Result<(), Error>) {
        let mut st = self.state.borrow_mut();
        // Gone: the publisher timed out or was dropped.
        let Some(slot) = st.pending.get_mut(&key) else {
            return;
        };
        slot.answer = Some(result);
        let waker = slot.waker.take();
        drop(st);
        // Only this publisher: the others' answers have not come yet.
        if let Some(waker) = waker {
            waker.wake();
        }
        // A publish blocked on `TooManyOutstanding` can go now.
        self.changed.notify_waiters();
    }

    fn connection_lost(&self, conn: &Rc<Conn>, error: &Error) {
        let mut guard = self.state.borrow_mut();
        if guard.current.as_ref().is_some_and(|c| Rc::ptr_eq(c, conn)) {
            guard.current = None;
        }
        let lost = conn.info.id;
        let mut wakers = Vec::new();
        for (key, slot) in guard.pending.iter_mut() {
            if key.0 == lost && slot.answer.is_none() {
                slot.answer = Some(Err(Error::Disconnected));
                wakers.extend(slot.waker.take());
            }
        }
        drop(guard);
        wakers.into_iter().for_each(Waker::wake);
        self.callbacks.broken(&conn.info, error);
        self.changed.notify_waiters();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(conn) = self.state.get_mut().current.take() {
            conn.shutdown();
        }
        // The deadline watcher holds a Weak: let it see the producer is gone.
        if let Some(watcher) = self.state.get_mut().watcher.take() {
            watcher.wake();
        }
    }
}

impl Producer {
    /// A producer for these nsqd `host:port` addresses (TCP ports). It
    /// connects on the first publish.
    pub fn new<I, A>(nodes: I, config: Config) -> Result<Producer, Error>
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        Self::with_callbacks(nodes, config, Rc::new(NoCallbacks))
    }

    /// Like [`Producer::new`], reporting connection events to `callbacks`.
    pub fn with_callbacks<I, A>(
        nodes: I,
        config: Config,
        callbacks: Rc<dyn Callbacks>,
    ) -> Result<Producer, Error>
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        if nodes.is_empty() {
            return Err(Error::NoNodes);
        }
        Ok(Producer {
            inner: Rc::new(Inner {
                nodes,
                config: Rc::new(config),
                clock: Clock::new(),
                callbacks,
                state: RefCell::new(State {
                    current: None,
                    next_node: 0,
                    connecting: false,
                    pending: HashMap::default(),
                    stopped: false,
                    next_conn_id: 0,
                    ever_connected: false,
                    resent: 0,
                    watch: None,
                    watcher: None,
                    watcher_running: false,
                }),
                changed: Notify::new(),
            }),
        })
    }

    /// Connects now (otherwise the first publish does).
    pub async fn connect(&self) -> Result<(), Error> {
        self.connection().await.map(|_| ())
    }

    /// Commands (PUB, MPUB, DPUB) sent again after their connection was
    /// lost before nsqd answered: each may have reached nsqd twice.
    pub fn resent_publishes(&self) -> u64 {
        self.inner.state.borrow().resent
    }

    /// The address of the nsqd currently published to, if connected.
    pub fn connected_node(&self) -> Option<String> {
        let st = self.inner.state.borrow();
        st.current.as_ref().map(|c| c.info.addr.clone())
    }

    /// `PUB`: publishes one message; returns when nsqd answered OK.
    pub async fn publish(&self, topic: &str, body: &[u8]) -> Result<(), Error> {
        self.send(|s| s.publish(topic, body)).await
    }

    /// `MPUB`: publishes a batch atomically; returns when nsqd answered OK.
    pub async fn multi_publish<B: AsRef<[u8]>>(
        &self,
        topic: &str,
        bodies: &[B],
    ) -> Result<(), Error> {
        // A small stack of slices for the core's encoder (one allocation per
        // batch, not per message).
        let parts: Vec<&[u8]> = bodies.iter().map(|b| b.as_ref()).collect();
        self.send(|s| s.publish_multi(topic, &parts)).await
    }

    /// `DPUB`: publishes one message nsqd delivers after `delay`
    /// (millisecond resolution, nsqd caps it at `--max-req-timeout`).
    pub async fn deferred_publish(
        &self,
        topic: &str,
        delay: Duration,
        body: &[u8],
    ) -> Result<(), Error> {
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.send(|s| s.publish_deferred(topic, ms, body)).await
    }

    /// Waits (up to `publish_timeout`) for nsqd to answer the publishes in
    /// flight, then closes the connection; later publishes return
    /// [`Error::Closed`].
    pub async fn stop(&self) {
        let limit = self.inner.config.publish_timeout;
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.inner.changed.notified();
                if !self.inner.state.borrow().unanswered() {
                    break;
                }
                notified.await;
            }
        })
        .await;
        let conn = {
            let mut st = self.inner.state.borrow_mut();
            st.stopped = true;
            st.current.take()
        };
        if let Some(conn) = conn {
            conn.shutdown();
        }
        self.inner.changed.notify_waiters();
    }

    /// Sends `command` and waits for nsqd's answer. When the connection is
    /// lost before the answer (or cannot be re-established) and the
    /// producer was connected before, it backs off (jittered, growing) and
    /// sends the command again on a new connection: at-least-once, nsqd
    /// may have the first copy. Gives up after `Config::reconnect_attempts`
    /// failed reconnects in a row, or at `stop`.
    async fn send(
        &self,
        mut command: impl FnMut(&mut conn::CoreSession) -> Result<PublishId, SessionError>,
    ) -> Result<(), Error> {
        let mut backoff: Option<Backoff> = None;
        loop {
            let error = match self.send_once(&mut command).await {
                Err(e @ (Error::Disconnected | Error::Unreachable { .. })) => e,
                Err(e) if e.is_handshake_timeout() => e,
                other => return other,
            };
            let (stopped, was_connected) = {
                let st = self.inner.state.borrow();
                (st.stopped, st.ever_connected)
            };
            if stopped || !was_connected {
                return Err(error);
            }
            let backoff =
                backoff.get_or_insert_with(|| Backoff::new(reconnect_policy(&self.inner.config)));
            if backoff.exhausted() {
                return Err(match error {
                    e @ Error::Unreachable { .. } => e,
                    _ => Error::Unreachable {
                        attempts: vec![format!(
                            "gave up after {} reconnect attempts",
                            backoff.failed_attempts()
                        )],
                    },
                });
            }
            let delay = backoff.next_delay();
            log::info!("nsq publish: {error}; sending it again in {delay:?}");
            self.inner.state.borrow_mut().resent += 1;
            let stop = self.inner.changed.notified();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.wait_stopped(stop) => return Err(error),
            }
        }
    }

    /// Resolves once `stop` was called (`notified` armed before checking).
    async fn wait_stopped(&self, notified: tokio::sync::futures::Notified<'_>) {
        let mut notified = std::pin::pin!(notified);
        loop {
            if self.inner.state.borrow().stopped {
                return;
            }
            notified.as_mut().await;
            notified.set(self.inner.changed.notified());
        }
    }

    async fn send_once(
        &self,
        command: &mut impl FnMut(&mut conn::CoreSession) -> Result<PublishId, SessionError>,
    ) -> Result<(), Error> {
        let timeout = self.inner.config.publish_timeout;
        let deadline = Instant::now() + timeout;
        let timed_out = || Error::TimedOut {
            operation: "publish",
            after: timeout,
        };
        let sent = async {
            loop {
                let conn = self.connection().await?;
                // A publish alone in flight is latency-bound (the caller
                // waits for its OK): write it now from this task. Publishes
                // made while others are in flight go through the writer,
                // which batches them into one write.
                let alone = self.inner.state.borrow().pending.is_empty();
                let sent = if alone {
                    conn.with_session_now(&mut *command)
                } else {
                    conn.with_session(&mut *command)
                };
                match sent {
                    Ok(id) => return Ok((conn.info.id, id)),
                    Err(Error::Session(SessionError::TooManyOutstanding { .. })) => {
                        self.inner.changed.notified().await;
                    }
                    Err(Error::Disconnected) => {}
                    Err(e) => return Err(e),
                }
            }
        };
        // Connecting or waiting for a free slot: a timer, registered only
        // when this actually waits (tokio polls the future first), so a
        // publish on a ready connection arms none here.
        let key = match tokio::time::timeout_at(deadline, sent).await {
            Ok(key) => key?,
            Err(_) => return Err(timed_out()),
        };
        // Single-threaded: no answer can arrive before the slot exists.
        self.inner.state.borrow_mut().pending.insert(
            key,
            Slot {
                answer: None,
                waker: None,
                deadline,
            },
        );
        let registration = Registration {
            inner: &self.inner,
            key: Some(key),
        };
        // Waiting for the answer: the producer's deadline watcher answers
        // `TimedOut` at `deadline` (one timer for all publishes in flight).
        arm_deadline(&self.inner, deadline);
        let result = std::future::poll_fn(|cx| {
            let mut st = self.inner.state.borrow_mut();
            let Some(slot) = st.pending.get_mut(&key) else {
                return Poll::Ready(Err(Error::Disconnected));
            };
            match slot.answer.take() {
                // Answered: the entry goes now (the registration then finds
                // nothing to remove and wakes no `stop`).
                Some(answer) => {
                    st.pending.remove(&key);
                    Poll::Ready(answer)
                }
                None => {
                    match &mut slot.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            }
        })
        .await;
        drop(registration);
        result
    }

    /// The current connection, or a new one to the first reachable node
    /// starting after the last one that failed.
    async fn connection(&self) -> Result<Rc<Conn>, Error> {
        loop {
            {
                let mut st = self.inner.state.borrow_mut();
                if st.stopped {
                    return Err(Error::Closed);
                }
                if let Some(c) = &st.current {
                    if !c.is_ended() {
                        return Ok(c.clone());
                    }
                    st.current = None;
                }
                if !st.connecting {
                    st.connecting = true;
                    break;
                }
            }
            // Another publisher is connecting: wait for it.
            self.inner.changed.notified().await;
        }
        let result = self.connect_any().await;
        let mut st = self.inner.state.borrow_mut();
        st.connecting = false;
        if let Ok(c) = &result {
            st.current = Some(c.clone());
            st.ever_connected = true;
        }
        drop(st);
        self.inner.changed.notify_waiters();
        result
    }

    async fn connect_any(&self) -> Result<Rc<Conn>, Error> {
        let n = self.inner.nodes.len();
        let start = self.inner.state.borrow().next_node;
        let mut attempts = Vec::new();
        let mut definite = None;
        for k in 0..n {
            let i = (start + k) % n;
            let addr = self.inner.nodes[i].clone();
            match self.connect_node(&addr).await {
                Ok(c) => {
                    // Next failover starts after this node.
                    self.inner.state.borrow_mut().next_node = (i + 1) % n;
                    return Ok(c);
                }
                Err(e) => {
                    log::warn!("nsqd {addr}: {e}");
                    attempts.push(format!("{addr}: {e}"));
                    if definite.is_none() && e.is_definite() {
                        definite = Some(e);
                    }
                }
            }
        }
        // A node that answered but refused (credentials, TLS, not nsqd)
        // says more than "unreachable", and retrying will not change it.
        Err(definite.unwrap_or(Error::Unreachable { attempts }))
    }

    async fn connect_node(&self, addr: &str) -> Result<Rc<Conn>, Error> {
        let id = {
            let mut st = self.inner.state.borrow_mut();
            st.next_conn_id += 1;
            ConnId(st.next_conn_id)
        };
        let info = ConnInfo {
            id,
            addr: addr.to_string(),
            topic: None,
            channel: None,
        };
        let timeout = self.inner.config.connect_timeout;
        let (conn, read, write) =
            conn::open(info, self.inner.config.clone(), self.inner.clock, true).await?;
        self.inner.callbacks.connect(&conn.info);
        let (ready_tx, ready_rx) = oneshot::channel();
        let sink = ProducerSink {
            inner: Rc::downgrade(&self.inner),
            ready: RefCell::new(Some(ready_tx)),
        };
        let (ended_tx, ended_rx) = oneshot::channel::<Error>();
        let driven = conn.clone();
        crate::spawn(async move {
            let result = conn::drive(driven.clone(), read, write, &sink).await;
            let error = match result {
                Ok(()) => Error::Closed,
                Err(e) => e,
            };
            if let Some(inner) = sink.inner.upgrade() {
                inner.connection_lost(&driven, &error);
            }
            let _ = ended_tx.send(error);
        });
        tokio::select! {
            r = ready_rx => match r {
                Ok(()) => Ok(conn),
                Err(_) => Err(ended_rx.await.unwrap_or(Error::Disconnected)),
            },
            _ = tokio::time::sleep(timeout) => {
                conn.shutdown();
                Err(Error::TimedOut { operation: "nsqd handshake", after: timeout })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn key_hasher_tells_keys_apart_and_keeps_them_spread() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        let mut seen = std::collections::HashSet::new();
        let mut buckets = [0u32; 64];
        for conn in 1..=4u64 {
            for id in 0..1024u64 {
                let h = build.hash_one((ConnId(conn), PublishId(id)));
                assert!(seen.insert(h), "collision at ({conn}, {id})");
                buckets[(h % 64) as usize] += 1;
            }
        }
        // 4096 keys over 64 low-bit buckets: none empty or crowded.
        assert!(
            buckets.iter().all(|&n| (16..=192).contains(&n)),
            "{buckets:?}"
        );
        let mut map: HashMap<PublishKey, u64, BuildHasherDefault<KeyHasher>> = HashMap::default();
        for id in 0..5000u64 {
            map.insert((ConnId(1), PublishId(id)), id);
        }
        assert!((0..5000u64).all(|id| map.get(&(ConnId(1), PublishId(id))) == Some(&id)));
    }
}
