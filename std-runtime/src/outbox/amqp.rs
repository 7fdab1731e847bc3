//! The outbox publishing to RabbitMQ: each record goes out with
//! `basic.publish` on a channel in confirm mode and is removed from the
//! spool only once the broker acks it. A nack, a cut connection (the
//! confirmation fails, never counts as sent) or no ack within
//! `ack_timeout` puts the record back at the front of the queue and
//! retries after a backoff with jitter. The connection's own recovery
//! reconnects and re-opens the channel in confirm mode meanwhile.
//!
//! A record's header block holds its AMQP `basic` properties as the
//! content header encodes them (flag word, then the present properties;
//! [`encode_properties`]), so content type, headers table, message id and
//! timestamp survive the spool and a restart.

use std::rc::Rc;

use courier_core::amqp::codec::{Reader, Writer};
use courier_core::amqp::{Properties, PublishFlags};

use super::{Core, Outbox, OutboxError, OutboxOptions, Record, Recovery};
use crate::amqp::{Channel, Confirmation};

/// Encodes `properties` as a record header block for
/// [`Outbox::publish_with_headers`] on an AMQP outbox.
pub fn encode_properties(properties: &Properties<'_>) -> Result<Vec<u8>, OutboxError> {
    let mut count = Writer::counting();
    properties.write(&mut count);
    let len = count
        .finish()
        .map_err(|e| OutboxError::Setup(format!("AMQP properties: {e}")))?;
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    properties.write(&mut w);
    w.finish()
        .map_err(|e| OutboxError::Setup(format!("AMQP properties: {e}")))?;
    Ok(out)
}

/// Reads back what [`encode_properties`] wrote (borrowing from `block`).
pub fn decode_properties(block: &[u8]) -> Result<Properties<'_>, String> {
    if block.is_empty() {
        return Ok(Properties::default());
    }
    let mut r = Reader::new(block);
    let p = Properties::read(&mut r).map_err(|e| format!("stored AMQP properties: {e}"))?;
    r.finish()
        .map_err(|e| format!("stored AMQP properties: {e}"))?;
    Ok(p)
}

impl Outbox {
    /// An outbox publishing to `exchange` through `channel`, which must be
    /// in confirm mode ([`Channel::confirm_select`]): a record's subject is
    /// its routing key, its header block its properties
    /// ([`encode_properties`]). At-least-once: removed from the spool only
    /// once the broker acked it; after a cut or a restart a record the
    /// broker had already taken may be published again. Replays the spool
    /// at once.
    pub async fn amqp(
        channel: Channel,
        exchange: String,
        options: OutboxOptions,
    ) -> Result<(Outbox, Recovery), OutboxError> {
        let (core, recovery) = Self::open(options)?;
        crate::runtime::spawn(amqp_sender(core.clone(), channel, exchange));
        Ok((Outbox { core }, recovery))
    }
}

/// Sends batches of up to `window` records, then waits for their acks;
/// the unacked ones go back to the front of the queue, in order.
async fn amqp_sender(core: Rc<Core>, ch: Channel, exchange: String) {
    let max = core.options.window.max(1);
    let mut attempt = 0;
    while let Some(batch) = core.next_batch(max, false).await {
        let mut sent: Vec<(Record, Option<Confirmation>)> = Vec::with_capacity(batch.len());
        for rec in batch {
            let props = match decode_properties(&rec.headers) {
                Ok(p) => p,
                Err(why) => {
                    core.refuse(rec, why);
                    continue;
                }
            };
            // A publish waits while the connection recovers: once the
            // outbox is stopped it must not go out later (the record stays
            // on disk for the next open; dropping the wait writes nothing).
            let publish = ch.publish_with(
                &exchange,
                &rec.subject,
                PublishFlags::default(),
                &props,
                &rec.payload,
            );
            let res = tokio::select! {
                r = publish => r,
                _ = stopped(&core) => return,
            };
            match res {
                Ok(c) => sent.push((rec, Some(c))),
                Err(e) => {
                    log::debug!("outbox: record {} not published ({e})", rec.id);
                    sent.push((rec, None));
                }
            }
        }
        let mut retry = Vec::new();
        for (rec, confirmation) in sent {
            let acked = match confirmation {
                Some(c) => {
                    let ack = tokio::time::timeout(core.options.ack_timeout, c);
                    tokio::select! {
                        r = ack => matches!(r, Ok(Ok(()))),
                        _ = stopped(&core) => return,
                    }
                }
                None => false,
            };
            if acked {
                core.confirm(rec.id, false);
            } else {
                retry.push(rec);
            }
        }
        if retry.is_empty() {
            attempt = 0;
            continue;
        }
        log::debug!("outbox: {} records not confirmed; retrying", retry.len());
        core.stat(|s| s.retries += retry.len() as u64);
        {
            let mut q = core.queue.borrow_mut();
            for rec in retry.into_iter().rev() {
                q.push_front(rec);
            }
        }
        if core.stopped.get() {
            return; // stays on disk; replayed at the next open
        }
        core.backoff(attempt).await;
        attempt += 1;
    }
}

/// Resolves once the outbox is stopped ([`Outbox::stop`] wakes `work`).
async fn stopped(core: &Core) {
    loop {
        let woken = core.work.notified();
        if core.stopped.get() {
            return;
        }
        woken.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::amqp::{FieldTable, FieldValue, TableBuilder};

    #[test]
    fn properties_survive_the_spool_block() {
        let mut buf = [0u8; 64];
        let mut t = TableBuilder::new(&mut buf);
        t.insert("k", FieldValue::LongStr(b"v"));
        let table: FieldTable<'_> = t.finish().unwrap();
        let p = Properties::default()
            .content_type("application/json")
            .message_id("m-1")
            .timestamp(1_700_000_000)
            .headers(table);
        let block = encode_properties(&p).unwrap();
        let back = decode_properties(&block).unwrap();
        assert_eq!(encode_properties(&back).unwrap(), block);
        assert_eq!(back.message_id.map(|m| m.as_bytes()), Some(&b"m-1"[..]));
        assert_eq!(back.timestamp, Some(1_700_000_000));
        assert!(decode_properties(&block[..block.len() - 1]).is_err());
    }
}
