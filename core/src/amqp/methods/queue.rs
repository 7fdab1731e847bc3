//! Class `queue` (50).

use crate::amqp::codec::{DecodeError, Reader, ShortStr, Writer};
use crate::amqp::table::FieldTable;

/// A method of class `queue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue<'a> {
    /// 50.10 client → server. An empty name asks the server for one.
    Declare {
        /// Queue name ("" for a server-named queue).
        queue: ShortStr<'a>,
        /// Only check that it exists (404 on the channel if not).
        passive: bool,
        /// Survives a broker restart.
        durable: bool,
        /// Only this connection may use it; deleted when it closes.
        exclusive: bool,
        /// Deleted when its last consumer goes.
        auto_delete: bool,
        /// No reply wanted.
        nowait: bool,
        /// Arguments (x-dead-letter-exchange, x-max-length...).
        arguments: FieldTable<'a>,
    },
    /// 50.11 server → client.
    DeclareOk {
        /// The queue's name (the generated one for "").
        queue: ShortStr<'a>,
        /// Ready messages.
        message_count: u32,
        /// Active consumers.
        consumer_count: u32,
    },
    /// 50.20 client → server.
    Bind {
        /// Queue.
        queue: ShortStr<'a>,
        /// Exchange.
        exchange: ShortStr<'a>,
        /// Binding key.
        routing_key: ShortStr<'a>,
        /// No reply wanted.
        nowait: bool,
        /// Arguments (x-match for headers exchanges...).
        arguments: FieldTable<'a>,
    },
    /// 50.21
    BindOk,
    /// 50.30 client → server.
    Purge {
        /// Queue.
        queue: ShortStr<'a>,
        /// No reply wanted.
        nowait: bool,
    },
    /// 50.31
    PurgeOk {
        /// Messages purged.
        message_count: u32,
    },
    /// 50.40 client → server.
    Delete {
        /// Queue.
        queue: ShortStr<'a>,
        /// Only without consumers.
        if_unused: bool,
        /// Only when empty.
        if_empty: bool,
        /// No reply wanted.
        nowait: bool,
    },
    /// 50.41
    DeleteOk {
        /// Messages deleted with it.
        message_count: u32,
    },
    /// 50.50 client → server.
    Unbind {
        /// Queue.
        queue: ShortStr<'a>,
        /// Exchange.
        exchange: ShortStr<'a>,
        /// Binding key.
        routing_key: ShortStr<'a>,
        /// Arguments.
        arguments: FieldTable<'a>,
    },
    /// 50.51
    UnbindOk,
}

impl<'a> Queue<'a> {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Queue::Declare { .. } => 10,
            Queue::DeclareOk { .. } => 11,
            Queue::Bind { .. } => 20,
            Queue::BindOk => 21,
            Queue::Purge { .. } => 30,
            Queue::PurgeOk { .. } => 31,
            Queue::Delete { .. } => 40,
            Queue::DeleteOk { .. } => 41,
            Queue::Unbind { .. } => 50,
            Queue::UnbindOk => 51,
        }
    }
    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => {
                r.u16()?;
                let queue = r.short_str()?;
                let [passive, durable, exclusive, auto_delete, nowait] = r.bits()?;
                Queue::Declare {
                    queue,
                    passive,
                    durable,
                    exclusive,
                    auto_delete,
                    nowait,
                    arguments: r.table()?,
                }
            }
            11 => Queue::DeclareOk {
                queue: r.short_str()?,
                message_count: r.u32()?,
                consumer_count: r.u32()?,
            },
            20 => {
                r.u16()?;
                let (queue, exchange, routing_key) =
                    (r.short_str()?, r.short_str()?, r.short_str()?);
                Queue::Bind {
                    queue,
                    exchange,
                    routing_key,
                    nowait: r.bit()?,
                    arguments: r.table()?,
                }
            }
            21 => Queue::BindOk,
            30 => {
                r.u16()?;
                Queue::Purge {
                    queue: r.short_str()?,
                    nowait: r.bit()?,
                }
            }
            31 => Queue::PurgeOk {
                message_count: r.u32()?,
            },
            40 => {
                r.u16()?;
                let queue = r.short_str()?;
                let [if_unused, if_empty, nowait] = r.bits()?;
                Queue::Delete {
                    queue,
                    if_unused,
                    if_empty,
                    nowait,
                }
            }
            41 => Queue::DeleteOk {
                message_count: r.u32()?,
            },
            50 => {
                r.u16()?;
                Queue::Unbind {
                    queue: r.short_str()?,
                    exchange: r.short_str()?,
                    routing_key: r.short_str()?,
                    arguments: r.table()?,
                }
            }
            51 => Queue::UnbindOk,
            method => return Err(DecodeError::UnknownMethod { class: 50, method }),
        })
    }
    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            Queue::Declare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                nowait,
                arguments,
            } => {
                w.u16(0);
                w.short_str(queue);
                w.bits(&[passive, durable, exclusive, auto_delete, nowait]);
                w.table(arguments);
            }
            Queue::DeclareOk {
                queue,
                message_count,
                consumer_count,
            } => {
                w.short_str(queue);
                w.u32(message_count);
                w.u32(consumer_count);
            }
            Queue::Bind {
                queue,
                exchange,
                routing_key,
                nowait,
                arguments,
            } => {
                w.u16(0);
                w.short_str(queue);
                w.short_str(exchange);
                w.short_str(routing_key);
                w.bits(&[nowait]);
                w.table(arguments);
            }
            Queue::Purge { queue, nowait } => {
                w.u16(0);
                w.short_str(queue);
                w.bits(&[nowait]);
            }
            Queue::PurgeOk { message_count } | Queue::DeleteOk { message_count } => {
                w.u32(message_count)
            }
            Queue::Delete {
                queue,
                if_unused,
                if_empty,
                nowait,
            } => {
                w.u16(0);
                w.short_str(queue);
                w.bits(&[if_unused, if_empty, nowait]);
            }
            Queue::Unbind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                w.u16(0);
                w.short_str(queue);
                w.short_str(exchange);
                w.short_str(routing_key);
                w.table(arguments);
            }
            Queue::BindOk | Queue::UnbindOk => {}
        }
    }
}
