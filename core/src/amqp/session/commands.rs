//! What the application sends: channels, confirms, publishes, consumers,
//! acknowledgements, and the declare / bind / delete family via
//! [`Session::call`].

use super::confirms::ConfirmTracker;
use super::{ChannelState, Session, State};
use crate::amqp::codec::Writer;
use crate::amqp::error::Error;
use crate::amqp::frame;
use crate::amqp::ids::{
    ChannelId, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, FRAME_OVERHEAD,
};
use crate::amqp::methods::{Basic, Channel, Confirm, Exchange, Method, Queue, Tx};
use crate::amqp::properties::{ContentHeader, Properties};
use crate::amqp::table::FieldTable;

/// Options of a publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishFlags {
    /// Return the message ([`DeliveryKind::Return`](super::DeliveryKind::Return))
    /// when no queue takes it, instead of dropping it.
    pub mandatory: bool,
}

/// Options of a consumer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumeFlags {
    /// Auto-ack: the broker forgets a message once sent (at-most-once).
    /// Without it every delivery must be acked, nacked or rejected
    /// (at-least-once).
    pub no_ack: bool,
    /// Be the queue's only consumer.
    pub exclusive: bool,
}

impl<S, const CHANNELS: usize, const CONFIRM_WORDS: usize> Session<S, CHANNELS, CONFIRM_WORDS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    fn check_open(&self, channel: ChannelId) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Error::NotConnected);
        }
        match self.channels.get(channel) {
            Some(s) if s.state == ChannelState::Open => Ok(()),
            _ => Err(Error::ChannelNotOpen(channel)),
        }
    }

    /// Opens a channel with the lowest free number;
    /// [`Event::ChannelOpened`](super::Event::ChannelOpened) follows.
    pub fn open_channel(&mut self) -> Result<ChannelId, Error> {
        if self.state != State::Open {
            return Err(Error::NotConnected);
        }
        let limit = self.tune.channel_max;
        let id = self.channels.allocate(limit).ok_or(Error::NoFreeChannel {
            limit: limit.min(u16::try_from(CHANNELS).unwrap_or(u16::MAX)),
        })?;
        if let Err(e) = self.send(id, Channel::Open.into()) {
            self.channels.remove(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Closes a channel; [`Event::ChannelClosed`](super::Event::ChannelClosed)
    /// with `reason: None` follows.
    pub fn close_channel(&mut self, channel: ChannelId) -> Result<(), Error> {
        self.check_open(channel)?;
        self.send(
            channel,
            Channel::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            }
            .into(),
        )?;
        if let Some(s) = self.channels.get_mut(channel) {
            s.state = ChannelState::Closing;
        }
        Ok(())
    }

    /// Puts the channel in confirm mode: from now on its publishes get
    /// delivery tags 1, 2, 3... and [`Event::Confirm`](super::Event::Confirm)s.
    pub fn confirm_select(&mut self, channel: ChannelId) -> Result<(), Error> {
        self.check_open(channel)?;
        if self.channel(channel).is_some_and(|s| s.confirms.is_some()) {
            return Ok(());
        }
        self.send(channel, Confirm::Select { nowait: false }.into())?;
        if let Some(s) = self.channels.get_mut(channel) {
            s.confirms = Some(ConfirmTracker::new());
        }
        Ok(())
    }

    /// Sends a method of the declare / bind / delete / qos / consume / ack
    /// family on an open channel. Methods with their own function (channel
    /// open and close, confirm.select, publish) and server-only methods are
    /// refused with [`Error::NotCallable`]. Its reply, unless `nowait`, is
    /// an [`Event::Reply`](super::Event::Reply).
    pub fn call<'m>(
        &mut self,
        channel: ChannelId,
        method: impl Into<Method<'m>>,
    ) -> Result<(), Error> {
        let method = method.into();
        let callable = matches!(
            method,
            Method::Exchange(
                Exchange::Declare { .. }
                    | Exchange::Delete { .. }
                    | Exchange::Bind { .. }
                    | Exchange::Unbind { .. }
            ) | Method::Queue(
                Queue::Declare { .. }
                    | Queue::Bind { .. }
                    | Queue::Purge { .. }
                    | Queue::Delete { .. }
                    | Queue::Unbind { .. }
            ) | Method::Basic(
                Basic::Qos { .. }
                    | Basic::Consume { .. }
                    | Basic::Cancel { .. }
                    | Basic::Get { .. }
                    | Basic::Ack { .. }
                    | Basic::Reject { .. }
                    | Basic::Nack { .. }
                    | Basic::Recover { .. }
            ) | Method::Channel(Channel::Flow { .. })
                | Method::Tx(Tx::Select | Tx::Commit | Tx::Rollback)
        );
        if !callable {
            let (class_id, method_id) = method.ids();
            return Err(Error::NotCallable {
                class_id,
                method_id,
            });
        }
        self.check_open(channel)?;
        self.send(channel, method)
    }

    /// Limits unacked deliveries per consumer (`global`: per channel).
    pub fn qos(
        &mut self,
        channel: ChannelId,
        prefetch_count: u16,
        global: bool,
    ) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Qos {
                prefetch_size: 0,
                prefetch_count,
                global,
            },
        )
    }

    /// Starts a consumer on `queue` (`consumer_tag` "" lets the server
    /// choose; the tag comes back in [`Reply::ConsumeOk`](super::Reply::ConsumeOk)).
    pub fn consume(
        &mut self,
        channel: ChannelId,
        queue: &str,
        consumer_tag: &str,
        flags: ConsumeFlags,
        arguments: FieldTable<'_>,
    ) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Consume {
                queue: queue.into(),
                consumer_tag: consumer_tag.into(),
                no_local: false,
                no_ack: flags.no_ack,
                exclusive: flags.exclusive,
                nowait: false,
                arguments,
            },
        )
    }

    /// Stops a consumer; [`Reply::CancelOk`](super::Reply::CancelOk) follows
    /// (deliveries sent before it may still arrive).
    pub fn cancel(&mut self, channel: ChannelId, consumer_tag: &str) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Cancel {
                consumer_tag: consumer_tag.into(),
                nowait: false,
            },
        )
    }

    /// Acknowledges a delivery (with `multiple`, every one up to it).
    pub fn ack(
        &mut self,
        channel: ChannelId,
        delivery_tag: u64,
        multiple: bool,
    ) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Ack {
                delivery_tag,
                multiple,
            },
        )
    }

    /// Negatively acknowledges a delivery: requeued, or dead-lettered /
    /// dropped without `requeue`.
    pub fn nack(
        &mut self,
        channel: ChannelId,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Nack {
                delivery_tag,
                multiple,
                requeue,
            },
        )
    }

    /// Rejects one delivery: requeued, or dead-lettered / dropped.
    pub fn reject(
        &mut self,
        channel: ChannelId,
        delivery_tag: u64,
        requeue: bool,
    ) -> Result<(), Error> {
        self.call(
            channel,
            Basic::Reject {
                delivery_tag,
                requeue,
            },
        )
    }

    pub(super) fn body_frame_payload(&self) -> usize {
        match self.tune.frame_max {
            0 => usize::MAX,
            m => (m as usize).saturating_sub(FRAME_OVERHEAD).max(1),
        }
    }

    /// Bytes a publish takes in the transmit buffer (method, header and
    /// body frames), or the encoding error.
    pub fn publish_size(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body_len: usize,
    ) -> Result<usize, Error> {
        let method = Method::Basic(Basic::Publish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        });
        let mut c = Writer::counting();
        method.write(&mut c);
        ContentHeader::basic(body_len as u64, *properties).write(&mut c);
        let frames = body_len.div_ceil(self.body_frame_payload());
        Ok(c.finish()? + body_len + (2 + frames) * FRAME_OVERHEAD)
    }

    /// Publishes a message: method, header and body frames (split at the
    /// negotiated frame-max) are written into the transmit buffer at once,
    /// the body copied there once (so it must fit the buffer; for a body
    /// the driver writes from its own memory see
    /// [`Session::publish_body_later`]).
    ///
    /// On a channel in confirm mode returns the delivery tag the broker
    /// will confirm ([`Event::Confirm`](super::Event::Confirm)): the publish
    /// is at-least-once and counts as sent only once acked. Without confirm
    /// mode returns `None` (at-most-once). Nothing is written on error:
    /// [`Error::BufferFull`] (flush and retry), [`Error::ConfirmWindowFull`]
    /// (wait for confirms), [`Error::Blocked`] (wait for unblocked),
    /// [`Error::FlowPaused`] (wait for the channel's flow to resume).
    pub fn publish(
        &mut self,
        channel: ChannelId,
        exchange: &str,
        routing_key: &str,
        flags: PublishFlags,
        properties: &Properties<'_>,
        body: &[u8],
    ) -> Result<Option<u64>, Error> {
        self.check_publish(channel)?;
        let content = Content {
            channel,
            exchange,
            routing_key,
            flags,
            properties,
        };
        self.write_content(&content, body.len(), Some(body))?;
        Ok(self.next_confirm_tag(channel))
    }

    /// Why a publish on `channel` cannot be written now, if it cannot.
    pub(super) fn check_publish(&self, channel: ChannelId) -> Result<(), Error> {
        self.check_open(channel)?;
        if self.blocked_since.is_some() {
            return Err(Error::Blocked);
        }
        if self.channels.get(channel).is_some_and(|s| !s.flow_active) {
            return Err(Error::FlowPaused(channel));
        }
        if let Some(c) = self.channels.get(channel).and_then(|s| s.confirms.as_ref()) {
            if c.is_full() {
                return Err(Error::ConfirmWindowFull {
                    outstanding: c.outstanding(),
                });
            }
        }
        Ok(())
    }

    /// The delivery tag of the publish just written (confirm mode), else None.
    pub(super) fn next_confirm_tag(&mut self, channel: ChannelId) -> Option<u64> {
        self.channels
            .get_mut(channel)
            .and_then(|s| s.confirms.as_mut())
            .and_then(|c| c.publish())
    }

    /// Writes the basic.publish method frame and the content header frame
    /// for a body of `body_len` bytes, then, with `body`, its body frames
    /// (split at frame-max): all at once or nothing.
    pub(super) fn write_content(
        &mut self,
        content: &Content<'_, '_>,
        body_len: usize,
        body: Option<&[u8]>,
    ) -> Result<(), Error> {
        let channel = content.channel;
        let method = Method::Basic(Basic::Publish {
            exchange: content.exchange.into(),
            routing_key: content.routing_key.into(),
            mandatory: content.flags.mandatory,
            immediate: false,
        });
        let header = ContentHeader::basic(body_len as u64, *content.properties);
        let mut c = Writer::counting();
        method.write(&mut c);
        let method_len = c.finish()?;
        let mut c = Writer::counting();
        header.write(&mut c);
        let header_len = c.finish()?;
        let per_frame = self.body_frame_payload();
        let body = body.unwrap_or(&[]);
        let frames = body.len().div_ceil(per_frame);
        let total = method_len + header_len + body.len() + (2 + frames) * FRAME_OVERHEAD;
        self.tx.append(total, |out| {
            let mut at = 0;
            let mut put_frame = |kind: u8, len: usize, fill: &mut dyn FnMut(&mut [u8])| {
                frame::write_header(&mut out[at..], kind, channel, len);
                fill(&mut out[at + 7..at + 7 + len]);
                out[at + 7 + len] = FRAME_END;
                at += len + FRAME_OVERHEAD;
            };
            put_frame(FRAME_METHOD, method_len, &mut |o| {
                method.write(&mut Writer::new(o))
            });
            put_frame(FRAME_HEADER, header_len, &mut |o| {
                header.write(&mut Writer::new(o))
            });
            for chunk in body.chunks(per_frame) {
                put_frame(FRAME_BODY, chunk.len(), &mut |o| o.copy_from_slice(chunk));
            }
        })?;
        Ok(())
    }
}

/// What a publish carries besides its body.
pub(super) struct Content<'a, 'p> {
    pub channel: ChannelId,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub flags: PublishFlags,
    pub properties: &'a Properties<'p>,
}
