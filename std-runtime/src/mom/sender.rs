//! Senders: one broker connection each, topology declared once at
//! creation (and again by the backend's own recovery after a reconnect,
//! never per publish: kombu #651).

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;

use super::codec::{Compression, Serializer};
use super::envelope::{new_id, now_ms, Outgoing};
use super::uri::MomUri;
use super::{backend_amqp, backend_nats, backend_nsq, Error};

/// Default send timeout.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How a sender sends by default (each can be overridden per message
/// with [`SendOptions`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderOptions {
    /// Routing key used when `send` is given `None`.
    pub routing_key: Option<String>,
    /// Default serializer (JSON).
    pub serializer: Serializer,
    /// Default compression (none).
    pub compression: Compression,
    /// Send timeout (the URI's `timeout_ms`, else 10 s).
    pub timeout: Option<Duration>,
}

/// Per-message overrides (kombu's `send(msg, rk, serializer, compression,
/// content_type, content_encoding, timeout)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Serializer for this message.
    pub serializer: Option<Serializer>,
    /// Compression for this message.
    pub compression: Option<Compression>,
    /// Content type to carry instead of the serializer's.
    pub content_type: Option<String>,
    /// Content encoding to carry instead of the serializer's.
    pub content_encoding: Option<String>,
    /// Timeout for this send.
    pub timeout: Option<Duration>,
}

pub(crate) enum SenderBackend {
    Nats(backend_nats::NatsSender),
    Nsq(backend_nsq::NsqSender),
    Amqp(backend_amqp::AmqpSender),
}

struct Inner {
    name: String,
    uri: MomUri,
    options: SenderOptions,
    backend: SenderBackend,
    cancelled: Cell<bool>,
    sent: Cell<u64>,
}

/// A named sender (cheap to clone; clones share the connection).
///
/// Delivery: with `ack=0` a send is at-most-once (`Ok` = queued to the
/// client, NATS/AMQP without confirmation; NSQ always waits for nsqd's
/// `OK`). With `ack=1` a send returns `Ok` only once the broker has it
/// (JetStream `PubAck`, AMQP publisher confirm, nsqd `OK`): at-least-once,
/// and a send that fails or times out is never counted in [`Sender::sent`].
/// With `outbox=DIR` (NSQ, and NATS or AMQP with `ack=1`), `Ok` means the message
/// is in the on-disk spool: it is sent and retried until nsqd / JetStream
/// confirms it, across broker outages and sender restarts (at-least-once;
/// on JetStream the `Nats-Msg-Id` makes a resend within the stream's
/// duplicate window a no-op; [`Sender::stop`] reports what is still
/// unconfirmed).
/// A publish-only sender starts no receive machinery (no subscription,
/// no consumer, no queue of its own).
#[derive(Clone)]
pub struct Sender {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.inner.name)
            .field("protocol", &self.inner.uri.protocol)
            .field("sent", &self.inner.sent.get())
            .finish()
    }
}

impl Sender {
    /// Connects a sender named `name` to `uri` and declares its topology
    /// (JetStream stream, AMQP exchange and pt2pt queue) once.
    pub async fn connect(name: &str, uri: &str, options: SenderOptions) -> Result<Sender, Error> {
        let uri = MomUri::parse(uri)?;
        if uri.outbox.is_some() && uri.protocol.is_amqp() && !uri.ack {
            return Err(Error::Unsupported(
                "outbox=DIR on AMQP waits for the broker's publisher confirm: add ack=1 to the URI"
                    .into(),
            ));
        }
        if uri.outbox.is_some() && uri.protocol.is_nats() && !uri.ack {
            return Err(Error::Unsupported(
                "outbox=DIR on NATS publishes through JetStream and waits for its PubAck: \
                 add ack=1 to the URI (and a stream= if not MOM)"
                    .into(),
            ));
        }
        let timeout = options
            .timeout
            .or(uri.timeout)
            .unwrap_or(DEFAULT_SEND_TIMEOUT);
        let fut = async {
            Ok::<_, Error>(if uri.protocol.is_nats() {
                SenderBackend::Nats(backend_nats::NatsSender::connect(&uri, &options).await?)
            } else if uri.protocol.is_nsq() {
                SenderBackend::Nsq(backend_nsq::NsqSender::connect(&uri).await?)
            } else {
                SenderBackend::Amqp(backend_amqp::AmqpSender::connect(&uri, &options).await?)
            })
        };
        // Boxed: the backends' connect futures are large.
        let backend = tokio::time::timeout(timeout, Box::pin(fut))
            .await
            .map_err(|_| Error::TimedOut {
                op: "connect",
                after: timeout,
            })??;
        Ok(Sender {
            inner: Rc::new(Inner {
                name: name.to_string(),
                uri,
                options,
                backend,
                cancelled: Cell::new(false),
                sent: Cell::new(0),
            }),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its URI.
    pub fn uri(&self) -> &MomUri {
        &self.inner.uri
    }

    /// Messages the broker took (see the type's delivery contract).
    pub fn sent(&self) -> u64 {
        self.inner.sent.get()
    }

    /// Serializes `value` with the sender's serializer and sends it to
    /// `routing_key` (or the default one).
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        value: &T,
        routing_key: Option<&str>,
    ) -> Result<(), Error> {
        self.send_with(value, routing_key, &SendOptions::default())
            .await
    }

    /// [`Sender::send`] with per-message options.
    pub async fn send_with<T: Serialize + ?Sized>(
        &self,
        value: &T,
        routing_key: Option<&str>,
        options: &SendOptions,
    ) -> Result<(), Error> {
        let serializer = options.serializer.unwrap_or(self.inner.options.serializer);
        let mut bytes = Vec::new();
        serializer.serialize(value, &mut bytes)?;
        self.send_serialized(Cow::Owned(bytes), serializer, routing_key, options)
            .await
    }

    /// Sends bytes as they are (raw serializer).
    pub async fn send_bytes(
        &self,
        payload: &[u8],
        routing_key: Option<&str>,
        options: &SendOptions,
    ) -> Result<(), Error> {
        let serializer = options.serializer.unwrap_or(Serializer::Raw);
        self.send_serialized(Cow::Borrowed(payload), serializer, routing_key, options)
            .await
    }

    async fn send_serialized(
        &self,
        bytes: Cow<'_, [u8]>,
        serializer: Serializer,
        routing_key: Option<&str>,
        options: &SendOptions,
    ) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.cancelled.get() {
            return Err(Error::Cancelled {
                name: inner.name.clone(),
            });
        }
        let rk = routing_key
            .or(inner.options.routing_key.as_deref())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "sender {:?} has no default routing key: give one to send",
                    inner.name
                ))
            })?;
        let compression = options.compression.unwrap_or(inner.options.compression);
        let body = match compression {
            Compression::None => bytes,
            c => Cow::Owned(c.compress(&bytes)?),
        };
        let msg = Outgoing {
            name: rk,
            id: new_id(),
            timestamp_ms: now_ms(),
            content_type: options
                .content_type
                .as_deref()
                .unwrap_or(serializer.content_type()),
            content_encoding: options
                .content_encoding
                .as_deref()
                .unwrap_or(serializer.content_encoding()),
            compression,
            body,
        };
        let timeout = options
            .timeout
            .or(inner.options.timeout)
            .or(inner.uri.timeout)
            .unwrap_or(DEFAULT_SEND_TIMEOUT);
        let fut = async {
            match &inner.backend {
                SenderBackend::Nats(b) => b.send(&msg, timeout).await,
                SenderBackend::Nsq(b) => b.send(&msg).await,
                SenderBackend::Amqp(b) => b.send(&msg).await,
            }
        };
        // Most sends complete at once (queued): no timer for those.
        let mut fut = std::pin::pin!(fut);
        match futures::FutureExt::now_or_never(fut.as_mut()) {
            Some(r) => r?,
            None => tokio::time::timeout(timeout, fut)
                .await
                .map_err(|_| Error::TimedOut {
                    op: "send",
                    after: timeout,
                })??,
        }
        inner.sent.set(inner.sent.get() + 1);
        Ok(())
    }

    /// Stops sending: flushes what is queued and waits for the broker's
    /// confirmations up to `deadline`, then closes the connection. Later
    /// sends fail with [`Error::Cancelled`].
    ///
    /// With a durable outbox (`outbox=DIR`, NSQ, or NATS / AMQP with `ack=1`), waits up
    /// to `deadline` for the broker to confirm every spooled message; those it did not are
    /// reported as [`Error::Unconfirmed`] and stay in the spool, sent when
    /// a sender opens the same directory again (at-least-once).
    pub async fn stop(&self, deadline: Duration) -> Result<(), Error> {
        self.inner.cancelled.set(true);
        let fut = async {
            match &self.inner.backend {
                SenderBackend::Nats(b) => b.stop(&self.inner.name, deadline).await,
                SenderBackend::Nsq(b) => b.stop(&self.inner.name, deadline).await,
                SenderBackend::Amqp(b) => b.stop(&self.inner.name, deadline).await,
            }
        };
        // The outbox's own wait ends at `deadline`; a moment more for its
        // final sync so that its report, not this timeout, answers.
        tokio::time::timeout(deadline + Duration::from_secs(1), fut)
            .await
            .map_err(|_| Error::TimedOut {
                op: "stop",
                after: deadline,
            })?
    }

    /// True once stopped or cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.get()
    }
}
