//! A message delivered by a consumer, with its metadata and its acks.

use std::time::Duration;

use courier_core::nats::jetstream::{AckKind, AckMetadata as CoreMetadata};

use super::JetStreamError;
use crate::nats::{Client, HeaderMap, Message};

/// What the consumer's reply subject says about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckMetadata {
    /// Stream.
    pub stream: String,
    /// Consumer.
    pub consumer: String,
    /// JetStream domain, if any.
    pub domain: Option<String>,
    /// Times delivered (1 the first time).
    pub delivered: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// Consumer sequence.
    pub consumer_seq: u64,
    /// Stored at, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Messages pending for the consumer after this one.
    pub pending: u64,
}

impl AckMetadata {
    /// Parses a `$JS.ACK` reply subject (v1 or v2 layout).
    pub fn parse(reply: &str) -> Result<Self, JetStreamError> {
        let m = CoreMetadata::parse(reply)?;
        Ok(AckMetadata {
            stream: m.stream.to_string(),
            consumer: m.consumer.to_string(),
            domain: m.domain.map(str::to_string),
            delivered: m.delivered,
            stream_seq: m.stream_seq,
            consumer_seq: m.consumer_seq,
            timestamp_ns: m.timestamp_ns,
            pending: m.pending,
        })
    }
}

/// A consumer's message. Acknowledge it with [`JsMessage::ack`] (or nak,
/// in-progress, term); unacknowledged, it is delivered again after the
/// consumer's ack wait (at-least-once).
pub struct JsMessage {
    message: Message,
    client: Client,
    metadata: AckMetadata,
}

impl std::fmt::Debug for JsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsMessage")
            .field("subject", &self.message.subject())
            .field("metadata", &self.metadata)
            .field("payload", &self.message.payload)
            .finish()
    }
}

impl JsMessage {
    pub(crate) fn new(message: Message, client: Client) -> Result<Self, JetStreamError> {
        let reply = message.reply().ok_or(JetStreamError::NotAckable)?;
        let metadata = AckMetadata::parse(reply)?;
        Ok(JsMessage {
            message,
            client,
            metadata,
        })
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject()
    }
    /// The payload.
    pub fn payload(&self) -> &bytes::Bytes {
        &self.message.payload
    }
    /// Headers (`Nats-Msg-Id`...), if any.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message.headers()
    }
    /// Sequences, delivery count, timestamp, pending.
    pub fn metadata(&self) -> &AckMetadata {
        &self.metadata
    }
    /// The underlying NATS message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    async fn send(&self, kind: AckKind<'_>) -> Result<(), JetStreamError> {
        let mut buf = [0u8; 128];
        let body = kind.encode(&mut buf)?;
        let reply = self.message.reply().ok_or(JetStreamError::NotAckable)?;
        self.client.publish(reply, body).await?;
        Ok(())
    }

    /// `+ACK`: processed; not delivered again. Fire-and-forget: a lost ack
    /// means one redelivery (use [`JsMessage::ack_sync`] to know).
    pub async fn ack(&self) -> Result<(), JetStreamError> {
        self.send(AckKind::Ack).await
    }

    /// `+ACK` as a request: returns once the server confirmed the ack.
    pub async fn ack_sync(&self, timeout: Duration) -> Result<(), JetStreamError> {
        let reply = self.message.reply().ok_or(JetStreamError::NotAckable)?;
        match self
            .client
            .request_with(reply, None, b"+ACK", timeout)
            .await
        {
            Ok(_) => Ok(()),
            Err(crate::nats::Error::TimedOut { after, .. }) => Err(JetStreamError::TimedOut {
                operation: "ack",
                after,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// `-NAK`: deliver again, after `delay` when given.
    pub async fn nak(&self, delay: Option<Duration>) -> Result<(), JetStreamError> {
        self.send(AckKind::Nak(delay)).await
    }

    /// `+WPI`: still working; restarts the ack wait.
    pub async fn in_progress(&self) -> Result<(), JetStreamError> {
        self.send(AckKind::InProgress).await
    }

    /// `+TERM`: never deliver again.
    pub async fn term(&self) -> Result<(), JetStreamError> {
        self.send(AckKind::Term(None)).await
    }
}
