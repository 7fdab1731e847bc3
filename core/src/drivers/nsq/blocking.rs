//! Blocking NSQ client over any `embedded_io::{Read, Write}` transport.
//!
//! ```no_run
//! # use courier_core::drivers::{nsq::blocking::NsqClient, Clock, DriverOptions};
//! # use courier_core::nsq::Identify;
//! # fn demo<T: embedded_io::Read + embedded_io::Write, C: Clock>(socket: T, clock: C)
//! # -> Result<(), courier_core::drivers::nsq::Error<T::Error>> {
//! let identify = Identify { feature_negotiation: true, ..Identify::default() };
//! let mut nsq: NsqClient<_, _, [u8; 1024], [u8; 512], 4> =
//!     NsqClient::new(socket, clock, identify, DriverOptions::default(), [0; 1024], [0; 512])?;
//! nsq.connect()?;
//! nsq.publish("telemetry", b"{\"celsius\":21.5}")?; // returns after nsqd's OK
//! # Ok(()) }
//! ```
//!
//! Give the transport a read timeout that surfaces as
//! [`embedded_io::ErrorKind::TimedOut`] (see the NATS driver's notes in
//! [`crate::drivers::blocking`]): that is how waits end and heartbeats are
//! checked while nsqd is silent.

use embedded_io::{Read, Write};

use super::{read_result, write_result, Error, Incoming, Link, Wait};
use crate::drivers::{Clock, DriverOptions};
use crate::nsq::{self, Event, Identify, MessageId, PublishId, SessionError};
use crate::time::Instant;

/// An NSQ connection over a blocking transport `T`, with the application's
/// clock `C`, receive storage `R` (bounds the largest frame), transmit
/// storage `S` (bounds one command: a PUB's topic and body must fit) and
/// up to `PENDING` commands awaiting nsqd's answer. Nothing is allocated.
pub struct NsqClient<'i, T, C, R, S, const PENDING: usize> {
    transport: T,
    clock: C,
    link: Link<'i, R, S, PENDING>,
    /// The DEFLATE decoder, when the application gave one.
    #[cfg(feature = "deflate")]
    deflate: Option<&'i mut super::deflate::DeflateState>,
    /// nsqd and the client speak DEFLATE on this connection.
    compressed: bool,
}

impl<'i, T, C, R, S, const PENDING: usize> NsqClient<'i, T, C, R, S, PENDING>
where
    T: Read + Write,
    C: Clock,
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A client over a connected `transport`; call [`NsqClient::connect`]
    /// next. Fails only when IDENTIFY does not fit the transmit buffer.
    pub fn new(
        transport: T,
        clock: C,
        identify: Identify<'i>,
        driver: DriverOptions,
        rx: R,
        tx: S,
    ) -> Result<Self, Error<T::Error>> {
        let link = Link::new(identify, driver, rx, tx, clock.now())?;
        Ok(NsqClient {
            transport,
            clock,
            link,
            #[cfg(feature = "deflate")]
            deflate: None,
            compressed: false,
        })
    }

    /// Lets the connection run DEFLATE when nsqd agrees (set `deflate` in
    /// the [`Identify`]), with `state` as the decoder (~43 KiB).
    #[cfg(feature = "deflate")]
    pub fn with_deflate(mut self, state: &'i mut super::deflate::DeflateState) -> Self {
        self.deflate = Some(state);
        self
    }

    fn can_inflate(&self) -> bool {
        #[cfg(feature = "deflate")]
        {
            self.deflate.is_some()
        }
        #[cfg(not(feature = "deflate"))]
        {
            false
        }
    }

    /// Switches the connection to DEFLATE: input not yet consumed is
    /// compressed and moves to the decoder.
    #[cfg(feature = "deflate")]
    fn start_inflate(&mut self) -> Result<(), Error<T::Error>> {
        let Some(state) = self.deflate.as_deref_mut() else {
            return Err(Error::Unsupported("DEFLATE"));
        };
        state.reset();
        if !state.absorb(self.link.rx.data()) {
            return Err(Error::Inflate);
        }
        self.link.rx.clear();
        self.compressed = true;
        Ok(())
    }

    /// Writes the magic and IDENTIFY and waits, within
    /// [`DriverOptions::connect_timeout`], until nsqd is ready.
    pub fn connect(&mut self) -> Result<(), Error<T::Error>> {
        let deadline = self.link.connect_deadline(self.clock.now());
        self.write_pending()?;
        let inflate = self.can_inflate();
        let result = self.drive_until(deadline, Wait::Connect, |event| match event {
            Event::Ready => Some(Ok(())),
            Event::StartTls => Some(Err(Error::Unsupported("TLS"))),
            Event::StartCompression(nsq::Compression::Snappy) => {
                Some(Err(Error::Unsupported("snappy")))
            }
            // next_event switched the stream already.
            Event::StartCompression(nsq::Compression::Deflate { .. }) if inflate => None,
            Event::StartCompression(nsq::Compression::Deflate { .. }) => {
                Some(Err(Error::Unsupported("DEFLATE")))
            }
            Event::AuthRequired => Some(Err(Error::Unsupported("AUTH"))),
            _ => None,
        })?;
        // A negotiated feature this driver cannot run ends the connection.
        self.link.check(result)
    }

    /// Forgets the connection (after it failed): a fresh session over the
    /// same buffers, ready for [`NsqClient::connect`] on a reconnected
    /// transport ([`NsqClient::transport_mut`]). Subscriptions belong to a
    /// connection in NSQ: subscribe again after connecting.
    pub fn reset(&mut self) -> Result<(), Error<T::Error>> {
        self.compressed = false;
        let now = self.clock.now();
        Ok(self.link.reset(now)?)
    }

    /// Replaces a lost transport, resets and connects again; returns the old
    /// transport.
    pub fn reconnect(&mut self, transport: T) -> Result<T, Error<T::Error>> {
        self.reset()?;
        let old = core::mem::replace(&mut self.transport, transport);
        self.connect()?;
        Ok(old)
    }

    /// Publishes `body` to `topic` and waits for nsqd's `OK` (within the
    /// stall timeout): `Ok` means nsqd stored it. On a subscribed
    /// connection use [`NsqClient::publish_nowait`] and wait for
    /// [`Event::Published`] from [`NsqClient::next_event`], so messages are
    /// not held up.
    pub fn publish(&mut self, topic: &str, body: &[u8]) -> Result<(), Error<T::Error>> {
        if self.link.session()?.is_subscribed() {
            return Err(Error::Nsq(SessionError::InvalidState {
                operation: "publish (blocking)",
                state: "subscribed: use publish_nowait and next_event",
            }));
        }
        let id = self.publish_nowait(topic, body)?;
        let deadline = self.clock.now() + self.link.options.stall_timeout;
        let result = self.drive_until(deadline, Wait::Publish, |event| match event {
            Event::Published { id: done } if done == id => Some(Ok(())),
            Event::PublishFailed { id: done, error } if done == id => {
                Some(Err(Error::Rejected(error)))
            }
            _ => None,
        })?;
        // A fatal refusal (nsqd hangs up after it) ends the connection.
        self.link.check(result)
    }

    /// Queues `PUB topic body` and writes it; its confirmation arrives as
    /// [`Event::Published`] (or [`Event::PublishFailed`]) with the id.
    pub fn publish_nowait(
        &mut self,
        topic: &str,
        body: &[u8],
    ) -> Result<PublishId, Error<T::Error>> {
        self.command(|s| s.publish(topic, body))
    }

    /// Subscribes to `topic` on `channel` and waits for nsqd's `OK`; then
    /// call [`NsqClient::ready`] to receive messages.
    pub fn subscribe(&mut self, topic: &str, channel: &str) -> Result<(), Error<T::Error>> {
        self.command(|s| s.subscribe(topic, channel))?;
        let deadline = self.clock.now() + self.link.options.stall_timeout;
        self.drive_until(deadline, Wait::Subscribe, |event| {
            matches!(event, Event::Subscribed).then_some(())
        })
    }

    /// Sends `RDY count`: at most `count` messages in flight to this client
    /// (unFINished). 0 pauses delivery.
    pub fn ready(&mut self, count: u32) -> Result<(), Error<T::Error>> {
        self.command(|s| s.ready(count))
    }

    /// Sends `FIN id`: the message was handled and is gone from nsqd.
    pub fn fin(&mut self, id: &MessageId) -> Result<(), Error<T::Error>> {
        self.command(|s| s.fin(id))
    }

    /// Sends `REQ id delay_ms`: nsqd delivers the message again later.
    pub fn req(&mut self, id: &MessageId, delay_ms: u32) -> Result<(), Error<T::Error>> {
        self.command(|s| s.req(id, delay_ms))
    }

    /// Sends `TOUCH id`: resets the message's timeout.
    pub fn touch(&mut self, id: &MessageId) -> Result<(), Error<T::Error>> {
        self.command(|s| s.touch(id))
    }

    /// Sends `CLS` and waits for `CLOSE_WAIT`: no more messages come;
    /// in-flight ones can still be FINed.
    pub fn close(&mut self) -> Result<(), Error<T::Error>> {
        self.command(|s| s.close())?;
        let deadline = self.clock.now() + self.link.options.stall_timeout;
        self.drive_until(deadline, Wait::Close, |event| {
            matches!(event, Event::Closed).then_some(())
        })
    }

    /// Reads once (if no whole frame is buffered) and returns the next
    /// event; a message borrows the receive buffer until the next call.
    /// Heartbeats are answered (`NOP`) before this returns.
    /// `Ok(None)`: nothing this time (read timeout, partial frame, or a
    /// frame whose event the next call returns).
    pub fn next_event(&mut self) -> Result<Option<Incoming<'_>>, Error<T::Error>> {
        let now = self.clock.now();
        self.link.begin_step(now)?;
        // Owned events first (and before more input: after
        // StartCompression the buffered bytes are compressed).
        if let Some(event) = self.link.session()?.poll_event() {
            #[cfg(feature = "deflate")]
            if matches!(
                event,
                Event::StartCompression(nsq::Compression::Deflate { .. })
            ) && self.can_inflate()
            {
                let switched = self.start_inflate();
                self.link.check(switched)?;
            }
            self.write_pending()?;
            return Ok(Some(Incoming::Event(event)));
        }
        // A session that ended (a fatal error after its publishes were
        // reported) says so without input.
        let ended = self.link.session()?.handle_input(&[], now);
        self.link.check(ended.map_err(Error::Nsq))?;
        if !self.link.has_frame() && (!self.read_once()? || !self.link.has_frame()) {
            return Ok(None);
        }
        let now = self.clock.now();
        let transport = &mut self.transport;
        let Link {
            session,
            rx,
            borrowed,
            failed,
            ..
        } = &mut self.link;
        let (used, message) = match session.handle_input(rx.data(), now) {
            Ok(parsed) => parsed,
            Err(e) => {
                *failed = true;
                return Err(Error::Nsq(e));
            }
        };
        *borrowed = used;
        // The answers the input produced (NOP for a heartbeat) go out first.
        if let Err(e) = write_session(transport, session, self.compressed) {
            *failed = true;
            return Err(e);
        }
        Ok(message.map(Incoming::Message))
    }

    /// The transport (to reconnect it in place, embassy-net style).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The session (negotiated settings, outstanding publishes).
    pub fn session(&mut self) -> Result<&mut nsq::Session<S, PENDING>, Error<T::Error>> {
        Ok(self.link.session()?)
    }

    /// Calls `next_event` until `accept` takes an event or `deadline`
    /// passes (then `TimedOut(wait)`).
    fn drive_until<X>(
        &mut self,
        deadline: Instant,
        wait: Wait,
        mut accept: impl FnMut(Event) -> Option<X>,
    ) -> Result<X, Error<T::Error>> {
        loop {
            if let Some(Incoming::Event(event)) = self.next_event()? {
                if let Some(out) = accept(event) {
                    return Ok(out);
                }
            }
            if self.clock.now() >= deadline {
                return Err(Error::TimedOut(wait));
            }
        }
    }

    fn read_once(&mut self) -> Result<bool, Error<T::Error>> {
        let result = self.read_into_buffer();
        self.link.check(result)
    }

    fn read_into_buffer(&mut self) -> Result<bool, Error<T::Error>> {
        #[cfg(feature = "deflate")]
        if self.compressed {
            let transport = &mut self.transport;
            let Some(state) = self.deflate.as_deref_mut() else {
                return Err(Error::Inflate);
            };
            let n = state.read(
                self.link.spare()?,
                |raw| read_result(transport.read(raw)),
                |_| Error::Inflate,
            )?;
            return self.link.after_read(n, self.clock.now());
        }
        let n = read_result(self.transport.read(self.link.spare()?))?;
        self.link.after_read(n, self.clock.now())
    }

    /// Queues a command in the session and writes it out.
    fn command<X>(
        &mut self,
        queue: impl FnOnce(&mut nsq::Session<S, PENDING>) -> Result<X, SessionError>,
    ) -> Result<X, Error<T::Error>> {
        self.link.ensure_usable()?;
        let queued = queue(self.link.session()?).map_err(Error::Nsq);
        let queued = self.link.check(queued)?;
        self.write_pending()?;
        Ok(queued)
    }

    fn write_pending(&mut self) -> Result<(), Error<T::Error>> {
        self.link.ensure_usable()?;
        let session = self.link.session()?;
        let result = write_session(&mut self.transport, session, self.compressed);
        self.link.check(result)
    }
}

/// Writes everything the session has queued (as stored DEFLATE blocks
/// when `compressed`), then flushes the transport.
fn write_session<T: Write, S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize>(
    transport: &mut T,
    session: &mut nsq::Session<S, PENDING>,
    compressed: bool,
) -> Result<(), Error<T::Error>> {
    if session.transmit().is_empty() {
        return Ok(());
    }
    while !session.transmit().is_empty() {
        if compressed {
            let pending = session.transmit();
            let len = pending.len().min(usize::from(u16::MAX));
            write_all(transport, &stored_block_header(len as u16))?;
            write_all(transport, &pending[..len])?;
            // An empty stored block (zlib's sync flush): Go's inflater, in
            // nsqd, hands a block's bytes on only when the next block starts
            // or an empty one arrives.
            write_all(transport, &stored_block_header(0))?;
            session.transmitted(len);
            continue;
        }
        let n = write_result(transport.write(session.transmit()))?;
        session.transmitted(n);
    }
    transport.flush().map_err(Error::Transport)
}

/// Writes all of `bytes` (a transport that takes none is an error).
fn write_all<T: Write>(transport: &mut T, mut bytes: &[u8]) -> Result<(), Error<T::Error>> {
    while !bytes.is_empty() {
        let n = write_result(transport.write(bytes))?;
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// The header of a stored DEFLATE block of `len` bytes (BFINAL 0, BTYPE
/// 00, padded to the byte, LEN, NLEN little-endian).
fn stored_block_header(len: u16) -> [u8; 5] {
    let [lo, hi] = len.to_le_bytes();
    [0, lo, hi, !lo, !hi]
}
