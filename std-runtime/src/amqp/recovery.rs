//! Reconnecting: what a connection declared (channels with their confirm
//! mode and QoS, exchanges, queues, bindings, consumers) is recorded as it
//! succeeds, and restored in order on a new connection after backoff with
//! jitter. Publishes unconfirmed at the cut fail with
//! [`Error::Disconnected`] (each caller hears which of its publishes were
//! not confirmed); new calls wait until the restore is done.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use courier_core::amqp::methods::{Basic, Exchange, Queue, Tx};
use courier_core::amqp::{ChannelId, ConsumeFlags, FieldTable, Method, Reply};
use tokio::sync::oneshot;

use super::channel::DeclareOptions;
use super::connection::{now, ConnectOptions, Inner};
use super::io_tasks::spawn_io;
use super::Error;
use crate::session_io::{Backoff, BackoffPolicy};

/// One declaration to replay.
#[derive(Clone, Debug)]
enum Declared {
    Exchange {
        name: String,
        kind: String,
        o: DeclareOptions,
    },
    Queue {
        /// The name asked for ("" for a server-named queue).
        asked: String,
        /// The name the broker gave.
        name: String,
        o: DeclareOptions,
        arguments: Vec<u8>,
    },
    Bind {
        queue: String,
        exchange: String,
        key: String,
        arguments: Vec<u8>,
    },
    ExchangeBind {
        destination: String,
        source: String,
        key: String,
        arguments: Vec<u8>,
    },
}

/// Per-channel settings to restore.
#[derive(Clone, Copy, Debug, Default)]
struct ChannelSetup {
    confirm: bool,
    tx: bool,
    prefetch: Option<u16>,
}

#[derive(Clone, Debug)]
struct ConsumerSpec {
    queue: String,
    flags: ConsumeFlags,
}

/// What a connection declared, for replay after a reconnect.
pub(crate) struct Topology {
    pub addr: SocketAddr,
    pub options: ConnectOptions,
    channels: BTreeMap<ChannelId, ChannelSetup>,
    declared: Vec<Declared>,
    consumers: BTreeMap<(ChannelId, String), ConsumerSpec>,
}

impl Topology {
    pub fn new(addr: SocketAddr, options: ConnectOptions) -> Self {
        Topology {
            addr,
            options,
            channels: BTreeMap::new(),
            declared: Vec::new(),
            consumers: BTreeMap::new(),
        }
    }
    pub fn channel_opened(&mut self, id: ChannelId) {
        self.channels.insert(id, ChannelSetup::default());
    }
    pub fn channel_closed(&mut self, id: ChannelId) {
        self.channels.remove(&id);
        self.consumers.retain(|(ch, _), _| *ch != id);
    }
    pub fn confirm(&mut self, id: ChannelId) {
        self.channels.entry(id).or_default().confirm = true;
    }
    pub fn tx(&mut self, id: ChannelId) {
        self.channels.entry(id).or_default().tx = true;
    }
    pub fn exchange_bind(&mut self, dest: &str, source: &str, key: &str, args: FieldTable<'_>) {
        self.declared.push(Declared::ExchangeBind {
            destination: dest.into(),
            source: source.into(),
            key: key.into(),
            arguments: args.as_bytes().to_vec(),
        });
    }
    pub fn exchange_unbind(&mut self, dest: &str, source: &str, key: &str) {
        self.declared.retain(|d| {
            !matches!(d, Declared::ExchangeBind { destination: x, source: s, key: k, .. }
                if x == dest && s == source && k == key)
        });
    }
    pub fn qos(&mut self, id: ChannelId, prefetch: u16) {
        self.channels.entry(id).or_default().prefetch = Some(prefetch);
    }
    pub fn exchange(&mut self, name: &str, kind: &str, o: DeclareOptions) {
        if o.passive {
            return;
        }
        self.declared
            .retain(|d| !matches!(d, Declared::Exchange { name: n, .. } if n == name));
        self.declared.push(Declared::Exchange {
            name: name.into(),
            kind: kind.into(),
            o,
        });
    }
    pub fn exchange_deleted(&mut self, name: &str) {
        self.declared.retain(|d| match d {
            Declared::Exchange { name: n, .. } => n != name,
            Declared::Bind { exchange, .. } => exchange != name,
            Declared::ExchangeBind {
                destination,
                source,
                ..
            } => destination != name && source != name,
            _ => true,
        });
    }
    pub fn queue(&mut self, asked: &str, name: &str, o: DeclareOptions, arguments: FieldTable<'_>) {
        if o.passive {
            return;
        }
        self.declared
            .retain(|d| !matches!(d, Declared::Queue { name: n, .. } if n == name));
        self.declared.push(Declared::Queue {
            asked: asked.into(),
            name: name.into(),
            o,
            arguments: arguments.as_bytes().to_vec(),
        });
    }
    pub fn queue_deleted(&mut self, name: &str) {
        self.declared.retain(|d| match d {
            Declared::Queue { name: n, .. } => n != name,
            Declared::Bind { queue, .. } => queue != name,
            _ => true,
        });
    }
    pub fn bind(&mut self, queue: &str, exchange: &str, key: &str, arguments: FieldTable<'_>) {
        self.declared.push(Declared::Bind {
            queue: queue.into(),
            exchange: exchange.into(),
            key: key.into(),
            arguments: arguments.as_bytes().to_vec(),
        });
    }
    pub fn unbind(&mut self, queue: &str, exchange: &str, key: &str) {
        self.declared.retain(|d| {
            !matches!(d, Declared::Bind { queue: q, exchange: e, key: k, .. }
                if q == queue && e == exchange && k == key)
        });
    }
    pub fn consumer(&mut self, id: ChannelId, tag: &str, queue: &str, flags: ConsumeFlags) {
        self.consumers.insert(
            (id, tag.into()),
            ConsumerSpec {
                queue: queue.into(),
                flags,
            },
        );
    }
    pub fn forget_consumer(&mut self, id: ChannelId, tag: &str) {
        self.consumers.remove(&(id, tag.to_string()));
    }
}

/// Sends a method during the restore (the gate for other callers is shut)
/// and waits for its reply.
async fn call(inner: &Rc<Inner>, ch: ChannelId, method: Method<'_>) -> Result<Reply, Error> {
    let (tx, rx) = oneshot::channel();
    {
        let mut sh = inner.shared.borrow_mut();
        sh.session.call(ch, method)?;
        sh.replies.entry(ch).or_default().push_back(tx);
    }
    inner.wake.wake_writer();
    rx.await
        .map_err(|_| Error::Disconnected("connection ended during recovery".into()))?
}

async fn open_channels(inner: &Rc<Inner>, up_to: ChannelId) -> Result<(), Error> {
    for want in 1..=up_to {
        let (tx, rx) = oneshot::channel();
        {
            let mut sh = inner.shared.borrow_mut();
            let got = sh.session.open_channel()?;
            if got != want {
                return Err(Error::Disconnected(format!(
                    "channel {want} could not be reopened (got {got})"
                )));
            }
            sh.opens.insert(got, tx);
        }
        inner.wake.wake_writer();
        rx.await
            .map_err(|_| Error::Disconnected("connection ended during recovery".into()))??;
    }
    Ok(())
}

/// Restores channels, topology and consumers on the fresh connection.
async fn restore(inner: &Rc<Inner>) -> Result<(), Error> {
    let (channels, declared, consumers) = {
        let sh = inner.shared.borrow();
        let t = &sh.topology;
        (t.channels.clone(), t.declared.clone(), t.consumers.clone())
    };
    let Some(&last) = channels.keys().next_back() else {
        return Ok(());
    };
    // Channel numbers are kept: handles refer to them. Numbers that were
    // closed before the cut are reopened too and left idle.
    open_channels(inner, last).await?;
    for (&ch, setup) in &channels {
        if setup.confirm {
            let (tx, rx) = oneshot::channel();
            {
                let mut sh = inner.shared.borrow_mut();
                sh.session.confirm_select(ch)?;
                sh.replies.entry(ch).or_default().push_back(tx);
            }
            inner.wake.wake_writer();
            rx.await
                .map_err(|_| Error::Disconnected("connection ended during recovery".into()))??;
        }
        if setup.tx {
            call(inner, ch, Tx::Select.into()).await?;
        }
        if let Some(prefetch_count) = setup.prefetch {
            let qos = Basic::Qos {
                prefetch_size: 0,
                prefetch_count,
                global: false,
            };
            call(inner, ch, qos.into()).await?;
        }
    }
    let on = *channels.keys().next().unwrap_or(&1);
    // Server-named queues get new names: map old to new for what follows.
    let mut renamed: HashMap<String, String> = HashMap::new();
    for d in &declared {
        match d {
            Declared::Exchange { name, kind, o } => {
                let m = Exchange::Declare {
                    exchange: name.as_str().into(),
                    kind: kind.as_str().into(),
                    passive: false,
                    durable: o.durable,
                    auto_delete: o.auto_delete,
                    internal: false,
                    nowait: false,
                    arguments: FieldTable::EMPTY,
                };
                call(inner, on, m.into()).await?;
            }
            Declared::Queue {
                asked,
                name,
                o,
                arguments,
            } => {
                let m = Queue::Declare {
                    queue: asked.as_str().into(),
                    passive: false,
                    durable: o.durable,
                    exclusive: o.exclusive,
                    auto_delete: o.auto_delete,
                    nowait: false,
                    arguments: FieldTable::from_raw(arguments).unwrap_or_default(),
                };
                if let Reply::QueueDeclared { queue, .. } = call(inner, on, m.into()).await? {
                    if queue.as_str() != name {
                        renamed.insert(name.clone(), queue.to_string());
                    }
                }
            }
            Declared::Bind {
                queue,
                exchange,
                key,
                arguments,
            } => {
                let q = renamed.get(queue).unwrap_or(queue);
                let m = Queue::Bind {
                    queue: q.as_str().into(),
                    exchange: exchange.as_str().into(),
                    routing_key: key.as_str().into(),
                    nowait: false,
                    arguments: FieldTable::from_raw(arguments).unwrap_or_default(),
                };
                call(inner, on, m.into()).await?;
            }
            Declared::ExchangeBind {
                destination,
                source,
                key,
                arguments,
            } => {
                let m = Exchange::Bind {
                    destination: destination.as_str().into(),
                    source: source.as_str().into(),
                    routing_key: key.as_str().into(),
                    nowait: false,
                    arguments: FieldTable::from_raw(arguments).unwrap_or_default(),
                };
                call(inner, on, m.into()).await?;
            }
        }
    }
    for ((ch, tag), spec) in &consumers {
        let q = renamed.get(&spec.queue).unwrap_or(&spec.queue);
        let m = Basic::Consume {
            queue: q.as_str().into(),
            consumer_tag: tag.as_str().into(),
            no_local: false,
            no_ack: spec.flags.no_ack,
            exclusive: spec.flags.exclusive,
            nowait: false,
            arguments: FieldTable::EMPTY,
        };
        call(inner, *ch, m.into()).await?;
    }
    Ok(())
}

/// First reconnect delay (before jitter); it doubles per failed attempt.
const RECONNECT_BASE: Duration = Duration::from_millis(100);

/// Reconnects until it works (or the connection is closed for good).
pub(crate) async fn recover(inner: Rc<Inner>) {
    let (addr, max, options) = {
        let sh = inner.shared.borrow();
        let o = &sh.topology.options;
        (sh.topology.addr, o.max_backoff, o.clone())
    };
    // The shared policy: 100 ms doubling up to `max_backoff`, equal jitter
    // (each delay uniform in [d/2, d]) so clients cut at once do not come
    // back in lockstep.
    let mut backoff = Backoff::new(BackoffPolicy::new(RECONNECT_BASE, max));
    let mut attempt = 0u32;
    loop {
        // Every attempt waits, also the first: a broker that just dropped
        // us is often restarting.
        tokio::time::sleep(backoff.next_delay()).await;
        attempt += 1;
        if inner.shared.borrow().closed.is_some() {
            return;
        }
        let (read, write, tls) = match super::tls::dial(&options, addr).await {
            Ok(io) => io,
            Err(e) => {
                log::debug!("amqp: reconnect attempt {attempt}: {e}");
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        let epoch = {
            let mut sh = inner.shared.borrow_mut();
            let report = sh.session.start(now());
            log::info!(
                "amqp: reconnect attempt {attempt}; {} publishes were unconfirmed at the cut",
                report.unconfirmed
            );
            sh.epoch += 1;
            sh.set_connected_waiter(tx);
            sh.epoch
        };
        spawn_io(&inner, read, write, tls, epoch);
        let ok = matches!(rx.await, Ok(Ok(())));
        if ok && restore(&inner).await.is_ok() {
            let mut sh = inner.shared.borrow_mut();
            if sh.epoch == epoch {
                sh.recovering = false;
                drop(sh);
                log::info!("amqp: reconnected after {attempt} attempt(s); topology restored");
                inner.wake.room_made();
                return;
            }
        }
        // This attempt failed: make its IO tasks stop and try again.
        let mut sh = inner.shared.borrow_mut();
        if sh.closed.is_some() {
            return;
        }
        if sh.epoch == epoch {
            sh.epoch += 1;
        }
        sh.recovering = true;
    }
}
