//! The properties of `basic` content (the content header frame): which
//! ones are present is a 16-bit flag word, then the present ones in order.

use super::codec::{DecodeError, Reader, ShortStr, Writer};
use super::ids::class;
use super::table::FieldTable;

/// Message properties of class `basic`; every string borrows its frame.
///
/// Build them for a publish with the setters:
/// ```
/// use courier_core::amqp::Properties;
/// let p = Properties::default().content_type("application/json").correlation_id("42").persistent();
/// assert_eq!(p.delivery_mode, Some(2));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Properties<'a> {
    /// MIME content type.
    pub content_type: Option<ShortStr<'a>>,
    /// MIME content encoding.
    pub content_encoding: Option<ShortStr<'a>>,
    /// Application headers.
    pub headers: Option<FieldTable<'a>>,
    /// 1: transient, 2: persistent.
    pub delivery_mode: Option<u8>,
    /// 0 to 9.
    pub priority: Option<u8>,
    /// Correlates a reply with its request.
    pub correlation_id: Option<ShortStr<'a>>,
    /// Queue to reply to.
    pub reply_to: Option<ShortStr<'a>>,
    /// Per-message TTL in milliseconds, as text.
    pub expiration: Option<ShortStr<'a>>,
    /// Application message id.
    pub message_id: Option<ShortStr<'a>>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// Message type name (`type` on the wire).
    pub kind: Option<ShortStr<'a>>,
    /// Creating user (RabbitMQ checks it against the connection's user).
    pub user_id: Option<ShortStr<'a>>,
    /// Creating application.
    pub app_id: Option<ShortStr<'a>>,
    /// Reserved (cluster-id); kept for round trips.
    pub cluster_id: Option<ShortStr<'a>>,
}

const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
const CONTINUATION: u16 = 1;

impl<'a> Properties<'a> {
    /// Sets the content type.
    pub fn content_type(mut self, v: &'a str) -> Self {
        self.content_type = Some(v.into());
        self
    }
    /// Sets the content encoding.
    pub fn content_encoding(mut self, v: &'a str) -> Self {
        self.content_encoding = Some(v.into());
        self
    }
    /// Sets the headers table.
    pub fn headers(mut self, v: FieldTable<'a>) -> Self {
        self.headers = Some(v);
        self
    }
    /// Delivery mode 2: the broker writes the message to disk on durable queues.
    pub fn persistent(mut self) -> Self {
        self.delivery_mode = Some(2);
        self
    }
    /// Sets the priority.
    pub fn priority(mut self, v: u8) -> Self {
        self.priority = Some(v);
        self
    }
    /// Sets the correlation id.
    pub fn correlation_id(mut self, v: &'a str) -> Self {
        self.correlation_id = Some(v.into());
        self
    }
    /// Sets reply-to.
    pub fn reply_to(mut self, v: &'a str) -> Self {
        self.reply_to = Some(v.into());
        self
    }
    /// Sets the per-message TTL (milliseconds as text, e.g. "60000").
    pub fn expiration(mut self, v: &'a str) -> Self {
        self.expiration = Some(v.into());
        self
    }
    /// Sets the message id.
    pub fn message_id(mut self, v: &'a str) -> Self {
        self.message_id = Some(v.into());
        self
    }
    /// Sets the timestamp (seconds since the Unix epoch).
    pub fn timestamp(mut self, v: u64) -> Self {
        self.timestamp = Some(v);
        self
    }
    /// Sets the type.
    pub fn kind(mut self, v: &'a str) -> Self {
        self.kind = Some(v.into());
        self
    }
    /// Sets the user id.
    pub fn user_id(mut self, v: &'a str) -> Self {
        self.user_id = Some(v.into());
        self
    }
    /// Sets the app id.
    pub fn app_id(mut self, v: &'a str) -> Self {
        self.app_id = Some(v.into());
        self
    }

    fn flags(&self) -> u16 {
        let mut f = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                f |= bit
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        f
    }

    /// Writes the flag word and the present properties.
    pub fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.flags());
        let short = |w: &mut Writer<'_>, v: Option<ShortStr<'_>>| {
            if let Some(v) = v {
                w.short_str(v)
            }
        };
        short(w, self.content_type);
        short(w, self.content_encoding);
        if let Some(h) = self.headers {
            w.table(h);
        }
        if let Some(v) = self.delivery_mode {
            w.u8(v);
        }
        if let Some(v) = self.priority {
            w.u8(v);
        }
        short(w, self.correlation_id);
        short(w, self.reply_to);
        short(w, self.expiration);
        short(w, self.message_id);
        if let Some(v) = self.timestamp {
            w.u64(v);
        }
        short(w, self.kind);
        short(w, self.user_id);
        short(w, self.app_id);
        short(w, self.cluster_id);
    }

    /// Reads the flag word and the properties it announces.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flags = r.u16()?;
        if flags & CONTINUATION != 0 {
            return Err(DecodeError::PropertyFlagsContinuation);
        }
        let has = |bit: u16| flags & bit != 0;
        let mut p = Properties::default();
        if has(CONTENT_TYPE) {
            p.content_type = Some(r.short_str()?);
        }
        if has(CONTENT_ENCODING) {
            p.content_encoding = Some(r.short_str()?);
        }
        if has(HEADERS) {
            p.headers = Some(r.table()?);
        }
        if has(DELIVERY_MODE) {
            p.delivery_mode = Some(r.u8()?);
        }
        if has(PRIORITY) {
            p.priority = Some(r.u8()?);
        }
        if has(CORRELATION_ID) {
            p.correlation_id = Some(r.short_str()?);
        }
        if has(REPLY_TO) {
            p.reply_to = Some(r.short_str()?);
        }
        if has(EXPIRATION) {
            p.expiration = Some(r.short_str()?);
        }
        if has(MESSAGE_ID) {
            p.message_id = Some(r.short_str()?);
        }
        if has(TIMESTAMP) {
            p.timestamp = Some(r.u64()?);
        }
        if has(TYPE) {
            p.kind = Some(r.short_str()?);
        }
        if has(USER_ID) {
            p.user_id = Some(r.short_str()?);
        }
        if has(APP_ID) {
            p.app_id = Some(r.short_str()?);
        }
        if has(CLUSTER_ID) {
            p.cluster_id = Some(r.short_str()?);
        }
        Ok(p)
    }
}

/// A content header frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentHeader<'a> {
    /// Class id (60 for basic).
    pub class: u16,
    /// Total body size in bytes.
    pub body_size: u64,
    /// The properties.
    pub properties: Properties<'a>,
}

impl<'a> ContentHeader<'a> {
    /// A `basic` header.
    pub fn basic(body_size: u64, properties: Properties<'a>) -> Self {
        ContentHeader {
            class: class::BASIC,
            body_size,
            properties,
        }
    }
    /// Writes class, weight (0), body size and properties.
    pub fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.class);
        w.u16(0);
        w.u64(self.body_size);
        self.properties.write(w);
    }
    /// Reads a header frame's payload.
    pub fn read(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let class = r.u16()?;
        let _weight = r.u16()?;
        let body_size = r.u64()?;
        let properties = Properties::read(&mut r)?;
        r.finish()?;
        Ok(ContentHeader {
            class,
            body_size,
            properties,
        })
    }
}
