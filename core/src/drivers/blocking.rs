//! Blocking NATS driver over any `embedded_io::{Read, Write}` transport.
//!
//! ```no_run
//! # use courier_core::drivers::{blocking::NatsClient, Clock, DriverOptions};
//! # use courier_core::nats::ConnectOptions;
//! # fn demo<T: embedded_io::Read + embedded_io::Write, C: Clock>(socket: T, clock: C)
//! # -> Result<(), courier_core::drivers::Error<T::Error>> {
//! let mut client: NatsClient<_, _, _, _, 4, 2> = NatsClient::new(
//!     socket,                 // any TCP stack's socket, read timeout set
//!     clock,                  // milliseconds from a hardware timer
//!     ConnectOptions::default(),
//!     DriverOptions::default(),
//!     [0u8; 2048],            // receive buffer: the largest message + control line
//!     [0u8; 2048],            // transmit buffer
//! );
//! client.connect()?;
//! client.publish("telemetry.dev1.temperature", b"{\"celsius\":21.5}")?;
//! # Ok(()) }
//! ```
//!
//! # Waiting and timeouts
//!
//! `embedded_io::Read::read` blocks until bytes arrive and has no timeout of
//! its own. Give the transport a read timeout (`TcpStream::set_read_timeout`
//! on a host, the socket timeout of embassy-net/smoltcp/lwIP on a device)
//! and make its expiry an error of kind [`embedded_io::ErrorKind::TimedOut`]:
//! the driver reads that as "no data yet", runs its timers (keepalive
//! PINGs, request deadlines, stall detection) and returns control. Without a
//! read timeout, [`NatsClient::next_event`] waits as long as the server is
//! silent, and the driver's own deadlines are only checked when bytes
//! arrive. (std reports an expired read timeout as `WouldBlock`, which
//! embedded-io maps to `Other`: wrap the stream so that case becomes
//! `TimedOut`, as the courier examples do.)

use embedded_io::{Read, Write};

use super::NatsEvent;
use super::{
    check_deadline, read_result, request_deadline, write_result, Awaited, Clock, Config,
    DriverOptions, Error, FlushPong, Handshake, Link, Publish, RequestReply, Wait,
};
use crate::nats::info::InfoStorage;
use crate::nats::{self, ConnectOptions, MaxPayloadWarning, Message, RequestId, Sid};
use crate::time::{Duration, Instant};

/// A NATS client over a blocking `embedded-io` transport.
///
/// Owns the transport `T`, the application's [`Clock`] `C`, a receive
/// buffer over storage `R` and the [`nats::Session`] with its transmit
/// buffer over storage `S`; `SUBS` subscriptions (the request inbox takes
/// one) and `REQS` outstanding requests. Nothing is allocated.
///
/// The receive buffer bounds the largest message that can be received
/// ([`nats::Error::FrameTooLarge`] beyond it); the transmit buffer bounds
/// batching only: a publish too large for it is written straight from the
/// caller's payload.
pub struct NatsClient<
    T,
    C,
    R,
    S,
    const SUBS: usize = 4,
    const REQS: usize = 2,
    I = nats::ServerInfo,
    Au = nats::auth::NoAuth,
> {
    transport: T,
    clock: C,
    link: Link<R, S, SUBS, REQS, I, Au>,
}

impl<T, C, R, S, const SUBS: usize, const REQS: usize, I, Au>
    NatsClient<T, C, R, S, SUBS, REQS, I, Au>
where
    T: Read + Write,
    C: Clock,
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    Au: nats::auth::Authenticator,
{
    /// A client over a connected `transport`; call [`NatsClient::connect`]
    /// next. `rx` and `tx` are the receive and transmit buffer storage
    /// (`[u8; N]`, `&mut [u8]`...). `options.rx_capacity` is set from `rx`.
    pub fn new(
        transport: T,
        clock: C,
        options: ConnectOptions,
        driver: DriverOptions,
        rx: R,
        tx: S,
    ) -> Self
    where
        Au: Default,
    {
        let link = Link::new(options, tx, rx, driver, clock.now());
        NatsClient {
            transport,
            clock,
            link,
        }
    }

    /// A client over a connected `transport` from a [`Config`] (buffers,
    /// CONNECT options, driver timeouts): the builder form of
    /// [`NatsClient::new`].
    pub fn with_config(transport: T, clock: C, config: Config<R, S>) -> Self
    where
        Au: Default,
    {
        let Config {
            buffers,
            options,
            driver,
        } = config;
        let (rx, tx) = buffers.into_parts();
        Self::new(transport, clock, options, driver, rx, tx)
    }

    /// Runs the handshake (INFO, CONNECT, PING, PONG) until the server
    /// accepted the connection, within [`DriverOptions::connect_timeout`].
    ///
    /// Returns a warning when the server accepts messages larger than the
    /// receive buffer (those would fail with [`nats::Error::FrameTooLarge`]).
    pub fn connect(&mut self) -> Result<Option<MaxPayloadWarning>, Error<T::Error>> {
        let deadline = self.link.connect_deadline(self.clock.now());
        self.drive_until(deadline, Wait::Connect, Handshake)
    }

    /// Replaces a lost transport with a freshly connected one and runs the
    /// handshake again; subscriptions are re-sent and publishes queued
    /// meanwhile are released. Returns the old transport (dropped if the
    /// handshake fails). To reconnect the same socket object in place
    /// (embassy-net style), use [`NatsClient::reset`], reconnect it through
    /// [`NatsClient::transport_mut`], then [`NatsClient::connect`].
    pub fn reconnect(&mut self, transport: T) -> Result<T, Error<T::Error>> {
        self.reset();
        let old = core::mem::replace(&mut self.transport, transport);
        self.connect()?;
        Ok(old)
    }

    /// Forgets the connection (after the transport was lost): state back to
    /// awaiting INFO, buffered input dropped, a previous fatal error
    /// cleared. Subscriptions and whole publishes not yet written are kept
    /// for the next [`NatsClient::connect`].
    pub fn reset(&mut self) {
        let now = self.clock.now();
        self.link.reset(now);
    }

    /// Publishes `payload` to `subject` and writes it to the transport.
    /// Never reaches the header parser (a device that publishes without
    /// headers does not link it).
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> Result<(), Error<T::Error>> {
        self.publish_checked(subject, None, None, payload)
    }

    /// Publishes with an optional reply subject and an optional header
    /// block (e.g. [`nats::HeaderWriter::as_bytes`]), then writes it out.
    ///
    /// When the transmit buffer is full the pending bytes are written and
    /// the publish retried once; a publish that can never fit in the
    /// transmit buffer is written in three pieces (control line, the
    /// caller's payload, trailer) without copying the payload. Only when
    /// the control line and headers alone exceed the buffer is it
    /// [`nats::Error::BufferFull`] (nothing was sent).
    pub fn publish_with(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), Error<T::Error>> {
        // Checked once here, not on the retry after a full buffer.
        let headers = match headers {
            Some(raw) => Some(nats::CheckedBlock::check(raw).map_err(nats::Error::from)?),
            None => None,
        };
        self.publish_checked(subject, reply, headers, payload)
    }

    /// [`Self::publish_with`] with a header block checked before
    /// ([`nats::CheckedBlock`], e.g. [`nats::HeaderWriter::checked`]): it is
    /// not parsed again.
    pub fn publish_checked(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<nats::CheckedBlock<'_>>,
        payload: &[u8],
    ) -> Result<(), Error<T::Error>> {
        self.link.ensure_usable()?;
        self.run_timers()?;
        let publish = Publish {
            subject,
            reply,
            headers,
            payload,
        };
        let result = self.publish_now(&publish);
        self.link.check(result)
    }

    fn publish_now(&mut self, publish: &Publish<'_>) -> Result<(), Error<T::Error>> {
        if !self.link.publish(publish)? {
            self.write_pending()?;
            if let Some(trailer) = self.link.retry_publish(publish)? {
                self.write_pending()?;
                write_all(&mut self.transport, publish.payload)?;
                write_all(&mut self.transport, trailer)?;
                return flush_transport(&mut self.transport);
            }
        }
        self.write_pending()
    }

    /// Subscribes to `subject` (wildcards allowed).
    pub fn subscribe(&mut self, subject: &str) -> Result<Sid, Error<T::Error>> {
        self.command(|session| session.subscribe(subject, None))
    }

    /// Subscribes as a member of queue group `queue`: each message goes to
    /// one member of the group.
    pub fn queue_subscribe(&mut self, subject: &str, queue: &str) -> Result<Sid, Error<T::Error>> {
        self.command(|session| session.subscribe(subject, Some(queue)))
    }

    /// Ends a subscription now.
    pub fn unsubscribe(&mut self, sid: Sid) -> Result<(), Error<T::Error>> {
        self.command(|session| session.unsubscribe(sid))
    }

    /// Ends a subscription without losing a message (a drain): writes
    /// what is pending, then UNSUB and a PING. The subscription's messages
    /// keep arriving from `next_event` until the server's PONG proves it
    /// processed the UNSUB; then [`NatsEvent::SubscriptionDone`] follows and
    /// nothing more arrives for it. Not connected: it ends at once.
    pub fn drain_subscription(&mut self, sid: Sid) -> Result<(), Error<T::Error>> {
        // From an empty transmit buffer UNSUB + PING always fit.
        self.write_pending()?;
        self.command(|session| session.unsubscribe_draining(sid))
    }

    /// Ends a subscription after `max` messages in total: the `max`th is
    /// the last delivered, followed by [`NatsEvent::SubscriptionDone`].
    pub fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), Error<T::Error>> {
        self.command(|session| session.unsubscribe_after(sid, max))
    }

    /// Reads once (if no whole frame is buffered) and returns the next
    /// event. The event borrows the receive buffer (zero-copy): its bytes
    /// are released by the next call.
    ///
    /// `Ok(None)`: nothing for the application this time (the read timed
    /// out, a partial frame arrived, or the server sent something the
    /// session handled itself, like PING). Call again.
    pub fn next_event(&mut self) -> Result<Option<NatsEvent<'_>>, Error<T::Error>> {
        if let Some(event) = self.link.begin_step(self.clock.now())? {
            return Ok(Some(event));
        }
        self.write_pending()?;
        if !self.link.has_frame() && !self.read_once()? {
            return Ok(None);
        }
        let transport = &mut self.transport;
        // Answers the input produced (PONG, CONNECT) go out before the
        // caller gets the event, so a slow handler does not delay them.
        self.link.handle_input(self.clock.now(), |session| {
            write_session(transport, session)
        })
    }

    /// Sends a PING and waits for its PONG: when this returns, the server
    /// has processed everything written before (a flush round trip).
    ///
    /// Events that arrive meanwhile (messages for subscriptions...) are
    /// handed to `on_event`, so nothing is dropped.
    pub fn flush(
        &mut self,
        timeout: Duration,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<(), Error<T::Error>> {
        let ping = self.command(|session| session.ping())?;
        let deadline = self.clock.now() + timeout;
        self.drive_until(deadline, Wait::Flush, FlushPong { ping, on_event })
    }

    /// Starts a request (reply via [`NatsEvent::Reply`] from
    /// [`NatsClient::next_event`], or [`NatsEvent::NoResponders`] /
    /// [`NatsEvent::RequestTimedOut`]); needs `ConnectOptions::inbox_prefix`.
    pub fn start_request(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<RequestId, Error<T::Error>> {
        let now = self.clock.now();
        self.command(|session| session.request(subject, headers, payload, now, timeout))
    }

    /// Sends a request and blocks until its reply, which `on_reply` sees
    /// (borrowed from the receive buffer); its result is returned.
    ///
    /// [`Error::NoResponders`] when nobody listens on `subject`,
    /// [`Error::TimedOut`] after `timeout`. Other events that arrive
    /// meanwhile go to `on_event`.
    pub fn request<Out>(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
        on_reply: impl FnOnce(Message<'_>) -> Out,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<Out, Error<T::Error>> {
        self.request_with(subject, None, payload, timeout, on_reply, on_event)
    }

    /// [`NatsClient::request`] with an optional header block.
    pub fn request_with<Out>(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timeout: Duration,
        on_reply: impl FnOnce(Message<'_>) -> Out,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<Out, Error<T::Error>> {
        let id = self.start_request(subject, headers, payload, timeout)?;
        let deadline = request_deadline(self.clock.now(), timeout);
        let reply = RequestReply::new(id, on_reply, on_event);
        let outcome = self.drive_until(deadline, Wait::Request, reply);
        self.link.finish_request(id, outcome)
    }

    /// The server's INFO, once received.
    pub fn server_info(&self) -> Option<&I> {
        self.link.session.server_info()
    }

    /// The session, for state, stats and subscriptions.
    pub fn session(&self) -> &nats::Session<S, SUBS, REQS, I, Au> {
        &self.link.session
    }

    /// The session, to queue commands directly; they are written by the
    /// next call that drives the client.
    pub fn session_mut(&mut self) -> &mut nats::Session<S, SUBS, REQS, I, Au> {
        &mut self.link.session
    }

    /// Signs each server's nonce with `auth` for NKey or JWT credentials
    /// (from the next handshake on). Name the client's last type parameter
    /// `Option<YourSigner>` (it starts as `None`) and pass `Some(signer)`;
    /// see [`nats::auth`].
    pub fn set_authenticator(&mut self, auth: Au) {
        self.link.session.set_authenticator(auth);
    }

    /// The transport (e.g. to change its read timeout).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Calls `next_event` until `awaited` accepts an event or `deadline`
    /// passes (then `TimedOut(wait)`).
    fn drive_until<A: Awaited>(
        &mut self,
        deadline: Instant,
        wait: Wait,
        mut awaited: A,
    ) -> Result<A::Output, Error<T::Error>> {
        loop {
            if let Some(event) = self.next_event()? {
                if let Some(out) = awaited.accept(event) {
                    return Ok(out);
                }
            }
            check_deadline(self.clock.now(), deadline, wait)?;
        }
    }

    /// Reads once into the receive buffer; false when nothing arrived
    /// before the transport's read timeout.
    fn read_once(&mut self) -> Result<bool, Error<T::Error>> {
        let result = self.read_into_buffer();
        self.link.check(result)
    }

    fn read_into_buffer(&mut self) -> Result<bool, Error<T::Error>> {
        let n = read_result(self.transport.read(self.link.spare()?))?;
        self.link.after_read(n, self.clock.now())
    }

    fn run_timers(&mut self) -> Result<(), Error<T::Error>> {
        self.link.run_timers(self.clock.now())
    }

    /// Queues a command in the session and writes it out.
    fn command<X>(
        &mut self,
        queue: impl FnOnce(&mut nats::Session<S, SUBS, REQS, I, Au>) -> Result<X, nats::Error>,
    ) -> Result<X, Error<T::Error>> {
        let queued = queue(&mut self.link.session)?;
        self.write_pending()?;
        Ok(queued)
    }

    fn write_pending(&mut self) -> Result<(), Error<T::Error>> {
        self.link.ensure_usable()?;
        let result = write_session(&mut self.transport, &mut self.link.session);
        self.link.check(result)
    }
}

/// Writes everything the session has queued, then flushes the transport.
fn write_session<T, S, const SUBS: usize, const REQS: usize, I, Au>(
    transport: &mut T,
    session: &mut nats::Session<S, SUBS, REQS, I, Au>,
) -> Result<(), Error<T::Error>>
where
    T: Write,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    Au: nats::auth::Authenticator,
{
    if session.transmit().is_empty() {
        return Ok(());
    }
    while !session.transmit().is_empty() {
        let n = write_result(transport.write(session.transmit()))?;
        session.transmitted(n);
    }
    flush_transport(transport)
}

/// `write_all` that reports a peer taking no bytes as an error instead of
/// panicking (embedded-io's default panics on `Ok(0)`).
fn write_all<T: Write>(transport: &mut T, mut bytes: &[u8]) -> Result<(), Error<T::Error>> {
    while !bytes.is_empty() {
        let n = write_result(transport.write(bytes))?;
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

fn flush_transport<T: Write>(transport: &mut T) -> Result<(), Error<T::Error>> {
    transport.flush().map_err(Error::Transport)
}
