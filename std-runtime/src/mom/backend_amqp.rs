//! AMQP backend: a topic exchange (`exchange=`, default `mom`) declared
//! once when a sender or receiver is created (the connection's own
//! recovery declares it again after a reconnect). pubsub receivers each
//! get an exclusive server-named queue bound with their binding key;
//! pt2pt receivers share the queue `queue=` (default: the receiver's
//! name). A pt2pt sender with `queue=` declares that queue too, bound with
//! its default routing key (or `#`), so nothing sent before the first
//! receiver starts is dropped. `ack=1`: publisher confirms (a send returns
//! once the broker confirmed it) and manual acks; `ack=0`: neither.

use courier_core::amqp::{ConsumeFlags, FieldTable, FieldValue, Properties, TableBuilder};

use super::envelope::{crc_hex, Incoming, Outgoing, Text};
use super::receiver::{Acker, Delivery, ReceiverOptions};
use super::sender::SenderOptions;
use super::uri::{DataType, MomUri};
use super::Error;
use crate::amqp::{Channel, Connection, Consumer, DeclareOptions, Message};
use crate::outbox::{encode_properties, Outbox, OutboxOptions};
use bytes::Bytes;
use std::time::Duration;

const DEFAULT_EXCHANGE: &str = "mom";

async fn open(uri: &MomUri) -> Result<(Connection, Channel, String), Error> {
    let url = uri
        .backend_urls()
        .into_iter()
        .next()
        .expect("a URI has a host");
    let mut options = crate::amqp::ConnectOptions::new(&url);
    if let Some(tls) = uri.tls_config()? {
        options = options.with_tls(tls);
    }
    let conn = Connection::connect_with(options).await?;
    let ch = conn.channel().await?;
    let exchange = uri
        .exchange
        .clone()
        .unwrap_or_else(|| DEFAULT_EXCHANGE.to_string());
    ch.exchange_declare(&exchange, "topic", DeclareOptions::default())
        .await?;
    Ok((conn, ch, exchange))
}

/// The envelope's AMQP header names (the NATS ones in lower case, as
/// the module docs' table says), spelled out: no per-message lowering.
mod key {
    pub const NAME: &str = "mom-name";
    pub const TIMESTAMP: &str = "mom-timestamp";
    pub const CRC32C: &str = "mom-crc32c";
    pub const COMPRESSION: &str = "mom-compression";
}

pub(crate) struct AmqpSender {
    conn: Connection,
    ch: Channel,
    exchange: String,
    /// `outbox=DIR` (needs `ack=1`): every envelope, with its AMQP
    /// properties, is spooled on disk first, then published and retried
    /// until the broker acks it (replayed after a restart).
    outbox: Option<(Outbox, String)>,
}

impl AmqpSender {
    pub async fn connect(uri: &MomUri, options: &SenderOptions) -> Result<Self, Error> {
        let (conn, ch, exchange) = open(uri).await?;
        if uri.ack {
            ch.confirm_select().await?;
        }
        if let (DataType::Pt2Pt, Some(q)) = (uri.data_type, &uri.queue) {
            ch.queue_declare(q, DeclareOptions::default(), FieldTable::EMPTY)
                .await?;
            let key = options.routing_key.as_deref().unwrap_or("#");
            ch.queue_bind(q, &exchange, key, FieldTable::EMPTY).await?;
        }
        let outbox = match &uri.outbox {
            // `Sender::connect` refused an outbox without ack=1.
            Some(dir) => {
                let (outbox, recovery) =
                    Outbox::amqp(ch.clone(), exchange.clone(), OutboxOptions::new(dir)).await?;
                if recovery.replayed > 0 || !recovery.corrupt.is_empty() {
                    log::info!(
                        "mom: outbox {dir}: replaying {} messages, {} corrupt records skipped",
                        recovery.replayed,
                        recovery.corrupt.len()
                    );
                }
                Some((outbox, dir.clone()))
            }
            None => None,
        };
        Ok(AmqpSender {
            conn,
            ch,
            exchange,
            outbox,
        })
    }

    pub async fn send(&self, m: &Outgoing<'_>) -> Result<(), Error> {
        let crc = crc_hex(m.crc());
        let mut buf = [0u8; 512];
        let mut t = TableBuilder::new(&mut buf);
        t.insert(key::NAME, FieldValue::LongStr(m.name.as_bytes()))
            .insert(key::TIMESTAMP, FieldValue::I64(m.timestamp_ms as i64))
            .insert(key::CRC32C, FieldValue::LongStr(&crc));
        if let Some(c) = m.compression.name() {
            t.insert(key::COMPRESSION, FieldValue::LongStr(c.as_bytes()));
        }
        if let Some(k) = m.compression.kombu_header() {
            t.insert("compression", FieldValue::LongStr(k.as_bytes()));
        }
        let table = t
            .finish()
            .map_err(|e| Error::Serialize(format!("AMQP headers over 512 bytes: {e:?}")))?;
        let props = Properties::default()
            .content_type(m.content_type)
            .content_encoding(m.content_encoding)
            .message_id(&m.id)
            .timestamp(m.timestamp_ms / 1000)
            .headers(table);
        if let Some((outbox, _)) = &self.outbox {
            let block = encode_properties(&props)?;
            outbox
                .publish_with_headers(m.name, None, &block, &m.body)
                .await?;
            return Ok(());
        }
        self.ch
            .publish(&self.exchange, m.name, &props, &m.body)
            .await?;
        Ok(())
    }

    /// Stops; with an outbox, waits up to `deadline` for the broker to ack
    /// every spooled message and reports those it did not (they stay in
    /// the spool).
    pub async fn stop(&self, name: &str, deadline: Duration) -> Result<(), Error> {
        if let Some((outbox, dir)) = &self.outbox {
            let report = outbox.stop(deadline).await;
            // Best effort: the broker may be gone.
            let _ = tokio::time::timeout(Duration::from_millis(500), self.conn.close()).await;
            if report.remaining > 0 {
                return Err(Error::Unconfirmed {
                    name: name.to_string(),
                    remaining: report.remaining,
                    spool: dir.clone(),
                });
            }
            return Ok(());
        }
        self.conn.flush().await?;
        self.conn.close().await?;
        Ok(())
    }
}

pub(crate) struct AmqpReceiver {
    conn: Connection,
    consumer: Consumer,
    ack: bool,
}

/// Reads the envelope's fields from a delivery's properties. The
/// properties' own strings (message id, content type and encoding) and
/// the routing key (when the name header repeats it, as the facade's
/// senders write it) move into the envelope rather than being copied:
/// settling the message afterwards needs only its delivery tag.
fn incoming(m: &mut Message) -> Incoming {
    let p = &mut m.properties;
    let id = p.message_id.take().map(Text::from);
    let content_type = p.content_type.take().map(Text::from);
    let content_encoding = p.content_encoding.take().map(Text::from);
    let p = &m.properties;
    let text = |k: &str| {
        p.header(k).and_then(|v| match v {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok().map(Text::from),
            _ => v.as_str().map(Text::from),
        })
    };
    let kombu_compression = || {
        p.header("compression").and_then(|v| match v {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok().map(Text::from),
            _ => None,
        })
    };
    let name_is_key = matches!(p.header(key::NAME), Some(FieldValue::LongStr(b)) if b == m.routing_key.as_bytes());
    let inc = Incoming {
        name: None,
        id,
        // A long, or a decimal string (what py-amqp can be made to write).
        timestamp_ms: p.header(key::TIMESTAMP).and_then(|v| match v {
            FieldValue::LongStr(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            v => v.as_i64().map(|v| v as u64),
        }),
        content_type,
        content_encoding,
        compression: text(key::COMPRESSION).or_else(kombu_compression),
        crc: text(key::CRC32C),
    };
    let name = if name_is_key {
        Some(Text::from(std::mem::take(&mut m.routing_key)))
    } else {
        text(key::NAME)
    };
    Incoming { name, ..inc }
}

impl AmqpReceiver {
    pub async fn connect(name: &str, uri: &MomUri, o: &ReceiverOptions) -> Result<Self, Error> {
        let (conn, ch, exchange) = open(uri).await?;
        let queue = match uri.data_type {
            DataType::PubSub => {
                let opts = DeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                };
                ch.queue_declare("", opts, FieldTable::EMPTY).await?.name
            }
            DataType::Pt2Pt => {
                let q = uri.queue.clone().unwrap_or_else(|| name.to_string());
                ch.queue_declare(&q, DeclareOptions::default(), FieldTable::EMPTY)
                    .await?;
                q
            }
        };
        ch.queue_bind(&queue, &exchange, &o.binding, FieldTable::EMPTY)
            .await?;
        if uri.ack {
            let prefetch = uri.max_in_flight.unwrap_or(100).min(u16::MAX as u32) as u16;
            ch.qos(prefetch).await?;
        }
        let flags = ConsumeFlags {
            no_ack: !uri.ack,
            exclusive: false,
        };
        let consumer = ch.consume(&queue, flags).await?;
        Ok(AmqpReceiver {
            conn,
            consumer,
            ack: uri.ack,
        })
    }

    pub async fn next(&mut self) -> Result<Option<Delivery>, Error> {
        let mut m = match self.consumer.next().await {
            None => return Ok(None),
            Some(r) => r?,
        };
        // The body moves into the envelope (no copy); acking needs only
        // the delivery tag.
        let body = Bytes::from(std::mem::take(&mut m.body));
        let inc = incoming(&mut m);
        match inc.open(&m.routing_key, &body) {
            Ok(env) => {
                let attempt = if m.redelivered { 2 } else { 1 };
                let acker = if self.ack {
                    Acker::Amqp(m)
                } else {
                    Acker::None
                };
                Ok(Some(Delivery::new(env, acker, attempt)))
            }
            Err(e) => {
                // Reported and dropped (dead-lettered if the queue says so).
                if self.ack {
                    let _ = m.reject(false);
                }
                Err(e)
            }
        }
    }

    pub async fn stop(&mut self) {
        let _ = self.consumer.cancel().await;
        let _ = self.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::key;
    use crate::mom::header;

    #[test]
    fn amqp_keys_are_the_lowercase_nats_header_names() {
        for (k, h) in [
            (key::NAME, header::NAME),
            (key::TIMESTAMP, header::TIMESTAMP),
            (key::CRC32C, header::CRC32C),
            (key::COMPRESSION, header::COMPRESSION),
        ] {
            assert_eq!(k, h.to_ascii_lowercase());
        }
    }
}
