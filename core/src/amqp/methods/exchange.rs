//! Class `exchange` (40).

use crate::amqp::codec::{DecodeError, Reader, ShortStr, Writer};
use crate::amqp::table::FieldTable;

/// A method of class `exchange`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange<'a> {
    /// 40.10 client → server.
    Declare {
        /// Exchange name.
        exchange: ShortStr<'a>,
        /// Type: direct, fanout, topic, headers...
        kind: ShortStr<'a>,
        /// Only check that it exists (404 on the channel if not).
        passive: bool,
        /// Survives a broker restart.
        durable: bool,
        /// Deleted when its last binding goes.
        auto_delete: bool,
        /// Not publishable by clients.
        internal: bool,
        /// No reply wanted.
        nowait: bool,
        /// Arguments (alternate-exchange...).
        arguments: FieldTable<'a>,
    },
    /// 40.11
    DeclareOk,
    /// 40.20 client → server.
    Delete {
        /// Exchange name.
        exchange: ShortStr<'a>,
        /// Only when it has no bindings.
        if_unused: bool,
        /// No reply wanted.
        nowait: bool,
    },
    /// 40.21
    DeleteOk,
    /// 40.30 client → server (RabbitMQ exchange-to-exchange binding).
    Bind {
        /// Receiving exchange.
        destination: ShortStr<'a>,
        /// Sending exchange.
        source: ShortStr<'a>,
        /// Binding key.
        routing_key: ShortStr<'a>,
        /// No reply wanted.
        nowait: bool,
        /// Arguments.
        arguments: FieldTable<'a>,
    },
    /// 40.31
    BindOk,
    /// 40.40 client → server.
    Unbind {
        /// Receiving exchange.
        destination: ShortStr<'a>,
        /// Sending exchange.
        source: ShortStr<'a>,
        /// Binding key.
        routing_key: ShortStr<'a>,
        /// No reply wanted.
        nowait: bool,
        /// Arguments.
        arguments: FieldTable<'a>,
    },
    /// 40.51 (sic: RabbitMQ's id).
    UnbindOk,
}

impl<'a> Exchange<'a> {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Exchange::Declare { .. } => 10,
            Exchange::DeclareOk => 11,
            Exchange::Delete { .. } => 20,
            Exchange::DeleteOk => 21,
            Exchange::Bind { .. } => 30,
            Exchange::BindOk => 31,
            Exchange::Unbind { .. } => 40,
            Exchange::UnbindOk => 51,
        }
    }
    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => {
                r.u16()?;
                let (exchange, kind) = (r.short_str()?, r.short_str()?);
                let [passive, durable, auto_delete, internal, nowait] = r.bits()?;
                Exchange::Declare {
                    exchange,
                    kind,
                    passive,
                    durable,
                    auto_delete,
                    internal,
                    nowait,
                    arguments: r.table()?,
                }
            }
            11 => Exchange::DeclareOk,
            20 => {
                r.u16()?;
                let exchange = r.short_str()?;
                let [if_unused, nowait] = r.bits()?;
                Exchange::Delete {
                    exchange,
                    if_unused,
                    nowait,
                }
            }
            21 => Exchange::DeleteOk,
            30 | 40 => {
                r.u16()?;
                let (destination, source, routing_key) =
                    (r.short_str()?, r.short_str()?, r.short_str()?);
                let nowait = r.bit()?;
                let arguments = r.table()?;
                if method == 30 {
                    Exchange::Bind {
                        destination,
                        source,
                        routing_key,
                        nowait,
                        arguments,
                    }
                } else {
                    Exchange::Unbind {
                        destination,
                        source,
                        routing_key,
                        nowait,
                        arguments,
                    }
                }
            }
            31 => Exchange::BindOk,
            51 => Exchange::UnbindOk,
            method => return Err(DecodeError::UnknownMethod { class: 40, method }),
        })
    }
    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            Exchange::Declare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                nowait,
                arguments,
            } => {
                w.u16(0);
                w.short_str(exchange);
                w.short_str(kind);
                w.bits(&[passive, durable, auto_delete, internal, nowait]);
                w.table(arguments);
            }
            Exchange::Delete {
                exchange,
                if_unused,
                nowait,
            } => {
                w.u16(0);
                w.short_str(exchange);
                w.bits(&[if_unused, nowait]);
            }
            Exchange::Bind {
                destination,
                source,
                routing_key,
                nowait,
                arguments,
            }
            | Exchange::Unbind {
                destination,
                source,
                routing_key,
                nowait,
                arguments,
            } => {
                w.u16(0);
                w.short_str(destination);
                w.short_str(source);
                w.short_str(routing_key);
                w.bits(&[nowait]);
                w.table(arguments);
            }
            Exchange::DeclareOk | Exchange::DeleteOk | Exchange::BindOk | Exchange::UnbindOk => {}
        }
    }
}
