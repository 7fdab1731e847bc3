//! Class `basic` (60): QoS, consumers, publish, deliveries, acknowledgements.

use crate::amqp::codec::{DecodeError, Reader, ShortStr, Writer};
use crate::amqp::table::FieldTable;

/// A method of class `basic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basic<'a> {
    /// 60.10 client → server.
    Qos {
        /// Octets of unacked content allowed (0: no limit; RabbitMQ wants 0).
        prefetch_size: u32,
        /// Unacked messages allowed per consumer (0: no limit).
        prefetch_count: u16,
        /// RabbitMQ: shared by all consumers of the channel.
        global: bool,
    },
    /// 60.11
    QosOk,
    /// 60.20 client → server.
    Consume {
        /// Queue.
        queue: ShortStr<'a>,
        /// Tag ("" asks the server for one).
        consumer_tag: ShortStr<'a>,
        /// Not delivered own publishes (RabbitMQ ignores it).
        no_local: bool,
        /// Auto-ack: at-most-once.
        no_ack: bool,
        /// Only consumer of the queue.
        exclusive: bool,
        /// No reply wanted.
        nowait: bool,
        /// Arguments (x-priority...).
        arguments: FieldTable<'a>,
    },
    /// 60.21
    ConsumeOk {
        /// The consumer's tag.
        consumer_tag: ShortStr<'a>,
    },
    /// 60.30 either way (the server cancels a consumer whose queue went).
    Cancel {
        /// Which consumer.
        consumer_tag: ShortStr<'a>,
        /// No reply wanted.
        nowait: bool,
    },
    /// 60.31
    CancelOk {
        /// Which consumer.
        consumer_tag: ShortStr<'a>,
    },
    /// 60.40 client → server, followed by content.
    Publish {
        /// Exchange ("" is the default exchange).
        exchange: ShortStr<'a>,
        /// Routing key.
        routing_key: ShortStr<'a>,
        /// Return the message if no queue takes it.
        mandatory: bool,
        /// Return the message if no consumer takes it (RabbitMQ refuses it).
        immediate: bool,
    },
    /// 60.50 server → client, followed by content.
    Return {
        /// Why (312 NO_ROUTE...).
        reply_code: u16,
        /// Text.
        reply_text: ShortStr<'a>,
        /// Exchange it was published to.
        exchange: ShortStr<'a>,
        /// Its routing key.
        routing_key: ShortStr<'a>,
    },
    /// 60.60 server → client, followed by content.
    Deliver {
        /// Consumer.
        consumer_tag: ShortStr<'a>,
        /// Channel-scoped tag to ack with.
        delivery_tag: u64,
        /// Delivered before and not acked.
        redelivered: bool,
        /// Exchange it was published to.
        exchange: ShortStr<'a>,
        /// Its routing key.
        routing_key: ShortStr<'a>,
    },
    /// 60.70 client → server.
    Get {
        /// Queue.
        queue: ShortStr<'a>,
        /// Auto-ack.
        no_ack: bool,
    },
    /// 60.71 server → client, followed by content.
    GetOk {
        /// Tag to ack with.
        delivery_tag: u64,
        /// Delivered before.
        redelivered: bool,
        /// Exchange it was published to.
        exchange: ShortStr<'a>,
        /// Its routing key.
        routing_key: ShortStr<'a>,
        /// Messages left in the queue.
        message_count: u32,
    },
    /// 60.72
    GetEmpty,
    /// 60.80 either way (server → client: a publisher confirm).
    Ack {
        /// Tag.
        delivery_tag: u64,
        /// Every tag up to this one.
        multiple: bool,
    },
    /// 60.90 client → server.
    Reject {
        /// Tag.
        delivery_tag: u64,
        /// Put it back in the queue (else dead-letter or drop).
        requeue: bool,
    },
    /// 60.110 client → server.
    Recover {
        /// Requeue (else redeliver to the same consumer).
        requeue: bool,
    },
    /// 60.111
    RecoverOk,
    /// 60.120 either way (server → client: a negative publisher confirm).
    Nack {
        /// Tag.
        delivery_tag: u64,
        /// Every tag up to this one.
        multiple: bool,
        /// Put back in the queue (client → server only).
        requeue: bool,
    },
}

impl<'a> Basic<'a> {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Basic::Qos { .. } => 10,
            Basic::QosOk => 11,
            Basic::Consume { .. } => 20,
            Basic::ConsumeOk { .. } => 21,
            Basic::Cancel { .. } => 30,
            Basic::CancelOk { .. } => 31,
            Basic::Publish { .. } => 40,
            Basic::Return { .. } => 50,
            Basic::Deliver { .. } => 60,
            Basic::Get { .. } => 70,
            Basic::GetOk { .. } => 71,
            Basic::GetEmpty => 72,
            Basic::Ack { .. } => 80,
            Basic::Reject { .. } => 90,
            Basic::Recover { .. } => 110,
            Basic::RecoverOk => 111,
            Basic::Nack { .. } => 120,
        }
    }

    /// True for the methods followed by a content header and body.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Basic::Publish { .. }
                | Basic::Return { .. }
                | Basic::Deliver { .. }
                | Basic::GetOk { .. }
        )
    }

    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => Basic::Qos {
                prefetch_size: r.u32()?,
                prefetch_count: r.u16()?,
                global: r.bit()?,
            },
            11 => Basic::QosOk,
            20 => {
                r.u16()?;
                let (queue, consumer_tag) = (r.short_str()?, r.short_str()?);
                let [no_local, no_ack, exclusive, nowait] = r.bits()?;
                Basic::Consume {
                    queue,
                    consumer_tag,
                    no_local,
                    no_ack,
                    exclusive,
                    nowait,
                    arguments: r.table()?,
                }
            }
            21 => Basic::ConsumeOk {
                consumer_tag: r.short_str()?,
            },
            30 => Basic::Cancel {
                consumer_tag: r.short_str()?,
                nowait: r.bit()?,
            },
            31 => Basic::CancelOk {
                consumer_tag: r.short_str()?,
            },
            40 => {
                r.u16()?;
                let (exchange, routing_key) = (r.short_str()?, r.short_str()?);
                let [mandatory, immediate] = r.bits()?;
                Basic::Publish {
                    exchange,
                    routing_key,
                    mandatory,
                    immediate,
                }
            }
            50 => Basic::Return {
                reply_code: r.u16()?,
                reply_text: r.short_str()?,
                exchange: r.short_str()?,
                routing_key: r.short_str()?,
            },
            60 => Basic::Deliver {
                consumer_tag: r.short_str()?,
                delivery_tag: r.u64()?,
                redelivered: r.bit()?,
                exchange: r.short_str()?,
                routing_key: r.short_str()?,
            },
            70 => {
                r.u16()?;
                Basic::Get {
                    queue: r.short_str()?,
                    no_ack: r.bit()?,
                }
            }
            71 => Basic::GetOk {
                delivery_tag: r.u64()?,
                redelivered: r.bit()?,
                exchange: r.short_str()?,
                routing_key: r.short_str()?,
                message_count: r.u32()?,
            },
            72 => {
                r.short_str()?;
                Basic::GetEmpty
            }
            80 => Basic::Ack {
                delivery_tag: r.u64()?,
                multiple: r.bit()?,
            },
            90 => Basic::Reject {
                delivery_tag: r.u64()?,
                requeue: r.bit()?,
            },
            110 => Basic::Recover { requeue: r.bit()? },
            111 => Basic::RecoverOk,
            120 => {
                let delivery_tag = r.u64()?;
                let [multiple, requeue] = r.bits()?;
                Basic::Nack {
                    delivery_tag,
                    multiple,
                    requeue,
                }
            }
            method => return Err(DecodeError::UnknownMethod { class: 60, method }),
        })
    }

    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            Basic::Qos {
                prefetch_size,
                prefetch_count,
                global,
            } => {
                w.u32(prefetch_size);
                w.u16(prefetch_count);
                w.bits(&[global]);
            }
            Basic::Consume {
                queue,
                consumer_tag,
                no_local,
                no_ack,
                exclusive,
                nowait,
                arguments,
            } => {
                w.u16(0);
                w.short_str(queue);
                w.short_str(consumer_tag);
                w.bits(&[no_local, no_ack, exclusive, nowait]);
                w.table(arguments);
            }
            Basic::ConsumeOk { consumer_tag } | Basic::CancelOk { consumer_tag } => {
                w.short_str(consumer_tag)
            }
            Basic::Cancel {
                consumer_tag,
                nowait,
            } => {
                w.short_str(consumer_tag);
                w.bits(&[nowait]);
            }
            Basic::Publish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            } => {
                w.u16(0);
                w.short_str(exchange);
                w.short_str(routing_key);
                w.bits(&[mandatory, immediate]);
            }
            Basic::Return {
                reply_code,
                reply_text,
                exchange,
                routing_key,
            } => {
                w.u16(reply_code);
                w.short_str(reply_text);
                w.short_str(exchange);
                w.short_str(routing_key);
            }
            Basic::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
            } => {
                w.short_str(consumer_tag);
                w.u64(delivery_tag);
                w.bits(&[redelivered]);
                w.short_str(exchange);
                w.short_str(routing_key);
            }
            Basic::Get { queue, no_ack } => {
                w.u16(0);
                w.short_str(queue);
                w.bits(&[no_ack]);
            }
            Basic::GetOk {
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message_count,
            } => {
                w.u64(delivery_tag);
                w.bits(&[redelivered]);
                w.short_str(exchange);
                w.short_str(routing_key);
                w.u32(message_count);
            }
            Basic::GetEmpty => w.short_str(ShortStr::new("")),
            Basic::Ack {
                delivery_tag,
                multiple,
            } => {
                w.u64(delivery_tag);
                w.bits(&[multiple]);
            }
            Basic::Reject {
                delivery_tag,
                requeue,
            } => {
                w.u64(delivery_tag);
                w.bits(&[requeue]);
            }
            Basic::Recover { requeue } => w.bits(&[requeue]),
            Basic::Nack {
                delivery_tag,
                multiple,
                requeue,
            } => {
                w.u64(delivery_tag);
                w.bits(&[multiple, requeue]);
            }
            Basic::QosOk | Basic::RecoverOk => {}
        }
    }
}
