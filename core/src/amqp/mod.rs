//! AMQP 0-9-1 client protocol (RabbitMQ), sans-IO.
//!
//! Layers, bottom up (imports only point down):
//! - [`ids`]: frame types, class ids, reply codes.
//! - [`codec`], [`table`], [`frame`], [`properties`]: primitives, field
//!   tables, frames, content-header properties.
//! - [`methods`]: every method a client sends or receives, one file per class.
//! - [`error`]: the one error type.
//! - [`session`]: the connection state machine (handshake, heartbeats,
//!   channels, publisher confirms, deliveries), in its own folder.
//!
//! A driver owns the transport and a receive buffer; it calls
//! [`Session::start`] once connected, feeds received bytes to
//! [`Session::handle_input`], drains [`Session::poll_event`], writes
//! [`Session::transmit`], and calls [`Session::handle_timeout`] at
//! [`Session::poll_timeout`].

pub mod codec;
pub mod error;
pub mod frame;
pub mod ids;
pub mod methods;
pub mod properties;
pub mod session;
pub mod table;

pub use codec::{DecodeError, EncodeError, ShortStr};
pub use error::{CloseReason, Error, Text};
pub use ids::{ChannelId, ReplyCode};
pub use methods::Method;
pub use properties::Properties;
pub use session::{
    Body, ConsumeFlags, Delivery, DeliveryKind, Event, Mechanism, Options, PublishFlags, Reply,
    ResetReport, Session, State, Tune,
};
pub use table::{FieldTable, FieldValue, TableBuilder};
