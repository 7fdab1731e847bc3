//! The methods of AMQP 0-9-1 a client sends or receives, one file per class,
//! each method both encoded and decoded (the tests and scripted peers use
//! the direction a client does not).
//!
//! A method frame's payload is `[class u16][method u16][arguments]`.

mod basic;
mod channel;
mod connection;
mod exchange;
mod queue;

pub use basic::Basic;
pub use channel::{Channel, Confirm, Tx};
pub use connection::Connection;
pub use exchange::Exchange;
pub use queue::Queue;

use super::codec::{DecodeError, Reader, Writer};
use super::ids::class;

/// Any method, by class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    /// Class 10.
    Connection(Connection<'a>),
    /// Class 20.
    Channel(Channel<'a>),
    /// Class 40.
    Exchange(Exchange<'a>),
    /// Class 50.
    Queue(Queue<'a>),
    /// Class 60.
    Basic(Basic<'a>),
    /// Class 85.
    Confirm(Confirm),
    /// Class 90.
    Tx(Tx),
}

impl<'a> Method<'a> {
    /// `(class id, method id)`.
    pub fn ids(&self) -> (u16, u16) {
        match self {
            Method::Connection(m) => (class::CONNECTION, m.method_id()),
            Method::Channel(m) => (class::CHANNEL, m.method_id()),
            Method::Exchange(m) => (class::EXCHANGE, m.method_id()),
            Method::Queue(m) => (class::QUEUE, m.method_id()),
            Method::Basic(m) => (class::BASIC, m.method_id()),
            Method::Confirm(m) => (class::CONFIRM, m.method_id()),
            Method::Tx(m) => (class::TX, m.method_id()),
        }
    }

    /// True when a content header and body follow this method.
    pub fn has_content(&self) -> bool {
        matches!(self, Method::Basic(b) if b.has_content())
    }

    /// Decodes a method frame's payload; every byte must be used.
    pub fn read(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let (class_id, method) = (r.u16()?, r.u16()?);
        let m = match class_id {
            class::CONNECTION => Method::Connection(Connection::read(method, &mut r)?),
            class::CHANNEL => Method::Channel(Channel::read(method, &mut r)?),
            class::EXCHANGE => Method::Exchange(Exchange::read(method, &mut r)?),
            class::QUEUE => Method::Queue(Queue::read(method, &mut r)?),
            class::BASIC => Method::Basic(Basic::read(method, &mut r)?),
            class::CONFIRM => Method::Confirm(Confirm::read(method, &mut r)?),
            class::TX => Method::Tx(Tx::read(method)?),
            class => return Err(DecodeError::UnknownMethod { class, method }),
        };
        r.finish()?;
        Ok(m)
    }

    /// Encodes class id, method id and arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        let (class_id, method_id) = self.ids();
        w.u16(class_id);
        w.u16(method_id);
        match self {
            Method::Connection(m) => m.write(w),
            Method::Channel(m) => m.write(w),
            Method::Exchange(m) => m.write(w),
            Method::Queue(m) => m.write(w),
            Method::Basic(m) => m.write(w),
            Method::Confirm(m) => m.write(w),
            Method::Tx(_) => {}
        }
    }
}

impl<'a> From<Connection<'a>> for Method<'a> {
    fn from(m: Connection<'a>) -> Self {
        Method::Connection(m)
    }
}
impl<'a> From<Channel<'a>> for Method<'a> {
    fn from(m: Channel<'a>) -> Self {
        Method::Channel(m)
    }
}
impl<'a> From<Exchange<'a>> for Method<'a> {
    fn from(m: Exchange<'a>) -> Self {
        Method::Exchange(m)
    }
}
impl<'a> From<Queue<'a>> for Method<'a> {
    fn from(m: Queue<'a>) -> Self {
        Method::Queue(m)
    }
}
impl<'a> From<Basic<'a>> for Method<'a> {
    fn from(m: Basic<'a>) -> Self {
        Method::Basic(m)
    }
}
impl From<Confirm> for Method<'_> {
    fn from(m: Confirm) -> Self {
        Method::Confirm(m)
    }
}
impl From<Tx> for Method<'_> {
    fn from(m: Tx) -> Self {
        Method::Tx(m)
    }
}
