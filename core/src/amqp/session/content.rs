//! Received content (basic.deliver, basic.return, basic.get-ok): a method
//! frame, a content header frame and body frames.
//!
//! Choice: a delivery is handed out only when all its frames are in the
//! receive buffer, and its body as the borrowed body-frame payloads
//! ([`Body::chunks`]; one slice, [`Body::as_slice`], in the common case of a
//! body within one frame). Nothing is copied and no allocation is needed,
//! and the application sees one complete message with one delivery tag (a
//! header event plus body chunk events would make every consumer reassemble
//! or stream). The price is the documented bound: the receive buffer must
//! hold a whole message plus 8 bytes per frame; a larger one is
//! [`Error::FrameTooLarge`] as soon as its header frame arrives.

use crate::amqp::codec::ShortStr;
use crate::amqp::error::Error;
use crate::amqp::frame::{self, FrameError, FrameKind};
use crate::amqp::ids::{ChannelId, ReplyCode, FRAME_OVERHEAD};
use crate::amqp::properties::{ContentHeader, Properties};

/// Which method brought the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind<'a> {
    /// basic.deliver to a consumer.
    Deliver {
        /// The consumer.
        consumer_tag: ShortStr<'a>,
        /// Tag to ack / nack / reject with on the same channel.
        delivery_tag: u64,
        /// Delivered before and not acked.
        redelivered: bool,
    },
    /// basic.return: a mandatory publish no queue took.
    Return {
        /// Why (312 NO_ROUTE...).
        reply_code: ReplyCode,
        /// The server's text.
        reply_text: ShortStr<'a>,
    },
    /// basic.get-ok.
    Get {
        /// Tag to ack with.
        delivery_tag: u64,
        /// Delivered before.
        redelivered: bool,
        /// Messages left in the queue.
        message_count: u32,
    },
}

/// A received message; every slice borrows the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Channel it arrived on (ack on the same channel).
    pub channel: ChannelId,
    /// Deliver, return or get.
    pub kind: DeliveryKind<'a>,
    /// Exchange it was published to.
    pub exchange: ShortStr<'a>,
    /// Its routing key.
    pub routing_key: ShortStr<'a>,
    /// Its properties.
    pub properties: Properties<'a>,
    /// Its body.
    pub body: Body<'a>,
}

impl Delivery<'_> {
    /// The delivery tag, for deliveries and gets (not returns).
    pub fn delivery_tag(&self) -> Option<u64> {
        match self.kind {
            DeliveryKind::Deliver { delivery_tag, .. } | DeliveryKind::Get { delivery_tag, .. } => {
                Some(delivery_tag)
            }
            DeliveryKind::Return { .. } => None,
        }
    }
}

/// A message body: the body frames as they sit in the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body<'a> {
    frames: &'a [u8],
    len: u64,
}

impl<'a> Body<'a> {
    /// Size in bytes.
    pub const fn len(&self) -> u64 {
        self.len
    }
    /// True for an empty body.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The body pieces in order (one per body frame).
    pub fn chunks(&self) -> Chunks<'a> {
        Chunks { rest: self.frames }
    }
    /// The body as one slice when it is in one frame (or empty).
    pub fn as_slice(&self) -> Option<&'a [u8]> {
        let mut chunks = self.chunks();
        let first = chunks.next().unwrap_or(&[]);
        match chunks.next() {
            None => Some(first),
            Some(_) => None,
        }
    }
    /// Copies the body into `out`; the bytes copied (all of them unless
    /// `out` is shorter).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        for chunk in self.chunks() {
            let n = chunk.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&chunk[..n]);
            at += n;
        }
        at
    }
}

/// Iterator over a [`Body`]'s pieces.
#[derive(Clone, Debug)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            // Validated by `assemble`: body frames, maybe heartbeats between.
            let (f, used) = frame::parse(self.rest, usize::MAX, 0).ok()??;
            self.rest = &self.rest[used..];
            if f.kind == FrameKind::Body {
                return Some(f.payload);
            }
        }
    }
}

/// A complete content: header, body, and bytes used from the input start.
pub(super) struct Content<'a> {
    pub header: ContentHeader<'a>,
    pub body: Body<'a>,
    pub used: usize,
}

fn unexpected(what: &'static str, channel: ChannelId) -> Error {
    Error::Unexpected {
        what,
        channel,
        code: ReplyCode::UnexpectedFrame,
    }
}

/// Finds the header and body frames after a content method that ended at
/// `at`. `Ok(None)`: not all there yet. Heartbeats between body frames are
/// allowed and skipped; any other frame before the body is complete is 505
/// UNEXPECTED_FRAME (RabbitMQ writes a message's frames together).
pub(super) fn assemble(
    input: &[u8],
    at: usize,
    channel: ChannelId,
    capacity: usize,
    frame_max: u32,
) -> Result<Option<Content<'_>>, Error> {
    let parse = |at: usize| {
        frame::parse(&input[at..], capacity.saturating_sub(at), frame_max).map_err(|e| match e {
            FrameError::TooLarge { needed, .. } => Error::FrameTooLarge {
                needed: needed + at,
                capacity,
            },
            other => Error::Frame(other),
        })
    };
    let Some((f, used)) = parse(at)? else {
        return Ok(None);
    };
    if f.kind != FrameKind::Header || f.channel != channel {
        return Err(unexpected(
            "a frame other than the content header",
            f.channel,
        ));
    }
    let header = ContentHeader::read(f.payload).map_err(Error::Decode)?;
    let body_start = at + used;
    // The whole message must fit: say so now, before its body arrives.
    let per_frame = match frame_max {
        0 => u64::MAX,
        m => u64::from(m).saturating_sub(FRAME_OVERHEAD as u64).max(1),
    };
    let frames = header.body_size.div_ceil(per_frame);
    let needed = (body_start as u64)
        .saturating_add(header.body_size)
        .saturating_add(frames.saturating_mul(FRAME_OVERHEAD as u64));
    if needed > capacity as u64 {
        return Err(Error::FrameTooLarge {
            needed: usize::try_from(needed).unwrap_or(usize::MAX),
            capacity,
        });
    }
    let mut got = 0u64;
    let mut end = body_start;
    while got < header.body_size {
        let Some((f, used)) = parse(end)? else {
            return Ok(None);
        };
        match f.kind {
            FrameKind::Heartbeat => {}
            FrameKind::Body if f.channel == channel => got += f.payload.len() as u64,
            _ => return Err(unexpected("a frame inside a message body", f.channel)),
        }
        end += used;
    }
    if got != header.body_size {
        return Err(unexpected("a body longer than its header says", channel));
    }
    Ok(Some(Content {
        header,
        body: Body {
            frames: &input[body_start..end],
            len: got,
        },
        used: end,
    }))
}
