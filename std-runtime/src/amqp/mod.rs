//! AMQP 0-9-1 client (RabbitMQ) over `courier_core::amqp`.
//!
//! - [`Connection`]: one TCP connection; channels as handles.
//! - [`Channel`]: declare / bind, publish with publisher confirms, consume.
//! - [`Consumer`]: a `Stream` of [`Message`]s with ack / nack / reject.
//! - [`Channel::consume_with`]: deliveries borrowed from the receive buffer
//!   handed to a handler that answers with a [`Settle`] (no allocation per
//!   message).
//!
//! Guarantees: on a channel in confirm mode ([`Channel::confirm_select`])
//! a publish is at-least-once: [`Channel::publish`] returns only once the
//! broker acked it, and fails with [`Error::Nacked`], [`Error::Returned`]
//! (mandatory, unroutable) or [`Error::Disconnected`] otherwise: nothing
//! is reported sent before it is confirmed. Without confirm mode a publish
//! is at-most-once. A consumer without auto-ack is at-least-once.
//!
//! ```no_run
//! # courier::run(async {
//! use courier::amqp::{Connection, DeclareOptions};
//! use courier_core::amqp::{FieldTable, Properties};
//! let conn = Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await.unwrap();
//! let ch = conn.channel().await.unwrap();
//! ch.confirm_select().await.unwrap();
//! ch.queue_declare("jobs", DeclareOptions::default(), FieldTable::EMPTY).await.unwrap();
//! ch.publish("", "jobs", &Properties::default(), b"hello").await.unwrap();
//! # });
//! ```

mod basic_get;
mod channel;
mod confirms;
mod connection;
mod consumers;
mod error;
mod io_tasks;
mod large_body;
mod message;
mod recovery;
mod tls;
mod unsettled;
mod url;

pub use channel::{Channel, Consumer, DeclareOptions, QueueInfo};
pub use confirms::Confirmation;
pub use connection::{ConnectOptions, Connection, MAX_CHANNELS};
pub use consumers::{HandlerConsumer, Settle};
pub use error::Error;
pub use large_body::LARGE_BODY;
pub use message::{Message, MessageProperties};
pub use unsettled::Unsettled;
pub use url::AmqpUrl;
