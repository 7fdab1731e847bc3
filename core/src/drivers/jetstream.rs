//! JetStream publish with acknowledgement on the blocking driver:
//! [`NatsClient::js_publish`] returns the stream's [`JsAck`] once the
//! message is stored, without allocating.
//!
//! Delivery: at-least-once when retried. `Ok` means the stream stored the
//! message. A timeout or a lost connection leaves it unknown whether it was
//! stored: publish again with the same `msg_id` and the stream's duplicate
//! window drops the copy (the ack then says `duplicate: true`).

use core::fmt;

use embedded_io::{Read, Write};

use super::blocking::NatsClient;
use super::NatsEvent;
use super::{Clock, Error};
use crate::nats::headers::HeaderWriter;
use crate::nats::info::InfoStorage;
use crate::nats::jetstream::{decode_pub_ack, JsError, PublishOptions};
use crate::time::Duration;

/// Longest stream name a [`JsAck`] keeps.
pub const STREAM_NAME_CAPACITY: usize = 64;
/// Room for the publish headers (`Nats-Msg-Id` and expectations).
pub const PUBLISH_HEADERS_CAPACITY: usize = 384;

/// The stream's acknowledgement, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsAck {
    /// Stream that stored the message (cut at [`STREAM_NAME_CAPACITY`]).
    pub stream: heapless::String<STREAM_NAME_CAPACITY>,
    /// Its sequence in the stream.
    pub seq: u64,
    /// The stream had it already (same `Nats-Msg-Id` within the window).
    pub duplicate: bool,
}

/// Why a JetStream publish did not return an ack.
#[derive(Debug)]
pub enum JsPublishError<E> {
    /// The driver failed (transport, timeout, no responders: no stream
    /// stores that subject). Whether the message was stored is unknown
    /// except for [`Error::NoResponders`] (it was not).
    Driver(Error<E>),
    /// JetStream refused it (an API error: wrong last sequence, too large...)
    /// or the reply was not a `PubAck`. It was not stored.
    JetStream(JsError),
}

impl<E> From<Error<E>> for JsPublishError<E> {
    fn from(e: Error<E>) -> Self {
        JsPublishError::Driver(e)
    }
}

impl<E: embedded_io::Error> fmt::Display for JsPublishError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsPublishError::Driver(e) => e.fmt(f),
            JsPublishError::JetStream(e) => e.fmt(f),
        }
    }
}

impl<T, C, R, S, const SUBS: usize, const REQS: usize, I> NatsClient<T, C, R, S, SUBS, REQS, I>
where
    T: Read + Write,
    C: Clock,
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
{
    /// Publishes `payload` to a subject a stream stores and blocks until
    /// the stream's acknowledgement (or `timeout`). `options` sets
    /// `Nats-Msg-Id` (set one to retry safely) and the expected-sequence
    /// conditions. Needs `ConnectOptions::inbox_prefix` like `request`.
    /// Events that arrive meanwhile go to `on_event`.
    pub fn js_publish(
        &mut self,
        subject: &str,
        options: &PublishOptions<'_>,
        payload: &[u8],
        timeout: Duration,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<JsAck, JsPublishError<T::Error>> {
        let mut storage = [0u8; PUBLISH_HEADERS_CAPACITY];
        let headers = if options.is_empty() {
            None
        } else {
            let mut w = HeaderWriter::new(&mut storage[..])
                .map_err(|e| Error::Nats(crate::nats::Error::from(e)))?;
            options
                .write(&mut w)
                .map_err(|e| Error::Nats(crate::nats::Error::from(e)))?;
            let len = w.len();
            Some(len)
        };
        let headers = headers.map(|len| &storage[..len]);
        let decoded = self.request_with(
            subject,
            headers,
            payload,
            timeout,
            |reply| {
                decode_pub_ack(reply.payload).map(|ack| {
                    let mut stream = heapless::String::new();
                    let mut end = ack.stream.len().min(STREAM_NAME_CAPACITY);
                    while !ack.stream.is_char_boundary(end) {
                        end -= 1;
                    }
                    let _ = stream.push_str(&ack.stream[..end]);
                    JsAck {
                        stream,
                        seq: ack.seq,
                        duplicate: ack.duplicate,
                    }
                })
            },
            on_event,
        )?;
        decoded.map_err(JsPublishError::JetStream)
    }
}
