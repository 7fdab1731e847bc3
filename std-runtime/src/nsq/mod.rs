//! NSQ producer and consumer over the sans-IO core session
//! (`courier_core::nsq`), on the io_uring / epoll transport.
//!
//! - [`Producer`]: `PUB`, `MPUB`, `DPUB` to one or more nsqd nodes with
//!   failover; each publish returns when nsqd answered.
//! - [`Consumer`]: (topic, channel) couplets on nsqd nodes given
//!   ([`ServerNodes`]) or discovered through nsqlookupd ([`LookupNodes`]);
//!   messages are classified by a [`Handler`] and dispatched per class,
//!   with RDY managed by the core's RDY controller so `max_in_flight` is
//!   never exceeded across connections.
//! - TLS (rustls, CA given by the user, optional client certificate),
//!   snappy and DEFLATE are negotiated through IDENTIFY ([`Config`]) and
//!   stacked as nsqd expects: TCP -> TLS -> compression -> protocol.

mod config;
mod conn;
mod consumer;
mod error;
mod lookup;
mod producer;
mod publish_deadline;

use courier_core::nsq::IdentifyResponse;

pub use config::{Compression, Config};
pub use conn::ConnInfo;
pub use consumer::{
    Consumer, ConsumerBuilder, Handler, HandlerError, LookupNodes, Message, Nodes, ServerNodes,
};
pub use courier_core::nsq::{ConnId, ErrorCode, MessageId, ServerError};
pub use error::Error;
pub use producer::Producer;

pub use crate::layers::TlsConfig;

/// Connection callbacks (the nsqs seed's `ConnectionCallbacks` /
/// `ConsumerCallbacks`). Every method has a default that does nothing
/// (`rdy_replenish` keeps the original RDY).
pub trait Callbacks {
    /// The TCP connection to nsqd is established.
    fn connect(&self, conn: &ConnInfo) {
        let _ = conn;
    }
    /// nsqd answered IDENTIFY with these negotiated settings (None when
    /// it answered a plain `OK`).
    fn identify(&self, conn: &ConnInfo, negotiated: Option<&IdentifyResponse>) {
        let _ = (conn, negotiated);
    }
    /// The connection broke (or was closed) with this error.
    fn broken(&self, conn: &ConnInfo, error: &Error) {
        let _ = (conn, error);
    }
    /// A message arrived (before it is classified and handled). The body
    /// borrows the receive buffer.
    fn message_received(&self, conn: &ConnInfo, message: &courier_core::nsq::Message<'_>) {
        let _ = (conn, message);
    }
    /// Consumer only: a connection's free RDY window dropped to
    /// `current_rdy`; return the RDY to use (default: `original_rdy`).
    /// The RDY controller still caps it so `max_in_flight` holds.
    fn rdy_replenish(&self, conn: ConnId, current_rdy: u32, original_rdy: u32) -> u32 {
        let _ = (conn, current_rdy);
        original_rdy
    }
}

/// Callbacks that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallbacks;

impl Callbacks for NoCallbacks {}
