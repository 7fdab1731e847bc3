//! Frames for channels other than 0: synchronous replies, publisher
//! confirms, server-sent cancels and closes, and received messages.

use super::content::{self, Delivery, DeliveryKind};
use super::{close_reason, ChannelState, Event, Reply, Session};
use crate::amqp::error::{text, Error};
use crate::amqp::ids::{ChannelId, ReplyCode};
use crate::amqp::methods::{Basic, Channel, Confirm, Exchange, Method, Queue, Tx};

impl<S, const CHANNELS: usize, const CONFIRM_WORDS: usize> Session<S, CHANNELS, CONFIRM_WORDS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    fn channel_error(&mut self, channel: ChannelId) -> Error {
        let code = ReplyCode::ChannelError;
        self.fail_with_close(
            code,
            Error::Unexpected {
                what: "a method for a channel that is not open",
                channel,
                code,
            },
        )
    }

    /// A content method (deliver, return, get-ok) and its frames.
    pub(super) fn on_content<'a>(
        &mut self,
        input: &'a [u8],
        at: usize,
        channel: ChannelId,
        method: Method<'a>,
        capacity: usize,
    ) -> Result<(usize, Option<Delivery<'a>>), Error> {
        let frame_max = self.tune.frame_max;
        let c = match content::assemble(input, at, channel, capacity, frame_max) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok((0, None)),
            Err(Error::Unexpected { what, channel, .. }) => {
                return Err(self.unexpected(what, channel))
            }
            Err(Error::Frame(e)) => {
                return Err(self.fail_with_close(ReplyCode::FrameError, Error::Frame(e)))
            }
            Err(Error::Decode(e)) => {
                return Err(self.fail_with_close(ReplyCode::SyntaxError, Error::Decode(e)))
            }
            Err(e) => return Err(self.fail(e)),
        };
        let state = self.channels.get(channel).map(|s| s.state);
        match state {
            Some(ChannelState::Open) => {}
            // The spec: drop what arrives for a channel we are closing.
            Some(ChannelState::Closing) => return Ok((c.used, None)),
            _ => return Err(self.channel_error(channel)),
        }
        let (kind, exchange, routing_key) = match method {
            Method::Basic(Basic::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
            }) => (
                DeliveryKind::Deliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                },
                exchange,
                routing_key,
            ),
            Method::Basic(Basic::Return {
                reply_code,
                reply_text,
                exchange,
                routing_key,
            }) => (
                DeliveryKind::Return {
                    reply_code: ReplyCode::from_u16(reply_code),
                    reply_text,
                },
                exchange,
                routing_key,
            ),
            Method::Basic(Basic::GetOk {
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message_count,
            }) => (
                DeliveryKind::Get {
                    delivery_tag,
                    redelivered,
                    message_count,
                },
                exchange,
                routing_key,
            ),
            // basic.publish from a server.
            _ => return Err(self.command_invalid(channel)),
        };
        let delivery = Delivery {
            channel,
            kind,
            exchange,
            routing_key,
            properties: c.header.properties,
            body: c.body,
        };
        Ok((c.used, Some(delivery)))
    }

    fn command_invalid(&mut self, channel: ChannelId) -> Error {
        let code = ReplyCode::CommandInvalid;
        self.fail_with_close(
            code,
            Error::Unexpected {
                what: "a method a server does not send",
                channel,
                code,
            },
        )
    }

    /// A method without content on a channel other than 0.
    pub(super) fn on_channel_method(
        &mut self,
        channel: ChannelId,
        method: Method<'_>,
    ) -> Result<(), Error> {
        let Some(slot) = self.channels.get(channel) else {
            return Err(self.channel_error(channel));
        };
        let state = slot.state;
        match method {
            Method::Channel(Channel::Close {
                reply_code,
                reply_text,
                class_id,
                method_id,
            }) => {
                // Answer even when closing ourselves (both sides closed).
                let _ = self.send(channel, Channel::CloseOk.into());
                let unconfirmed = self.channels.remove(channel).map_or(0, |s| s.unconfirmed());
                let reason = close_reason(reply_code, reply_text, class_id, method_id);
                self.push_event(Event::ChannelClosed {
                    channel,
                    reason: Some(reason),
                    unconfirmed,
                });
                return Ok(());
            }
            Method::Channel(Channel::CloseOk) if state == ChannelState::Closing => {
                let unconfirmed = self.channels.remove(channel).map_or(0, |s| s.unconfirmed());
                self.push_event(Event::ChannelClosed {
                    channel,
                    reason: None,
                    unconfirmed,
                });
                return Ok(());
            }
            _ if state == ChannelState::Closing => return Ok(()),
            Method::Channel(Channel::OpenOk) if state == ChannelState::Opening => {
                if let Some(s) = self.channels.get_mut(channel) {
                    s.state = ChannelState::Open;
                }
                self.push_event(Event::ChannelOpened { channel });
                return Ok(());
            }
            _ if state == ChannelState::Opening => return Err(self.channel_error(channel)),
            _ => {}
        }
        let event = match method {
            Method::Channel(Channel::Flow { active }) => {
                self.send(channel, Channel::FlowOk { active }.into())?;
                if let Some(s) = self.channels.get_mut(channel) {
                    s.flow_active = active;
                }
                Event::Flow { channel, active }
            }
            Method::Basic(Basic::Ack {
                delivery_tag,
                multiple,
            }) => self.on_confirm(channel, delivery_tag, multiple, true),
            Method::Basic(Basic::Nack {
                delivery_tag,
                multiple,
                ..
            }) => self.on_confirm(channel, delivery_tag, multiple, false),
            Method::Basic(Basic::Cancel {
                consumer_tag,
                nowait,
            }) => {
                if !nowait {
                    self.send(channel, Basic::CancelOk { consumer_tag }.into())?;
                }
                Event::ConsumerCancelled {
                    channel,
                    consumer_tag: text(consumer_tag),
                }
            }
            other => {
                let Some(reply) = reply_of(&other) else {
                    return Err(self.command_invalid(channel));
                };
                Event::Reply { channel, reply }
            }
        };
        self.push_event(event);
        Ok(())
    }

    fn on_confirm(
        &mut self,
        channel: ChannelId,
        delivery_tag: u64,
        multiple: bool,
        ack: bool,
    ) -> Event {
        let settled = self
            .channels
            .get_mut(channel)
            .and_then(|s| s.confirms.as_mut())
            .map_or(0, |c| c.settle(delivery_tag, multiple));
        Event::Confirm {
            channel,
            delivery_tag,
            multiple,
            ack,
            settled,
        }
    }
}

/// The [`Reply`] a `*-ok` method means, if it is one.
fn reply_of(method: &Method<'_>) -> Option<Reply> {
    Some(match *method {
        Method::Channel(Channel::FlowOk { active }) => Reply::FlowOk { active },
        Method::Exchange(Exchange::DeclareOk) => Reply::ExchangeDeclared,
        Method::Exchange(Exchange::DeleteOk) => Reply::ExchangeDeleted,
        Method::Exchange(Exchange::BindOk) => Reply::ExchangeBound,
        Method::Exchange(Exchange::UnbindOk) => Reply::ExchangeUnbound,
        Method::Queue(Queue::DeclareOk {
            queue,
            message_count,
            consumer_count,
        }) => Reply::QueueDeclared {
            queue: text(queue),
            message_count,
            consumer_count,
        },
        Method::Queue(Queue::BindOk) => Reply::QueueBound,
        Method::Queue(Queue::UnbindOk) => Reply::QueueUnbound,
        Method::Queue(Queue::PurgeOk { message_count }) => Reply::QueuePurged { message_count },
        Method::Queue(Queue::DeleteOk { message_count }) => Reply::QueueDeleted { message_count },
        Method::Basic(Basic::QosOk) => Reply::QosOk,
        Method::Basic(Basic::ConsumeOk { consumer_tag }) => Reply::ConsumeOk {
            consumer_tag: text(consumer_tag),
        },
        Method::Basic(Basic::CancelOk { consumer_tag }) => Reply::CancelOk {
            consumer_tag: text(consumer_tag),
        },
        Method::Basic(Basic::GetEmpty) => Reply::GetEmpty,
        Method::Basic(Basic::RecoverOk) => Reply::RecoverOk,
        Method::Confirm(Confirm::SelectOk) => Reply::ConfirmSelected,
        Method::Tx(Tx::SelectOk) => Reply::TxSelected,
        Method::Tx(Tx::CommitOk) => Reply::TxCommitted,
        Method::Tx(Tx::RollbackOk) => Reply::TxRolledBack,
        _ => return None,
    })
}
