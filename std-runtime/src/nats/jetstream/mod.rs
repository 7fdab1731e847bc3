//! JetStream over the async NATS client: streams, pull consumers with
//! explicit acks, publishes acknowledged by the stream.
//!
//! ```no_run
//! use courier::nats::jetstream::{self, StreamOptions, ConsumerOptions};
//! courier::run(async {
//!     let client = courier::nats::connect(["nats://127.0.0.1:4222"]).await?;
//!     let js = jetstream::new(client);
//!     js.create_stream(&StreamOptions::new("ORDERS").subjects(["orders.>"])).await?;
//!     let ack = js.publish("orders.1", "new order").await?;
//!     println!("stored as {} #{}", ack.stream, ack.seq);
//!     let consumer = js.create_consumer("ORDERS", &ConsumerOptions::durable("proc")).await?;
//!     for msg in consumer.fetch(10, std::time::Duration::from_secs(1)).await? {
//!         msg.ack().await?;
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! }).unwrap();
//! ```
//!
//! # Delivery guarantees
//!
//! - [`Context::publish`] is at-least-once when retried: `Ok(PubAck)` means
//!   stored; an error other than [`JetStreamError::Api`] / `NoStream` leaves
//!   it unknown. Retry with the same `Nats-Msg-Id` ([`PublishOptions::msg_id`];
//!   set by default when [`PublishOptions::retries`] > 0) and the stream's
//!   duplicate window drops the copy.
//! - [`PublishWindow`] keeps at most `window` publishes awaiting their ack,
//!   each with its own timeout; every publish ends acknowledged, refused or
//!   timed out (counted in [`WindowStats`]), across reconnects too.
//! - Pull consumers with explicit ack are at-least-once: a message not acked
//!   within `ack_wait` is delivered again, up to `max_deliver` times.
//!
//! The protocol (subjects, JSON, ack metadata, statuses) is
//! `courier_core::nats::jetstream`, shared with the embedded drivers.

mod ack;
mod consumer;
mod error;
mod message;
mod publish;
mod pull;
mod stream;

use std::time::Duration;

use courier_core::nats::jetstream::{ApiOp, ApiPrefix};

pub use consumer::{ConsumerOptions, Deliver, PullConsumer};
pub use courier_core::nats::jetstream::{
    AckPolicy, ConsumerInfo as ConsumerInfoRef, Discard, Retention, SequencePair, Storage,
    StreamState,
};
pub use error::{ApiError, ApiErrorKind, JetStreamError};
pub use message::{AckMetadata, JsMessage};
pub(crate) use publish::publish_once;
pub use publish::{AckFuture, PubAck, PublishOptions, PublishWindow, WindowStats};
pub use pull::{Messages, PullOptions};
pub use stream::{ConsumerInfo, StreamInfo, StreamOptions};

use super::{Client, Message};

/// Default time a JetStream API call or publish waits for its answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A JetStream context over a client (cheap to clone).
#[derive(Clone)]
pub struct Context {
    client: Client,
    domain: Option<String>,
    timeout: Duration,
}

/// A JetStream context over `client`, API prefix `$JS.API`.
pub fn new(client: Client) -> Context {
    Context {
        client,
        domain: None,
        timeout: DEFAULT_TIMEOUT,
    }
}

impl Context {
    /// Uses the JetStream domain `domain` (`$JS.<domain>.API`).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// How long API calls and publishes wait for their answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The NATS client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The answer timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn prefix(&self) -> ApiPrefix<'_> {
        match &self.domain {
            Some(d) => ApiPrefix::Domain(d),
            None => ApiPrefix::Default,
        }
    }

    pub(crate) fn api_subject(&self, op: ApiOp<'_>) -> Result<String, JetStreamError> {
        let mut buf = vec![0u8; 1024];
        Ok(op.write(self.prefix(), &mut buf)?.to_string())
    }

    /// One API request: the reply, or the API's error.
    pub(crate) async fn api_request(
        &self,
        op: ApiOp<'_>,
        body: &[u8],
    ) -> Result<Message, JetStreamError> {
        let subject = self.api_subject(op)?;
        match self
            .client
            .request_with(&subject, None, body, self.timeout)
            .await
        {
            Ok(m) => Ok(m),
            Err(super::Error::NoResponders { .. }) => Err(JetStreamError::NotEnabled),
            Err(super::Error::TimedOut { after, .. }) => Err(JetStreamError::TimedOut {
                operation: "JetStream API request",
                after,
            }),
            Err(e) => Err(JetStreamError::Nats(e)),
        }
    }
}

/// JSON written by `encode` into a growing buffer (no size guess can be wrong).
pub(crate) fn to_json(
    encode: impl for<'b> Fn(&'b mut [u8]) -> Result<&'b [u8], courier_core::nats::jetstream::JsError>,
) -> Result<Vec<u8>, JetStreamError> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0u8; size];
        match encode(&mut buf) {
            Ok(json) => return Ok(json.to_vec()),
            Err(courier_core::nats::jetstream::JsError::BufferTooSmall { .. })
                if size < 1 << 20 =>
            {
                size *= 4
            }
            Err(e) => return Err(e.into()),
        }
    }
}
