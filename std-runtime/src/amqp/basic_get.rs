//! basic.get: one message pulled from a queue, or none.
//!
//! The broker answers get-ok with the message as content (a delivery of
//! kind `Get`) or get-empty (a reply). Each get queues a reply waiter (which
//! also carries errors: channel closed, connection lost) and a message slot;
//! answers arrive in order on a channel, so the front of both queues belongs
//! to the oldest get.

use courier_core::amqp::methods::Basic;
use courier_core::amqp::{ChannelId, Delivery, Reply};
use tokio::sync::oneshot;

use super::channel::Channel;
use super::connection::{Inner, Shared};
use super::message::Message;
use super::Error;

/// The message slot of a pending get.
pub(crate) type GetWaiter = oneshot::Sender<Message>;

impl Channel {
    /// Takes one message from `queue` (basic.get), or `None` when it is
    /// empty. Without `no_ack` the message must be settled like a
    /// consumer's (at-least-once); with `no_ack` the broker forgets it as
    /// it is sent (at-most-once). Polling with get is slower than a
    /// consumer: use it for occasional reads.
    pub async fn get(&self, queue: &str, no_ack: bool) -> Result<Option<Message>, Error> {
        let id = self.id();
        let (reply_tx, reply_rx) = oneshot::channel();
        let (msg_tx, mut msg_rx) = oneshot::channel();
        let mut waiters = Some((reply_tx, msg_tx));
        self.connection()
            .inner
            .with_room(|sh| {
                let method = Basic::Get {
                    queue: queue.into(),
                    no_ack,
                };
                sh.session.call(id, method)?;
                if let Some((r, m)) = waiters.take() {
                    sh.replies.entry(id).or_default().push_back(r);
                    sh.gets.entry(id).or_default().push_back(m);
                }
                Ok(())
            })
            .await?;
        reply_rx
            .await
            .map_err(|_| Error::Disconnected("connection ended".into()))??;
        // The message, if any, was handed over before the reply.
        Ok(msg_rx.try_recv().ok())
    }
}

/// get-ok with its content arrived on `d.channel`.
pub(crate) fn on_get_ok(inner: &Inner, sh: &mut Shared, d: &Delivery<'_>) {
    let mut m = Message::from_delivery(d);
    m.conn = inner.me();
    m.epoch = sh.epoch;
    if let Some(w) = sh.gets.get_mut(&d.channel).and_then(|q| q.pop_front()) {
        let _ = w.send(m);
    }
    if let Some(w) = sh.replies.get_mut(&d.channel).and_then(|q| q.pop_front()) {
        let _ = w.send(Ok(Reply::GetEmpty));
    }
}

/// get-empty arrived on `channel` (its reply waiter is answered by the
/// caller as for any reply).
pub(crate) fn on_get_empty(sh: &mut Shared, channel: ChannelId) {
    if let Some(q) = sh.gets.get_mut(&channel) {
        q.pop_front();
    }
}
