//! Drivers that run the protocol state machines over `embedded-io` transports
//! (blocking) and `embedded-io-async` transports, on any TCP stack.
//!
//! The core never reads a clock and never touches a socket; these drivers do
//! both, through traits the application implements for its platform:
//!
//! - the transport: anything implementing `embedded_io::{Read, Write}`
//!   ([`blocking`]) or `embedded_io_async::{Read, Write}` ([`asynch`]):
//!   an embassy-net or smoltcp socket, an lwIP binding, a modem's AT socket,
//!   or `std::net::TcpStream` through `embedded-io-adapters` on a host;
//! - the time source: [`Clock`] (and [`asynch::Timer`] for the async driver,
//!   which must also be able to sleep).
//!
//! Neither driver allocates, spawns, or depends on an executor: the buffers
//! are the caller's, and every wait ends either because the transport
//! returned or because a deadline taken from the [`Clock`] passed.
//!
//! Both drivers have the same shape: `connect`, `publish`/`publish_with`,
//! `subscribe`/`queue_subscribe`/`unsubscribe`/`unsubscribe_after`/
//! `drain_subscription` (lossless: messages until the PONG after UNSUB),
//! `next_event` (events borrow the receive buffer until the next call),
//! `flush` (PING/PONG round trip), `request` (blocks until the reply), and
//! `reset`/`reconnect` after a lost connection. Errors are one [`Error`]
//! carrying the transport's error (and its [`embedded_io::ErrorKind`]) or
//! the core's [`nats::Error`]; after a fatal one every call returns
//! [`Error::Disconnected`] until the connection is re-established.
//!
//! Sizing the buffers: the receive buffer bounds the largest message that
//! can arrive (subject + headers + payload + ~40 bytes of control line)
//! and must hold the server's INFO line (~400 bytes from a standalone
//! nats-server, more in a cluster with many `connect_urls`);
//! the transmit buffer must hold CONNECT (~200 bytes; more with
//! credentials) and bounds batching, not message size, since a publish
//! too large for it is written straight from the caller's payload.

pub mod amqp_blocking;
pub mod asynch;
pub mod blocking;
mod config;
pub mod jetstream;
mod nats_event;
pub mod nsq;
#[cfg(test)]
mod tests;

use core::fmt;
use core::marker::PhantomData;

use crate::buf::RxBuf;
use crate::nats;
use crate::time::{Duration, Instant};

pub use config::{Buffers, Config};
pub use nats_event::NatsEvent;

/// The application's monotonic clock.
///
/// Return milliseconds since any fixed epoch (boot, first call...): the
/// drivers only subtract instants. On a host `std::time::Instant` elapsed
/// since start works; on a microcontroller a hardware timer or
/// `embassy_time::Instant::now().as_millis()`.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Default bound on the NATS handshake (INFO, CONNECT, PING, PONG).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a partly received frame may stay incomplete before the
/// connection is declared stalled (nats-server's own write deadline is 10 s).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds the drivers put on waits (the core's keepalive and request
/// timeouts are in [`nats::ConnectOptions`] and per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverOptions {
    /// Longest wait for the handshake in `connect`.
    pub connect_timeout: Duration,
    /// Longest time a frame may stay half received: the server (or the
    /// network) stopped in the middle of a message.
    pub stall_timeout: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// Which wait ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Wait {
    /// The handshake (INFO, CONNECT, PING, PONG) in `connect`.
    Connect,
    /// The PING/PONG round trip of `flush`.
    Flush,
    /// The reply to a `request`.
    Request,
}

/// What went wrong while a driver ran a NATS session over a transport.
///
/// `E` is the transport's error type; [`Error::transport_kind`] gives its
/// portable [`embedded_io::ErrorKind`].
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed (reset, broken pipe, ...): the connection is
    /// unusable; reconnect.
    Transport(E),
    /// The peer closed the connection (a read returned 0 bytes, or the
    /// transport accepted no bytes of a write).
    ConnectionClosed,
    /// The NATS core rejected the server's bytes or the call (see
    /// [`nats::Error::is_fatal`]); e.g. [`nats::Error::FrameTooLarge`] for a
    /// message larger than the receive buffer.
    Nats(nats::Error),
    /// A wait ran out of time.
    TimedOut(Wait),
    /// A request found no subscriber on its subject (status 503).
    NoResponders,
    /// The server sent part of a frame and then nothing for `waited`: it
    /// (or the network) stalled mid-frame. The connection is unusable.
    Stalled {
        /// Bytes of the incomplete frame received so far.
        buffered: usize,
        /// Time since the last byte arrived.
        waited: Duration,
    },
    /// An earlier fatal error ended this connection (it was returned
    /// then); call `reconnect` with a new transport.
    Disconnected,
}

impl<E: embedded_io::Error> Error<E> {
    /// The transport's error kind, for [`Error::Transport`].
    pub fn transport_kind(&self) -> Option<embedded_io::ErrorKind> {
        match self {
            Error::Transport(e) => Some(e.kind()),
            _ => None,
        }
    }

    /// True when the connection cannot be used any more: drop the transport
    /// and reconnect (the session keeps subscriptions and queued publishes).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Transport(_)
            | Error::ConnectionClosed
            | Error::Stalled { .. }
            | Error::Disconnected => true,
            Error::Nats(e) => e.is_fatal(),
            Error::TimedOut(wait) => *wait == Wait::Connect,
            Error::NoResponders => false,
        }
    }
}

impl<E> From<nats::Error> for Error<E> {
    fn from(e: nats::Error) -> Self {
        Error::Nats(e)
    }
}

impl<E: embedded_io::Error> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(
                f,
                "transport error ({:?}): {e}; the connection is unusable, reconnect",
                e.kind()
            ),
            Error::ConnectionClosed => write!(
                f,
                "the server closed the connection; reconnect (subscriptions and queued \
                 publishes are kept)"
            ),
            Error::Nats(e) => write!(f, "{e}"),
            Error::TimedOut(Wait::Connect) => write!(
                f,
                "the NATS handshake did not complete within the connect timeout: is this a \
                 NATS server, and is it overloaded?"
            ),
            Error::TimedOut(Wait::Flush) => write!(
                f,
                "the server did not answer the flush PING in time; the connection may be dead"
            ),
            Error::TimedOut(Wait::Request) => write!(
                f,
                "no reply arrived before the request timeout; the responder may be slow or gone"
            ),
            Error::NoResponders => write!(
                f,
                "no subscriber listens on the request subject (503 no responders)"
            ),
            Error::Stalled { buffered, waited } => write!(
                f,
                "the server sent {buffered} bytes of a frame and then nothing for {} ms: \
                 the connection stalled mid-frame; reconnect",
                waited.as_millis()
            ),
            Error::Disconnected => write!(
                f,
                "the connection failed earlier (that error was returned then); reconnect \
                 with a new transport"
            ),
        }
    }
}

impl<E: embedded_io::Error> core::error::Error for Error<E> {}

/// The transport-independent half of a driver: the session, the receive
/// buffer, the bookkeeping and every decision that needs no IO. Each driver
/// keeps only its IO loop (blocking calls or `.await`) around these.
struct Link<R, S, const SUBS: usize, const REQS: usize, I, Au> {
    session: nats::Session<S, SUBS, REQS, I, Au>,
    rx: RxBuf<R>,
    /// Bytes of the receive buffer the last returned event borrowed; dropped
    /// at the start of the next call (the event is gone by then).
    borrowed: usize,
    /// When the last byte arrived (for stall detection).
    last_byte_at: Instant,
    /// A fatal error was returned: the transport or the session is unusable
    /// until `reconnect`.
    failed: bool,
    options: DriverOptions,
}

impl<R, S, const SUBS: usize, const REQS: usize, I, Au> Link<R, S, SUBS, REQS, I, Au>
where
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: nats::info::InfoStorage,
    Au: nats::auth::Authenticator,
{
    /// A session over transmit storage `tx` and a receive buffer over `rx`,
    /// created at `now`.
    fn new(options: nats::ConnectOptions, tx: S, rx: R, driver: DriverOptions, now: Instant) -> Self
    where
        Au: Default,
    {
        let mut session = nats::Session::new(options, tx);
        let rx = RxBuf::new(rx);
        // The session compares the server's max_payload with this and sizes
        // its FrameTooLarge checks by it.
        session.options_mut().rx_capacity = rx.capacity();
        Link {
            session,
            rx,
            borrowed: 0,
            last_byte_at: now,
            failed: false,
            options: driver,
        }
    }

    /// When a `connect` starting at `now` times out.
    fn connect_deadline(&self, now: Instant) -> Instant {
        now + self.options.connect_timeout
    }

    /// Releases the bytes of the event returned last.
    fn release(&mut self) {
        self.rx.consume(core::mem::take(&mut self.borrowed));
    }

    /// True when the buffer holds a whole frame (or bytes the parser
    /// rejects): handling input now makes progress without reading.
    fn has_frame(&self) -> bool {
        !matches!(
            nats::parser::parse_for::<SUBS>(self.rx.data(), self.rx.capacity()),
            Ok(None)
        )
    }

    /// The start of every `next_event`: refuses a failed connection,
    /// releases the previous event's bytes, hands out an owned event the
    /// session queued (a subscription that ended, a PONG...) and runs the
    /// timers. Returns an event to hand out before reading.
    fn begin_step<E: embedded_io::Error>(
        &mut self,
        now: Instant,
    ) -> Result<Option<NatsEvent<'static>>, Error<E>> {
        self.ensure_usable()?;
        self.release();
        if let Some(event) = self.session.poll_event() {
            return Ok(Some(event.into()));
        }
        self.run_timers(now)?;
        Ok(self.session.poll_event().map(Into::into))
    }

    /// Runs the session's timers (keepalive PING, stale connection, request
    /// deadlines) once `poll_timeout` has passed; their events wait in the
    /// session's queue.
    fn run_timers<E: embedded_io::Error>(&mut self, now: Instant) -> Result<(), Error<E>> {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            let result = self.session.handle_timeout(now).map_err(Error::Nats);
            self.check(result)?;
        }
        Ok(())
    }

    /// Parses the next frame of the receive buffer (which must hold one,
    /// see [`Link::has_frame`]) and returns its event, borrowing the buffer
    /// until the next call. `answer` gets the session first, to write what
    /// the input made it queue (PONG, CONNECT); its error makes the
    /// connection unusable.
    fn handle_input<E>(
        &mut self,
        now: Instant,
        answer: impl FnOnce(&mut nats::Session<S, SUBS, REQS, I, Au>) -> Result<(), Error<E>>,
    ) -> Result<Option<NatsEvent<'_>>, Error<E>> {
        let (used, received) = match self.session.handle_input(self.rx.data(), now) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.failed |= e.is_fatal();
                return Err(Error::Nats(e));
            }
        };
        self.borrowed = used;
        if let Err(e) = answer(&mut self.session) {
            self.failed = true;
            return Err(e);
        }
        // The input made either a borrowed value or (at most) an owned event.
        Ok(match received {
            Some(received) => Some(received.into()),
            None => self.session.poll_event().map(Into::into),
        })
    }

    /// The free room a read fills.
    fn spare<E>(&mut self) -> Result<&mut [u8], Error<E>> {
        let capacity = self.rx.capacity();
        let spare = self.rx.spare();
        if spare.is_empty() {
            // The parser reports frames that cannot fit before this; kept
            // so a parser bug cannot turn into a busy loop.
            return Err(Error::Nats(nats::Error::FrameTooLarge {
                needed: capacity + 1,
                capacity,
            }));
        }
        Ok(spare)
    }

    /// Records a read of `n` bytes into [`Link::spare`] at `now`; 0 means
    /// nothing arrived (a read timeout or a deadline), which ends in
    /// `Err(Stalled)` once a half-received frame has waited too long.
    /// True when bytes arrived.
    fn after_read<E>(&mut self, n: usize, now: Instant) -> Result<bool, Error<E>> {
        if n == 0 {
            self.check_stall(now)?;
            return Ok(false);
        }
        self.rx.fill(n);
        self.last_byte_at = now;
        Ok(true)
    }

    /// When a half-received frame counts as stalled (None: nothing half
    /// received).
    fn stall_deadline(&self) -> Option<Instant> {
        (!self.rx.is_empty()).then(|| self.last_byte_at + self.options.stall_timeout)
    }

    /// `Err(Stalled)` once a half-received frame has waited too long.
    fn check_stall<E>(&self, now: Instant) -> Result<(), Error<E>> {
        match self.stall_deadline() {
            Some(deadline) if now >= deadline => Err(Error::Stalled {
                buffered: self.rx.len(),
                waited: now.saturating_since(self.last_byte_at),
            }),
            _ => Ok(()),
        }
    }

    /// When a waiting read must give way: the earliest of `deadline` (the
    /// caller's wait), the session's timers and the stall deadline.
    fn wake_at(&self, deadline: Option<Instant>) -> Option<Instant> {
        let timers = self.session.poll_timeout();
        earliest(earliest(deadline, timers), self.stall_deadline())
    }

    /// Queues a publish. `Ok(false)`: the transmit buffer is full; write
    /// what is pending and call [`Link::retry_publish`].
    fn publish(&mut self, publish: &Publish<'_>) -> Result<bool, nats::Error> {
        match self.queue(publish) {
            Err(nats::Error::BufferFull(_)) => Ok(false),
            other => other.map(|()| true),
        }
    }

    fn queue(&mut self, publish: &Publish<'_>) -> Result<(), nats::Error> {
        let p = publish;
        let headers = p.headers.map(|h| h.as_bytes());
        self.session
            .publish_block(p.subject, p.reply, headers, true, p.payload)
    }

    /// Queues a publish again once the transmit buffer was written out.
    /// `Ok(None)`: queued whole. `Ok(Some(trailer))`: it can never fit, so
    /// only its control line and headers were queued; write those, then
    /// the caller's payload, then `trailer` (no copy of the payload). Only
    /// when the control line and headers alone exceed the buffer is it
    /// `BufferFull` (for the whole publish; nothing was queued).
    fn retry_publish(
        &mut self,
        publish: &Publish<'_>,
    ) -> Result<Option<&'static [u8]>, nats::Error> {
        match self.queue(publish) {
            Err(nats::Error::BufferFull(full))
                if self.session.state() == nats::State::Connected =>
            {
                let p = publish;
                let headers = p.headers.map(|h| h.as_bytes());
                self.session
                    .publish_header_only_block(p.subject, p.reply, headers, true, p.payload.len())
                    .map(Some)
                    .map_err(|e| match e {
                        // Report the whole publish, not just the control line.
                        nats::Error::BufferFull(_) => nats::Error::BufferFull(full),
                        e => e,
                    })
            }
            other => other.map(|()| None),
        }
    }

    /// Ends a `request` wait: a failed or abandoned request is cancelled
    /// so that late replies to it are dropped and counted.
    fn finish_request<Out, E>(
        &mut self,
        id: nats::RequestId,
        outcome: Result<Result<Out, Error<E>>, Error<E>>,
    ) -> Result<Out, Error<E>> {
        let outcome = outcome.and_then(|reply| reply);
        if outcome.is_err() {
            self.session.cancel_request(id);
        }
        outcome
    }

    /// Forgets the old connection's bytes before a new transport is used.
    fn reset(&mut self, now: Instant) {
        self.session.start(now);
        self.rx.clear();
        self.borrowed = 0;
        self.failed = false;
        self.last_byte_at = now;
    }

    /// `Err(Disconnected)` once a fatal error was returned.
    fn ensure_usable<E>(&self) -> Result<(), Error<E>> {
        if self.failed {
            Err(Error::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Passes `result` through, remembering a fatal error.
    fn check<X, E: embedded_io::Error>(
        &mut self,
        result: Result<X, Error<E>>,
    ) -> Result<X, Error<E>> {
        if let Err(e) = &result {
            self.failed |= e.is_fatal();
        }
        result
    }
}

/// The earlier of two optional instants (None: no bound).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The arguments of one publish.
#[derive(Clone, Copy)]
/// A publish as the drivers queue it: its header block was checked once
/// (by `publish_with`), so a retry does not check it again and a plain
/// `publish` never reaches the header parser.
struct Publish<'a> {
    subject: &'a str,
    reply: Option<&'a str>,
    headers: Option<nats::CheckedBlock<'a>>,
    payload: &'a [u8],
}

/// When a `request` with `timeout` started at `now` gives up waiting. The
/// session times the request out itself; this backstop is a little later
/// in case its timer event is never reached.
fn request_deadline(now: Instant, timeout: Duration) -> Instant {
    now + timeout + Duration::from_millis(100)
}

/// What a driver waits for (`connect`, `flush`, `request`): picks the
/// event that ends the wait out of the events `next_event` returns, and
/// passes the others on.
trait Awaited {
    /// What the wait ends with.
    type Output;
    /// `Some` when `event` ends the wait.
    fn accept(&mut self, event: NatsEvent<'_>) -> Option<Self::Output>;
}

/// `connect`: the server accepted the handshake.
struct Handshake;

impl Awaited for Handshake {
    type Output = Option<nats::MaxPayloadWarning>;

    fn accept(&mut self, event: NatsEvent<'_>) -> Option<Self::Output> {
        match event {
            NatsEvent::Connected {
                max_payload_warning,
                ..
            } => Some(max_payload_warning),
            // Nothing else can arrive before the handshake completes.
            _ => None,
        }
    }
}

/// `flush`: the PONG answering `ping` (or a later one); other events go to
/// `on_event`.
struct FlushPong<F> {
    ping: nats::PingId,
    on_event: F,
}

impl<F: FnMut(NatsEvent<'_>)> Awaited for FlushPong<F> {
    type Output = ();

    fn accept(&mut self, event: NatsEvent<'_>) -> Option<()> {
        match event {
            NatsEvent::Pong { ping } if ping >= self.ping => Some(()),
            other => {
                (self.on_event)(other);
                None
            }
        }
    }
}

/// `request`: the reply to request `id` (handed to `on_reply`), its 503
/// or its timeout; other events go to `on_event`.
struct RequestReply<R, F, E> {
    id: nats::RequestId,
    on_reply: Option<R>,
    on_event: F,
    error: PhantomData<fn() -> E>,
}

impl<R, F, E> RequestReply<R, F, E> {
    fn new(id: nats::RequestId, on_reply: R, on_event: F) -> Self {
        RequestReply {
            id,
            on_reply: Some(on_reply),
            on_event,
            error: PhantomData,
        }
    }
}

impl<Out, R, F, E> Awaited for RequestReply<R, F, E>
where
    R: FnOnce(nats::Message<'_>) -> Out,
    F: FnMut(NatsEvent<'_>),
{
    type Output = Result<Out, Error<E>>;

    fn accept(&mut self, event: NatsEvent<'_>) -> Option<Self::Output> {
        let id = self.id;
        match event {
            NatsEvent::Reply { request, message } if request == id => Some(
                self.on_reply
                    .take()
                    .map(|f| f(message))
                    .ok_or(Error::TimedOut(Wait::Request)),
            ),
            NatsEvent::NoResponders { request } if request == id => Some(Err(Error::NoResponders)),
            NatsEvent::RequestTimedOut { request } if request == id => {
                Some(Err(Error::TimedOut(Wait::Request)))
            }
            other => {
                (self.on_event)(other);
                None
            }
        }
    }
}

/// `TimedOut(wait)` once `now` reached `deadline`.
fn check_deadline<E>(now: Instant, deadline: Instant, wait: Wait) -> Result<(), Error<E>> {
    if now >= deadline {
        Err(Error::TimedOut(wait))
    } else {
        Ok(())
    }
}

/// How one transport read or write failed, before a driver (NATS, NSQ)
/// maps it into its own error type.
pub(crate) enum IoEnd<E> {
    /// The read returned 0 bytes or the write took none: the peer is gone.
    Closed,
    /// The transport's own error.
    Transport(E),
}

impl<E> From<IoEnd<E>> for Error<E> {
    fn from(end: IoEnd<E>) -> Self {
        match end {
            IoEnd::Closed => Error::ConnectionClosed,
            IoEnd::Transport(e) => Error::Transport(e),
        }
    }
}

/// Classifies one transport read: Ok(n > 0) bytes arrived, Ok(0) nothing yet
/// (the read timed out or was interrupted: the transport's read timeout is
/// how a blocking driver gets control back), errors otherwise.
pub(crate) fn read_step<E: embedded_io::Error>(
    result: Result<usize, E>,
) -> Result<usize, IoEnd<E>> {
    match result {
        Ok(0) => Err(IoEnd::Closed),
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                embedded_io::ErrorKind::TimedOut | embedded_io::ErrorKind::Interrupted
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(IoEnd::Transport(e)),
    }
}

/// Classifies one transport write: Ok(n > 0) bytes taken, Ok(0) retry
/// (interrupted), errors otherwise (a write that takes nothing means the
/// peer is gone).
pub(crate) fn write_step<E: embedded_io::Error>(
    result: Result<usize, E>,
) -> Result<usize, IoEnd<E>> {
    match result {
        Ok(0) => Err(IoEnd::Closed),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(IoEnd::Transport(e)),
    }
}

/// [`read_step`] in the NATS drivers' error type.
fn read_result<E: embedded_io::Error>(result: Result<usize, E>) -> Result<usize, Error<E>> {
    read_step(result).map_err(Into::into)
}

/// [`write_step`] in the NATS drivers' error type.
fn write_result<E: embedded_io::Error>(result: Result<usize, E>) -> Result<usize, Error<E>> {
    write_step(result).map_err(Into::into)
}
