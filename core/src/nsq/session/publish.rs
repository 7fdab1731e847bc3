//! What a producer sends: PUB, DPUB, MPUB (whole, or only the header for a
//! vectored write), each tracked until nsqd answers it.

use super::{Pending, PublishId, Session, SessionError};
use crate::buf::TxBuf;
use crate::nsq::commands::{self as encode, CommandError};

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    /// The steps every PUB/DPUB/MPUB variant shares: ready and room for its
    /// answer checked before a byte is written, then tracked for that answer.
    fn queue_publish(
        &mut self,
        operation: &'static str,
        encode: impl FnOnce(&mut TxBuf<S>) -> Result<(), CommandError>,
    ) -> Result<PublishId, SessionError> {
        self.require_ready(operation)?;
        self.reserve_pending()?;
        encode(&mut self.tx)?;
        Ok(self.track_publish())
    }

    fn track_publish(&mut self) -> PublishId {
        let id = PublishId(self.next_publish_id);
        self.next_publish_id += 1;
        self.push_pending(Pending::Publish(id));
        id
    }

    /// Sends `PUB topic body`.
    pub fn publish(&mut self, topic: &str, body: &[u8]) -> Result<PublishId, SessionError> {
        self.queue_publish("PUB", |tx| encode::encode_pub(tx, topic, body))
    }

    /// Queues only PUB's header; the driver must write [`Session::transmit`]
    /// and then exactly `body_len` body bytes before anything else is
    /// queued (vectored / zero-copy publish).
    pub fn publish_header(
        &mut self,
        topic: &str,
        body_len: usize,
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("PUB", |tx| encode::encode_pub_header(tx, topic, body_len))
    }

    /// Sends `DPUB topic defer_ms body`: delivered after `defer_ms`.
    pub fn publish_deferred(
        &mut self,
        topic: &str,
        defer_ms: u32,
        body: &[u8],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("DPUB", |tx| encode::encode_dpub(tx, topic, defer_ms, body))
    }

    /// Queues only DPUB's header (see [`Session::publish_header`]).
    pub fn publish_deferred_header(
        &mut self,
        topic: &str,
        defer_ms: u32,
        body_len: usize,
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("DPUB", |tx| {
            encode::encode_dpub_header(tx, topic, defer_ms, body_len)
        })
    }

    /// Sends `MPUB topic` with all `messages`; one id covers the batch
    /// (nsqd accepts or rejects it whole).
    pub fn publish_multi(
        &mut self,
        topic: &str,
        messages: &[&[u8]],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("MPUB", |tx| encode::encode_mpub(tx, topic, messages))
    }

    /// Queues only MPUB's header; the driver then writes, for each message,
    /// [`mpub_message_prefix`](crate::nsq::commands::mpub_message_prefix) and the message.
    pub fn publish_multi_header(
        &mut self,
        topic: &str,
        messages: &[&[u8]],
    ) -> Result<PublishId, SessionError> {
        self.queue_publish("MPUB", |tx| encode::encode_mpub_header(tx, topic, messages))
    }
}
