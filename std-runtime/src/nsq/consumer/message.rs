//! What the application sees of a message, and the handler it writes.

use super::*;

/// Why a handler failed; the message is requeued (REQ) after
/// `requeue_delay` or the configured backoff delay.
#[derive(Debug, Clone)]
pub struct HandlerError {
    /// What went wrong (logged).
    pub reason: Cow<'static, str>,
    /// REQ delay; None uses `Config::requeue_delay * attempts`.
    pub requeue_delay: Option<Duration>,
}

impl HandlerError {
    /// A failure with the default requeue delay.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        HandlerError {
            reason: reason.into(),
            requeue_delay: None,
        }
    }

    /// A failure requeued after `delay`.
    pub fn requeue_after(reason: impl Into<Cow<'static, str>>, delay: Duration) -> Self {
        HandlerError {
            reason: reason.into(),
            requeue_delay: Some(delay),
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HandlerError {}

/// A message handed to a handler. The body is owned (pooled); FIN, REQ
/// and TOUCH go to the connection it came from.
pub struct Message {
    pub(super) id: MessageId,
    pub(super) attempts: u16,
    pub(super) timestamp_ns: i64,
    pub(super) body: Vec<u8>,
    pub(super) conn: Rc<Conn>,
    /// Some(true) after FIN, Some(false) after REQ.
    pub(super) outcome: Cell<Option<bool>>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("body_len", &self.body.len())
            .field("nsqd", &self.conn.info.addr)
            .finish()
    }
}

impl Message {
    /// The id nsqd assigned.
    pub fn id(&self) -> &MessageId {
        &self.id
    }
    /// Deliveries so far, this one included (1 the first time).
    pub fn attempts(&self) -> u16 {
        self.attempts
    }
    /// When nsqd received it, in nanoseconds since the Unix epoch.
    pub fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The connection (nsqd, topic, channel) it came from.
    pub fn connection(&self) -> &ConnInfo {
        &self.conn.info
    }
    /// True once FIN or REQ was sent for it.
    pub fn has_responded(&self) -> bool {
        self.outcome.get().is_some()
    }
    /// `TOUCH`: resets nsqd's timeout for this message (long handlers).
    pub fn touch(&self) -> Result<(), Error> {
        self.conn.with_session(|s| s.touch(&self.id))
    }
    /// `FIN` now (normally done after the handler returns Ok).
    pub fn finish(&self) -> Result<(), Error> {
        if self.has_responded() {
            return Ok(());
        }
        self.outcome.set(Some(true));
        self.conn.with_session(|s| s.fin(&self.id))
    }
    /// `REQ` now: nsqd redelivers it after `delay`.
    pub fn requeue(&self, delay: Duration) -> Result<(), Error> {
        if self.has_responded() {
            return Ok(());
        }
        self.outcome.set(Some(false));
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.conn.with_session(|s| s.req(&self.id, ms))
    }
}

/// The application's message handling (the nsqs seed's
/// `MessageHandler`): classify each message into a class and a context,
/// then handle it per class; [`Handler::default_handler`] takes the
/// unclassified ones.
///
/// Returning `Ok` FINs the message (unless `Config::auto_finish` is off),
/// `Err` REQs it with a delay. After `Config::max_attempts` deliveries
/// [`Handler::give_up`] runs instead and the message is FIN'd.
///
/// ```
/// use courier::nsq::{Handler, HandlerError, Message};
///
/// enum Class { Dummy, Alert }
///
/// struct App;
///
/// impl Handler for App {
///     type Class = Class;
///     type Context = ();
///     fn classify(&self, m: &Message) -> Option<(Class, ())> {
///         match m.body().first() {
///             Some(b'd') => Some((Class::Dummy, ())),
///             Some(b'a') => Some((Class::Alert, ())),
///             _ => None,
///         }
///     }
///     async fn handle(&self, class: Class, _: (), m: &Message) -> Result<(), HandlerError> {
///         match class {
///             Class::Dummy => Ok(()),
///             Class::Alert if m.attempts() < 3 => Err(HandlerError::new("pager busy")),
///             Class::Alert => Ok(()),
///         }
///     }
/// }
/// ```
#[allow(async_fn_in_trait)] // single-threaded runtime: futures need not be Send
pub trait Handler: 'static {
    /// The message classes (an enum, a `&'static str`...).
    type Class;
    /// What classification learned (e.g. the decoded body).
    type Context;
    /// Classifies a message; `None` sends it to the default handler.
    fn classify(&self, message: &Message) -> Option<(Self::Class, Self::Context)>;
    /// Handles a classified message.
    async fn handle(
        &self,
        class: Self::Class,
        context: Self::Context,
        message: &Message,
    ) -> Result<(), HandlerError>;
    /// Handles an unclassified message; the default logs and FINs it.
    async fn default_handler(&self, message: &Message) -> Result<(), HandlerError> {
        log::warn!("squashing unclassified message {}", message.id());
        Ok(())
    }
    /// Runs when a message exceeded `max_attempts`; it is FIN'd after.
    fn give_up(&self, message: &Message) {
        log::warn!(
            "giving up on message {} after {} attempts",
            message.id(),
            message.attempts()
        );
    }
}
