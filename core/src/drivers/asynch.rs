//! Async NATS driver over any `embedded_io_async::{Read, Write}` transport,
//! on any executor (embassy, tokio, a hand-written one): the driver awaits
//! only the transport and the application's [`Timer`], and brings no
//! runtime of its own.
//!
//! ```no_run
//! # use courier_core::drivers::{asynch::{NatsClient, Timer}, DriverOptions};
//! # use courier_core::nats::ConnectOptions;
//! # async fn demo<T, C>(socket: T, timer: C) -> Result<(), courier_core::drivers::Error<T::Error>>
//! # where T: embedded_io_async::Read + embedded_io_async::Write, C: Timer {
//! let mut client: NatsClient<_, _, _, _, 4, 2> = NatsClient::new(
//!     socket,                 // e.g. an embassy-net TcpSocket
//!     timer,                  // now() and sleep_until() from the executor's timer
//!     ConnectOptions::default(),
//!     DriverOptions::default(),
//!     [0u8; 2048],
//!     [0u8; 2048],
//! );
//! client.connect().await?;
//! client.publish("telemetry.dev1.temperature", b"{\"celsius\":21.5}").await?;
//! # Ok(()) }
//! ```
//!
//! # Waiting and timeouts
//!
//! A read is raced against the session's next deadline (keepalive PING,
//! request timeout, stall detection) with [`Timer::sleep_until`]; when the
//! deadline wins, the read future is dropped. That is only lossless when
//! the transport's `read` is cancel-safe (embedded-io-async encourages it;
//! embassy-net's and embedded-io-adapters' tokio sockets are).

use core::future::Future;
use core::task::Poll;

use embedded_io_async::{Read, Write};

use super::NatsEvent;
use super::{
    check_deadline, read_result, request_deadline, write_result, Awaited, Clock, Config,
    DriverOptions, Error, FlushPong, Handshake, Link, Publish, RequestReply, Wait,
};
use crate::nats::info::InfoStorage;
use crate::nats::{self, ConnectOptions, MaxPayloadWarning, Message, RequestId, Sid};
use crate::time::{Duration, Instant};

/// The application's clock and timer for the async driver.
///
/// `sleep_until` completes at (or soon after) `deadline`, an instant of the
/// same [`Clock`]; with embassy `Timer::at`, with tokio
/// `tokio::time::sleep_until`.
pub trait Timer: Clock {
    /// Waits until `deadline` (returns at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

/// A NATS client over an async `embedded-io-async` transport.
///
/// The async twin of [`super::blocking::NatsClient`]: same buffers, same
/// events, same errors; `C` is a [`Timer`] because an async read has no
/// timeout of its own.
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
    timer: C,
    link: Link<R, S, SUBS, REQS, I, Au>,
}

impl<T, C, R, S, const SUBS: usize, const REQS: usize, I, Au>
    NatsClient<T, C, R, S, SUBS, REQS, I, Au>
where
    T: Read + Write,
    C: Timer,
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    Au: nats::auth::Authenticator,
{
    /// A client over a connected `transport`; call [`NatsClient::connect`]
    /// next. `rx` and `tx` are the receive and transmit buffer storage.
    pub fn new(
        transport: T,
        timer: C,
        options: ConnectOptions,
        driver: DriverOptions,
        rx: R,
        tx: S,
    ) -> Self
    where
        Au: Default,
    {
        let link = Link::new(options, tx, rx, driver, timer.now());
        NatsClient {
            transport,
            timer,
            link,
        }
    }

    /// A client over a connected `transport` from a [`Config`] (buffers,
    /// CONNECT options, driver timeouts): the builder form of
    /// [`NatsClient::new`].
    pub fn with_config(transport: T, timer: C, config: Config<R, S>) -> Self
    where
        Au: Default,
    {
        let Config {
            buffers,
            options,
            driver,
        } = config;
        let (rx, tx) = buffers.into_parts();
        Self::new(transport, timer, options, driver, rx, tx)
    }

    /// Runs the handshake until the server accepted the connection, within
    /// [`DriverOptions::connect_timeout`]. Returns a warning when the
    /// server accepts messages larger than the receive buffer.
    pub async fn connect(&mut self) -> Result<Option<MaxPayloadWarning>, Error<T::Error>> {
        let deadline = self.link.connect_deadline(self.timer.now());
        self.drive_until(deadline, Wait::Connect, Handshake).await
    }

    /// Replaces a lost transport with a freshly connected one and runs the
    /// handshake again; subscriptions are re-sent and publishes queued
    /// meanwhile are released. Returns the old transport (dropped if the
    /// handshake fails). To reconnect the same socket object in place
    /// (embassy-net style), use [`NatsClient::reset`], reconnect it through
    /// [`NatsClient::transport_mut`], then [`NatsClient::connect`].
    pub async fn reconnect(&mut self, transport: T) -> Result<T, Error<T::Error>> {
        self.reset();
        let old = core::mem::replace(&mut self.transport, transport);
        self.connect().await?;
        Ok(old)
    }

    /// Forgets the connection (after the transport was lost): state back to
    /// awaiting INFO, buffered input dropped, a previous fatal error
    /// cleared. Subscriptions and whole publishes not yet written are kept
    /// for the next [`NatsClient::connect`].
    pub fn reset(&mut self) {
        let now = self.timer.now();
        self.link.reset(now);
    }

    /// Publishes `payload` to `subject` and writes it to the transport.
    /// Never reaches the header parser (a device that publishes without
    /// headers does not link it).
    pub async fn publish(&mut self, subject: &str, payload: &[u8]) -> Result<(), Error<T::Error>> {
        self.publish_checked(subject, None, None, payload).await
    }

    /// Publishes with an optional reply subject and header block; see
    /// [`super::blocking::NatsClient::publish_with`] for how a full or too
    /// small transmit buffer is handled.
    pub async fn publish_with(
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
        self.publish_checked(subject, reply, headers, payload).await
    }

    /// [`Self::publish_with`] with a header block checked before
    /// ([`nats::CheckedBlock`], e.g. [`nats::HeaderWriter::checked`]): it is
    /// not parsed again.
    pub async fn publish_checked(
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
        let result = self.publish_now(&publish).await;
        self.link.check(result)
    }

    async fn publish_now(&mut self, publish: &Publish<'_>) -> Result<(), Error<T::Error>> {
        if !self.link.publish(publish)? {
            self.write_pending().await?;
            if let Some(trailer) = self.link.retry_publish(publish)? {
                self.write_pending().await?;
                write_all(&mut self.transport, publish.payload).await?;
                write_all(&mut self.transport, trailer).await?;
                return self.transport.flush().await.map_err(Error::Transport);
            }
        }
        self.write_pending().await
    }

    /// Subscribes to `subject` (wildcards allowed).
    pub async fn subscribe(&mut self, subject: &str) -> Result<Sid, Error<T::Error>> {
        self.command(|session| session.subscribe(subject, None))
            .await
    }

    /// Subscribes as a member of queue group `queue`.
    pub async fn queue_subscribe(
        &mut self,
        subject: &str,
        queue: &str,
    ) -> Result<Sid, Error<T::Error>> {
        self.command(|session| session.subscribe(subject, Some(queue)))
            .await
    }

    /// Ends a subscription now.
    pub async fn unsubscribe(&mut self, sid: Sid) -> Result<(), Error<T::Error>> {
        self.command(|session| session.unsubscribe(sid)).await
    }

    /// Ends a subscription without losing a message (a drain): writes
    /// what is pending, then UNSUB and a PING. The subscription's messages
    /// keep arriving from `next_event` until the server's PONG proves it
    /// processed the UNSUB; then [`NatsEvent::SubscriptionDone`] follows and
    /// nothing more arrives for it. Not connected: it ends at once.
    pub async fn drain_subscription(&mut self, sid: Sid) -> Result<(), Error<T::Error>> {
        // From an empty transmit buffer UNSUB + PING always fit.
        self.write_pending().await?;
        self.command(|session| session.unsubscribe_draining(sid))
            .await
    }

    /// Ends a subscription after `max` messages in total.
    pub async fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), Error<T::Error>> {
        self.command(|session| session.unsubscribe_after(sid, max))
            .await
    }

    /// Waits for bytes (if no whole frame is buffered) until the session's
    /// next deadline, and returns the next event, borrowing the receive
    /// buffer until the next call.
    ///
    /// `Ok(None)`: nothing for the application this time (a deadline came
    /// first, a partial frame arrived, or the server sent something the
    /// session handled itself). Call again, promptly: answers to the server
    /// (PONG) go out at the start of the next call.
    ///
    /// Cancel-safe when the transport's `read` and `write` are: it awaits
    /// only before parsing, so a dropped call loses no event.
    pub async fn next_event(&mut self) -> Result<Option<NatsEvent<'_>>, Error<T::Error>> {
        self.next_event_before(None).await
    }

    /// Sends a PING and waits for its PONG (a flush round trip). Events
    /// that arrive meanwhile go to `on_event`.
    pub async fn flush(
        &mut self,
        timeout: Duration,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<(), Error<T::Error>> {
        let ping = self.command(|session| session.ping()).await?;
        let deadline = self.timer.now() + timeout;
        self.drive_until(deadline, Wait::Flush, FlushPong { ping, on_event })
            .await
    }

    /// Starts a request; its reply arrives as [`NatsEvent::Reply`] (or
    /// [`NatsEvent::NoResponders`] / [`NatsEvent::RequestTimedOut`]).
    pub async fn start_request(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<RequestId, Error<T::Error>> {
        let now = self.timer.now();
        self.command(|session| session.request(subject, headers, payload, now, timeout))
            .await
    }

    /// Sends a request and waits for its reply, which `on_reply` sees;
    /// [`Error::NoResponders`] or [`Error::TimedOut`] otherwise. Other
    /// events that arrive meanwhile go to `on_event`.
    pub async fn request<Out>(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
        on_reply: impl FnOnce(Message<'_>) -> Out,
        on_event: impl FnMut(NatsEvent<'_>),
    ) -> Result<Out, Error<T::Error>> {
        let id = self.start_request(subject, None, payload, timeout).await?;
        let deadline = request_deadline(self.timer.now(), timeout);
        let reply = RequestReply::new(id, on_reply, on_event);
        let outcome = self.drive_until(deadline, Wait::Request, reply).await;
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

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The timer.
    pub fn timer(&self) -> &C {
        &self.timer
    }

    /// One step of [`NatsClient::next_event`]; a read also gives way at
    /// `deadline`.
    async fn next_event_before(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<NatsEvent<'_>>, Error<T::Error>> {
        if let Some(event) = self.link.begin_step(self.timer.now())? {
            return Ok(Some(event));
        }
        self.write_pending().await?;
        if !self.link.has_frame() && !self.read_once(deadline).await? {
            return Ok(None);
        }
        // No await after parsing: dropping this future can then never lose
        // a parsed event. Answers it queued (PONG, CONNECT) are written at
        // the start of the next call, before it waits for input.
        self.link.handle_input(self.timer.now(), |_| Ok(()))
    }

    /// Calls `next_event` (giving way at `deadline`) until `awaited`
    /// accepts an event or `deadline` passes (then `TimedOut(wait)`).
    async fn drive_until<A: Awaited>(
        &mut self,
        deadline: Instant,
        wait: Wait,
        mut awaited: A,
    ) -> Result<A::Output, Error<T::Error>> {
        loop {
            if let Some(event) = self.next_event_before(Some(deadline)).await? {
                if let Some(out) = awaited.accept(event) {
                    return Ok(out);
                }
            }
            check_deadline(self.timer.now(), deadline, wait)?;
        }
    }

    /// Reads once, giving way at the earliest of `deadline`, the session's
    /// timers and the stall deadline; false when a deadline came first.
    async fn read_once(&mut self, deadline: Option<Instant>) -> Result<bool, Error<T::Error>> {
        let result = self.read_into_buffer(deadline).await;
        self.link.check(result)
    }

    async fn read_into_buffer(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<bool, Error<T::Error>> {
        let wake_at = self.link.wake_at(deadline);
        let read = self.transport.read(self.link.spare()?);
        let outcome = match wake_at {
            Some(at) => match select(read, self.timer.sleep_until(at)).await {
                Either::First(result) => Some(result),
                Either::Second(()) => None,
            },
            None => Some(read.await),
        };
        let n = match outcome {
            Some(result) => read_result(result)?,
            None => 0,
        };
        self.link.after_read(n, self.timer.now())
    }

    fn run_timers(&mut self) -> Result<(), Error<T::Error>> {
        self.link.run_timers(self.timer.now())
    }

    /// Queues a command in the session and writes it out.
    async fn command<X>(
        &mut self,
        queue: impl FnOnce(&mut nats::Session<S, SUBS, REQS, I, Au>) -> Result<X, nats::Error>,
    ) -> Result<X, Error<T::Error>> {
        let queued = queue(&mut self.link.session)?;
        self.write_pending().await?;
        Ok(queued)
    }

    async fn write_pending(&mut self) -> Result<(), Error<T::Error>> {
        self.link.ensure_usable()?;
        let result = write_session(&mut self.transport, &mut self.link.session).await;
        self.link.check(result)
    }
}

/// Writes everything the session has queued, then flushes the transport.
async fn write_session<T, S, const SUBS: usize, const REQS: usize, I, Au>(
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
        let n = write_result(transport.write(session.transmit()).await)?;
        session.transmitted(n);
    }
    transport.flush().await.map_err(Error::Transport)
}

/// `write_all` that reports a peer taking no bytes as an error instead of
/// panicking.
async fn write_all<T: Write>(transport: &mut T, mut bytes: &[u8]) -> Result<(), Error<T::Error>> {
    while !bytes.is_empty() {
        let n = write_result(transport.write(bytes).await)?;
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Which of two futures finished first.
enum Either<A, B> {
    First(A),
    Second(B),
}

/// Polls `first` then `second` until one finishes; the other is dropped.
/// `first` goes first so bytes that are already there win over a deadline
/// that passed at the same moment. A dozen lines, so the core needs no
/// futures crate or executor.
async fn select<A: Future, B: Future>(first: A, second: B) -> Either<A::Output, B::Output> {
    let mut first = core::pin::pin!(first);
    let mut second = core::pin::pin!(second);
    core::future::poll_fn(|cx| {
        if let Poll::Ready(a) = first.as_mut().poll(cx) {
            return Poll::Ready(Either::First(a));
        }
        if let Poll::Ready(b) = second.as_mut().poll(cx) {
            return Poll::Ready(Either::Second(b));
        }
        Poll::Pending
    })
    .await
}
