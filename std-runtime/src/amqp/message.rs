//! A received message, owned (copied out of the receive buffer once), with
//! its acknowledgement handle.

use std::rc::Weak;

use courier_core::amqp::{ChannelId, Delivery, DeliveryKind, FieldTable, FieldValue, Properties};

use super::connection::Inner;
use super::Error;

/// Owned message properties (those applications use; all of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// MIME content type.
    pub content_type: Option<String>,
    /// MIME content encoding.
    pub content_encoding: Option<String>,
    /// The headers table, encoded (read it with [`MessageProperties::headers`]).
    pub headers_raw: Option<Vec<u8>>,
    /// 2: persistent.
    pub delivery_mode: Option<u8>,
    /// Priority.
    pub priority: Option<u8>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Reply-to.
    pub reply_to: Option<String>,
    /// Expiration (ms, as text).
    pub expiration: Option<String>,
    /// Message id.
    pub message_id: Option<String>,
    /// Timestamp (Unix seconds).
    pub timestamp: Option<u64>,
    /// Type.
    pub kind: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// App id.
    pub app_id: Option<String>,
}

impl MessageProperties {
    fn from_core(p: &Properties<'_>) -> Self {
        let s = |v: Option<courier_core::amqp::ShortStr<'_>>| v.map(|v| v.to_string());
        MessageProperties {
            content_type: s(p.content_type),
            content_encoding: s(p.content_encoding),
            headers_raw: p.headers.map(|h| h.as_bytes().to_vec()),
            delivery_mode: p.delivery_mode,
            priority: p.priority,
            correlation_id: s(p.correlation_id),
            reply_to: s(p.reply_to),
            expiration: s(p.expiration),
            message_id: s(p.message_id),
            timestamp: p.timestamp,
            kind: s(p.kind),
            user_id: s(p.user_id),
            app_id: s(p.app_id),
        }
    }

    /// The headers table, if any.
    pub fn headers(&self) -> Option<FieldTable<'_>> {
        self.headers_raw
            .as_deref()
            .and_then(|raw| FieldTable::from_raw(raw).ok())
    }

    /// A header's value, if present.
    pub fn header(&self, key: &str) -> Option<FieldValue<'_>> {
        self.headers()?.get(key)
    }
}

/// A message delivered to a consumer.
///
/// Without auto-ack it must be settled with [`Message::ack`],
/// [`Message::nack`] or [`Message::reject`] (at-least-once: an unsettled
/// message is redelivered when the channel or connection goes).
#[derive(Debug)]
pub struct Message {
    /// Channel-scoped tag.
    pub delivery_tag: u64,
    /// Delivered before and not acked.
    pub redelivered: bool,
    /// Exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Its properties.
    pub properties: MessageProperties,
    /// Its body.
    pub body: Vec<u8>,
    pub(crate) channel: ChannelId,
    pub(crate) conn: Weak<Inner>,
    /// Connection generation it arrived on.
    pub(crate) epoch: u64,
}

impl Message {
    pub(crate) fn from_delivery(d: &Delivery<'_>) -> Self {
        let (delivery_tag, redelivered) = match d.kind {
            DeliveryKind::Deliver {
                delivery_tag,
                redelivered,
                ..
            }
            | DeliveryKind::Get {
                delivery_tag,
                redelivered,
                ..
            } => (delivery_tag, redelivered),
            DeliveryKind::Return { .. } => (0, false),
        };
        let mut body = Vec::with_capacity(d.body.len() as usize);
        for chunk in d.body.chunks() {
            body.extend_from_slice(chunk);
        }
        Message {
            delivery_tag,
            redelivered,
            exchange: d.exchange.to_string(),
            routing_key: d.routing_key.to_string(),
            properties: MessageProperties::from_core(&d.properties),
            body,
            channel: d.channel,
            conn: Weak::new(),
            epoch: 0,
        }
    }

    fn settle(
        &self,
        f: impl Fn(&mut super::connection::CoreSession) -> Result<(), courier_core::amqp::Error>,
    ) -> Result<(), Error> {
        super::unsettled::settle(&self.conn, self.epoch, f)
    }

    /// Acknowledges it: the broker forgets it.
    pub fn ack(&self) -> Result<(), Error> {
        self.settle(|s| s.ack(self.channel, self.delivery_tag, false))
    }

    /// Negative acknowledgement: requeued (`requeue`), else dead-lettered
    /// or dropped.
    pub fn nack(&self, requeue: bool) -> Result<(), Error> {
        self.settle(|s| s.nack(self.channel, self.delivery_tag, false, requeue))
    }

    /// Rejects it: requeued (`requeue`), else dead-lettered or dropped.
    pub fn reject(&self, requeue: bool) -> Result<(), Error> {
        self.settle(|s| s.reject(self.channel, self.delivery_tag, requeue))
    }
}
