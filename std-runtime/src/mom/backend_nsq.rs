//! NSQ backend: the topic is the routing key, the body is the facade's
//! envelope (see the module docs). pubsub receivers each get an ephemeral
//! channel of their own (`<name>-<random>#ephemeral`); pt2pt receivers
//! share the channel `queue=` (default: the receiver's name). A send
//! returns once nsqd answered `OK`. With `ack=1` a message is FIN'd when
//! the receiver acks it and REQ'd (redelivered) when it nacks or drops it;
//! with `ack=0` it is FIN'd on arrival, before it is handed over.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::envelope::{decode_nsq, encode_nsq, Envelope, Outgoing};
use super::receiver::{Acker, Delivery, ReceiverOptions};
use super::uri::{DataType, MomUri, Protocol};
use super::Error;
use crate::nsq::{
    Config, Consumer, Handler, HandlerError, LookupNodes, Message, Producer, ServerNodes,
};
use crate::outbox::{Outbox, OutboxOptions};

/// Asks nsqlookupd (`GET /nodes`) for the nsqd TCP addresses it knows.
async fn lookupd_nodes(http: Vec<String>) -> Result<Vec<String>, Error> {
    let found = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let mut out = Vec::new();
        let mut last_err = String::new();
        for base in http {
            let url = format!("{base}/nodes");
            match agent
                .get(&url)
                .set("Accept", "application/vnd.nsq; version=1.0")
                .call()
            {
                Ok(r) => {
                    let body = r.into_string().unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let v = v.get("data").unwrap_or(&v);
                    for p in v
                        .get("producers")
                        .and_then(|p| p.as_array())
                        .into_iter()
                        .flatten()
                    {
                        let host = p.get("broadcast_address").and_then(|h| h.as_str());
                        let port = p.get("tcp_port").and_then(|t| t.as_u64());
                        if let (Some(h), Some(port)) = (host, port) {
                            let a = if h.contains(':') {
                                format!("[{h}]:{port}")
                            } else {
                                format!("{h}:{port}")
                            };
                            if !out.contains(&a) {
                                out.push(a);
                            }
                        }
                    }
                }
                Err(e) => last_err = format!("{url}: {e}"),
            }
        }
        (out, last_err)
    })
    .await
    .map_err(|e| Error::Unsupported(format!("nsqlookupd query task: {e}")))?;
    match found {
        (nodes, _) if !nodes.is_empty() => Ok(nodes),
        (_, err) => Err(Error::Unsupported(format!(
            "nsqlookupd knows no nsqd node to publish to{}",
            if err.is_empty() {
                String::new()
            } else {
                format!(" ({err})")
            }
        ))),
    }
}

/// The nsqd client settings: TLS (nsqd's upgrade after IDENTIFY) when
/// the URI has `tls_*` options.
fn config(uri: &MomUri) -> Result<Config, Error> {
    Ok(Config {
        tls: uri.tls_config()?,
        ..Config::default()
    })
}

pub(crate) struct NsqSender {
    target: Target,
    buf: std::cell::RefCell<Vec<u8>>,
}

enum Target {
    Producer(Producer),
    /// `outbox=DIR`: every envelope is spooled on disk first, then sent
    /// and retried until nsqd answers OK (replayed after a restart).
    Outbox {
        outbox: Outbox,
        dir: String,
    },
}

impl NsqSender {
    pub async fn connect(uri: &MomUri) -> Result<Self, Error> {
        let nodes = match uri.protocol {
            Protocol::NsqLookupd => lookupd_nodes(uri.backend_urls()).await?,
            _ => uri.addrs(),
        };
        let target = match &uri.outbox {
            Some(dir) => {
                let (outbox, recovery) =
                    Outbox::nsq(nodes, config(uri)?, OutboxOptions::new(dir)).await?;
                if recovery.replayed > 0 || !recovery.corrupt.is_empty() {
                    log::info!(
                        "mom: outbox {dir}: replaying {} messages, {} corrupt records skipped",
                        recovery.replayed,
                        recovery.corrupt.len()
                    );
                }
                Target::Outbox {
                    outbox,
                    dir: dir.clone(),
                }
            }
            None => {
                let producer = Producer::new(nodes, config(uri)?)?;
                producer.connect().await?;
                Target::Producer(producer)
            }
        };
        Ok(NsqSender {
            target,
            buf: Default::default(),
        })
    }

    pub async fn send(&self, m: &Outgoing<'_>) -> Result<(), Error> {
        // One envelope buffer per sender, reused (taken for the await).
        let mut buf = std::mem::take(&mut *self.buf.borrow_mut());
        encode_nsq(m, &mut buf)?;
        let res = match &self.target {
            Target::Producer(p) => p.publish(m.name, &buf).await.map_err(Error::from),
            Target::Outbox { outbox, .. } => outbox
                .publish(m.name, &buf)
                .await
                .map(drop)
                .map_err(Error::from),
        };
        *self.buf.borrow_mut() = buf;
        res
    }

    /// Stops; with an outbox, waits up to `deadline` for nsqd to confirm
    /// every spooled message and reports those it did not.
    pub async fn stop(&self, name: &str, deadline: Duration) -> Result<(), Error> {
        match &self.target {
            Target::Producer(p) => {
                p.stop().await;
                Ok(())
            }
            Target::Outbox { outbox, dir } => {
                let report = outbox.stop(deadline).await;
                if report.remaining == 0 {
                    Ok(())
                } else {
                    Err(Error::Unconfirmed {
                        name: name.to_string(),
                        remaining: report.remaining,
                        spool: dir.clone(),
                    })
                }
            }
        }
    }
}

type Item = (Result<Envelope, Error>, Option<oneshot::Sender<bool>>, u16);

struct MomHandler {
    tx: mpsc::UnboundedSender<Item>,
    ack: bool,
}

impl Handler for MomHandler {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &Message) -> Option<((), ())> {
        Some(((), ()))
    }
    async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
        let topic = m.connection().topic.clone().unwrap_or_default();
        let env = decode_nsq(&topic, m.body());
        if env.is_err() || !self.ack {
            // Corrupted ones are reported and FIN'd; ack=0 FINs at once.
            let _ = self.tx.send((env, None, m.attempts()));
            return Ok(());
        }
        let (atx, arx) = oneshot::channel();
        if self.tx.send((env, Some(atx), m.attempts())).is_err() {
            return Err(HandlerError::requeue_after("receiver gone", Duration::ZERO));
        }
        match arx.await {
            Ok(true) => Ok(()),
            _ => Err(HandlerError::requeue_after(
                "nacked by the receiver",
                Duration::ZERO,
            )),
        }
    }
    async fn default_handler(&self, _: &Message) -> Result<(), HandlerError> {
        Ok(())
    }
}

pub(crate) struct NsqReceiver {
    consumer: Consumer<MomHandler>,
    rx: mpsc::UnboundedReceiver<Item>,
}

impl NsqReceiver {
    pub async fn connect(name: &str, uri: &MomUri, o: &ReceiverOptions) -> Result<Self, Error> {
        let channel = match uri.data_type {
            DataType::Pt2Pt => uri.queue.clone().unwrap_or_else(|| name.to_string()),
            DataType::PubSub => format!("{name}-{:08x}#ephemeral", fastrand::u32(..)),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let handler = MomHandler { tx, ack: uri.ack };
        let max_in_flight = uri.max_in_flight.unwrap_or(100);
        let config = Config {
            max_attempts: 0,
            backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            lookup_poll_interval: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(5),
            ..config(uri)?
        };
        let couplets = [(o.binding.clone(), channel)];
        let consumer = match uri.protocol {
            Protocol::NsqLookupd => Consumer::builder(
                couplets,
                LookupNodes::new(uri.backend_urls()),
                max_in_flight,
                handler,
            ),
            _ => Consumer::builder(
                couplets,
                ServerNodes::new(uri.addrs()),
                max_in_flight,
                handler,
            ),
        }
        .config(config)
        .start()
        .await?;
        Ok(NsqReceiver { consumer, rx })
    }

    pub async fn next(&mut self) -> Result<Option<Delivery>, Error> {
        let Some((env, acker, attempts)) = self.rx.recv().await else {
            return Ok(None);
        };
        let acker = match acker {
            Some(tx) => Acker::Nsq(tx),
            None => Acker::None,
        };
        Ok(Some(Delivery::new(env?, acker, attempts as u32)))
    }

    pub async fn stop(&mut self) {
        self.rx.close();
        // Unsettled deliveries answer "requeue" as their senders drop.
        while let Ok(item) = self.rx.try_recv() {
            drop(item);
        }
        self.consumer.stop().await;
    }
}
