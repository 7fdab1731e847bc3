//! Receivers: `receive(timeout)` (a message or `None`), a callback loop
//! that acks on `Ok`, and the [`Delivery`] that settles one message.

use std::cell::Cell;
use std::future::Future;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::envelope::Envelope;
use super::uri::MomUri;
use super::{backend_amqp, backend_nats, backend_nsq, Error};
use crate::{amqp, nats};

/// How a receiver binds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// What it listens to: NATS subject (wildcards allowed), NSQ topic,
    /// AMQP binding key (`logs.#`). Required.
    pub binding: String,
    /// Default receive timeout (the URI's `timeout_ms`, else 1 s).
    pub timeout: Option<Duration>,
}

/// How a delivery is settled.
pub(crate) enum Acker {
    /// ack=0: nothing to settle.
    None,
    Js(nats::jetstream::JsMessage),
    Amqp(amqp::Message),
    /// The NSQ handler waits for this answer (true: FIN, false: REQ);
    /// dropped unanswered it REQs.
    Nsq(tokio::sync::oneshot::Sender<bool>),
}

/// One received, verified message. Derefs to its [`Envelope`].
///
/// In ack mode it must be settled: [`Delivery::ack`] (the broker forgets
/// it) or [`Delivery::nack`] (redelivered). A delivery dropped unsettled
/// is redelivered too (NSQ at once, JetStream after its ack wait, AMQP
/// when the channel closes). With `ack=0` both are no-ops.
pub struct Delivery {
    envelope: Envelope,
    acker: Acker,
    attempt: u32,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Deref for Delivery {
    type Target = Envelope;
    fn deref(&self) -> &Envelope {
        &self.envelope
    }
}

impl Delivery {
    pub(crate) fn new(envelope: Envelope, acker: Acker, attempt: u32) -> Self {
        Delivery {
            envelope,
            acker,
            attempt,
        }
    }

    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Takes the envelope (an unsettled ack-mode delivery is redelivered).
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }

    /// Deliveries of this message so far, this one included, when the
    /// broker says (1 otherwise).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Deserializes the payload into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.envelope.decode()
    }

    /// Acknowledges it (ack mode): the broker will not deliver it again.
    pub async fn ack(self) -> Result<(), Error> {
        match self.acker {
            Acker::None => Ok(()),
            Acker::Js(m) => Ok(m.ack().await?),
            Acker::Amqp(m) => Ok(m.ack()?),
            Acker::Nsq(tx) => {
                let _ = tx.send(true);
                Ok(())
            }
        }
    }

    /// Refuses it (ack mode): the broker delivers it again.
    pub async fn nack(self) -> Result<(), Error> {
        match self.acker {
            Acker::None => Ok(()),
            Acker::Js(m) => Ok(m.nak(None).await?),
            Acker::Amqp(m) => Ok(m.nack(true)?),
            Acker::Nsq(tx) => {
                let _ = tx.send(false);
                Ok(())
            }
        }
    }
}

pub(crate) enum ReceiverBackend {
    Nats(Box<backend_nats::NatsReceiver>),
    Nsq(backend_nsq::NsqReceiver),
    Amqp(backend_amqp::AmqpReceiver),
}

impl ReceiverBackend {
    /// The next message; `Ok(None)` when the backend's stream ended.
    async fn next(&mut self) -> Result<Option<Delivery>, Error> {
        match self {
            ReceiverBackend::Nats(b) => b.next().await,
            ReceiverBackend::Nsq(b) => b.next().await,
            ReceiverBackend::Amqp(b) => b.next().await,
        }
    }

    async fn stop(&mut self) {
        match self {
            ReceiverBackend::Nats(b) => b.stop().await,
            ReceiverBackend::Nsq(b) => b.stop().await,
            ReceiverBackend::Amqp(b) => b.stop().await,
        }
    }
}

/// Cancels a receiver from elsewhere (what [`super::Mom`] keeps).
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Rc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: Cell<bool>,
    notify: Notify,
}

impl CancelHandle {
    /// Cancels: the receiver's `receive` returns `Err(Cancelled)` and
    /// its callback loop ends; unsettled deliveries go back to the broker.
    pub fn cancel(&self) {
        self.0.cancelled.set(true);
        self.0.notify.notify_waiters();
    }
    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.get()
    }
}

/// A named receiver. Not `Send` (single-threaded runtime).
///
/// Delivery: with `ack=0` at-most-once (NSQ FINs before handing over;
/// NATS core and AMQP auto-ack). With `ack=1` at-least-once: a message is
/// redelivered until a receiver acks it ([`Delivery::ack`], or the
/// callback of [`Receiver::run`] returning `Ok`).
pub struct Receiver {
    name: String,
    uri: MomUri,
    timeout: Duration,
    backend: ReceiverBackend,
    cancel: CancelHandle,
    corrupted: u64,
    stopped: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("protocol", &self.uri.protocol)
            .field("corrupted", &self.corrupted)
            .finish()
    }
}

impl Receiver {
    /// Connects a receiver named `name` and binds it (a subscription, a
    /// JetStream durable, an NSQ channel, an AMQP queue).
    pub async fn connect(
        name: &str,
        uri: &str,
        options: ReceiverOptions,
    ) -> Result<Receiver, Error> {
        let uri = MomUri::parse(uri)?;
        if options.binding.is_empty() {
            return Err(Error::Unsupported(format!(
                "receiver {name:?} needs a binding (subject, topic or binding key)"
            )));
        }
        // Boxed: the backends' connect futures are large.
        let backend = if uri.protocol.is_nats() {
            ReceiverBackend::Nats(Box::new(
                Box::pin(backend_nats::NatsReceiver::connect(name, &uri, &options)).await?,
            ))
        } else if uri.protocol.is_nsq() {
            ReceiverBackend::Nsq(
                Box::pin(backend_nsq::NsqReceiver::connect(name, &uri, &options)).await?,
            )
        } else {
            ReceiverBackend::Amqp(
                Box::pin(backend_amqp::AmqpReceiver::connect(name, &uri, &options)).await?,
            )
        };
        Ok(Receiver {
            name: name.to_string(),
            timeout: options
                .timeout
                .or(uri.timeout)
                .unwrap_or(Duration::from_secs(1)),
            uri,
            backend,
            cancel: CancelHandle::default(),
            corrupted: 0,
            stopped: false,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URI.
    pub fn uri(&self) -> &MomUri {
        &self.uri
    }

    /// A handle that cancels it from elsewhere.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Corrupted or foreign messages reported so far (never handed over).
    pub fn corrupted(&self) -> u64 {
        self.corrupted
    }

    /// Waits up to `timeout` (None: the receiver's default) for one
    /// message: `Ok(None)` when none came. A corrupted or foreign message
    /// is `Err(Corrupted | NotAnEnvelope)` (settled so it does not come
    /// back; call again for the next one).
    pub async fn receive(&mut self, timeout: Option<Duration>) -> Result<Option<Delivery>, Error> {
        let timeout = timeout.unwrap_or(self.timeout);
        if self.cancel.is_cancelled() {
            self.stop().await;
            return Err(Error::Cancelled {
                name: self.name.clone(),
            });
        }
        // Under load a message is usually there already: take it without
        // arming a timer or a cancel waiter (the backends' `next` is
        // cancel-safe: a queue receive).
        let ready = futures::FutureExt::now_or_never(self.backend.next());
        let result = match ready {
            Some(r) => r,
            None => {
                let cancel = self.cancel.clone();
                let cancelled = cancel.0.notify.notified();
                tokio::select! {
                    r = tokio::time::timeout(timeout, self.backend.next()) => match r {
                        Err(_) => Ok(None),
                        Ok(r) => r,
                    },
                    _ = cancelled => Err(Error::Cancelled { name: self.name.clone() }),
                }
            }
        };
        if matches!(result, Err(Error::Cancelled { .. })) {
            self.stop().await;
        }
        if matches!(
            result,
            Err(Error::Corrupted { .. } | Error::NotAnEnvelope { .. })
        ) {
            self.corrupted += 1;
        }
        result
    }

    /// Callback form: hands every message to `callback` until cancelled,
    /// acking it when the callback returns `Ok` and nacking it (ack mode:
    /// redelivered) on `Err`. Corrupted messages go to `on_error` and are
    /// not given to the callback. Returns when cancelled or when the
    /// backend ends.
    pub async fn run<F, Fut, E>(
        &mut self,
        mut callback: F,
        mut on_error: impl FnMut(Error),
    ) -> Result<(), Error>
    where
        F: FnMut(&Delivery) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        loop {
            match self.receive(Some(Duration::from_secs(3600))).await {
                Ok(Some(d)) => {
                    if callback(&d).await.is_ok() {
                        d.ack().await?;
                    } else {
                        d.nack().await?;
                    }
                }
                Ok(None) => {}
                Err(Error::Cancelled { .. }) => return Ok(()),
                Err(e @ (Error::Corrupted { .. } | Error::NotAnEnvelope { .. })) => on_error(e),
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops receiving: cancels the subscription/consumer and closes the
    /// connection; unsettled ack-mode messages go back to the broker.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if !self.stopped {
            self.stopped = true;
            self.backend.stop().await;
        }
    }
}
