//! NSQ over `embedded-io` transports: a producer (PUB confirmed by nsqd's
//! `OK`) and a consumer (SUB, RDY, FIN, REQ, TOUCH) for devices, on any TCP
//! stack or serial link, with caller-owned buffers and no allocator.
//!
//! Same shape as the NATS drivers: an IO-free [`Link`] holds the
//! [`nsq::Session`], the receive buffer and every decision that needs no
//! IO; [`blocking::NsqClient`] adds the blocking IO loop around it.
//!
//! Delivery: [`blocking::NsqClient::publish`] returns only after nsqd
//! answered `OK` (at-least-once when the caller retries a failed publish
//! on a new connection: an `Err` means "not confirmed", never "not
//! delivered"). Messages received are at-least-once: nsqd redelivers a
//! message that is not `FIN`ed within its timeout or whose connection died.
//!
//! DEFLATE with the `deflate` feature and a `deflate::DeflateState` given
//! to the client (~43 KiB: the protocol's 32 KiB window). Not here: TLS,
//! snappy (the session reports them with [`nsq::Event::StartTls`] /
//! [`nsq::Event::StartCompression`]; this driver refuses them with
//! [`Error::Unsupported`]: leave them off in [`nsq::Identify`]), AUTH, and
//! nsqlookupd discovery.

pub mod blocking;
#[cfg(feature = "deflate")]
pub mod deflate;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::buf::RxBuf;
use crate::drivers::DriverOptions;
use crate::nsq::{self, decode_frame, Identify, ServerError, SessionError};
use crate::time::{Duration, Instant};

/// Which wait of the NSQ driver ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Wait {
    /// The handshake (magic, IDENTIFY, its response) in `connect`.
    Connect,
    /// nsqd's answer to a PUB.
    Publish,
    /// nsqd's answer to SUB.
    Subscribe,
    /// nsqd's `CLOSE_WAIT` after CLS.
    Close,
}

/// What went wrong while the driver ran an NSQ session over a transport.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed: the connection is unusable; reconnect.
    Transport(E),
    /// The peer closed the connection (a read returned 0 bytes or a write
    /// took none).
    ConnectionClosed,
    /// The NSQ session rejected nsqd's bytes or the call (see
    /// [`Error::is_fatal`]); e.g. a frame larger than the receive buffer.
    Nsq(SessionError),
    /// nsqd refused a publish (`E_BAD_TOPIC`, `E_BAD_MESSAGE`...): it was
    /// not stored.
    Rejected(ServerError),
    /// A wait ran out of time: for [`Wait::Publish`] the publish is
    /// unconfirmed (nsqd may or may not have it).
    TimedOut(Wait),
    /// nsqd sent part of a frame and then nothing for `waited`.
    Stalled {
        /// Bytes of the incomplete frame received so far.
        buffered: usize,
        /// Time since the last byte arrived.
        waited: Duration,
    },
    /// nsqd negotiated a feature this driver does not run (TLS, snappy,
    /// DEFLATE, AUTH): turn it off in [`Identify`].
    Unsupported(&'static str),
    /// The DEFLATE stream from nsqd is corrupt (or compressed bytes before
    /// the switch did not fit the decoder's input buffer).
    Inflate,
    /// An earlier fatal error ended this connection; call `reconnect`.
    Disconnected,
}

impl<E> Error<E> {
    /// True when the connection cannot be used any more: reconnect (and
    /// subscribe again: NSQ subscriptions belong to a connection).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Transport(_)
            | Error::ConnectionClosed
            | Error::Stalled { .. }
            | Error::Unsupported(_)
            | Error::Inflate
            | Error::Disconnected => true,
            Error::Nsq(e) => !matches!(
                e,
                SessionError::Command(_)
                    | SessionError::RdyTooHigh { .. }
                    | SessionError::TooManyOutstanding { .. }
                    | SessionError::InvalidState { .. }
            ),
            Error::Rejected(e) => e.is_fatal(),
            Error::TimedOut(wait) => *wait == Wait::Connect,
        }
    }
}

impl<E> From<SessionError> for Error<E> {
    fn from(e: SessionError) -> Self {
        Error::Nsq(e)
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
            Error::ConnectionClosed => write!(f, "nsqd closed the connection; reconnect"),
            Error::Nsq(e) => write!(f, "{e}"),
            Error::Rejected(e) => write!(f, "nsqd refused the publish: {e}"),
            Error::TimedOut(Wait::Connect) => write!(
                f,
                "the NSQ handshake did not complete in time: is this nsqd's TCP port?"
            ),
            Error::TimedOut(Wait::Publish) => write!(
                f,
                "nsqd did not confirm the publish in time: it is unconfirmed (nsqd may have it); \
                 publish again on a new connection for at-least-once"
            ),
            Error::TimedOut(Wait::Subscribe) => write!(f, "nsqd did not answer SUB in time"),
            Error::TimedOut(Wait::Close) => write!(f, "nsqd did not answer CLS in time"),
            Error::Stalled { buffered, waited } => write!(
                f,
                "nsqd sent {buffered} bytes of a frame and then nothing for {} ms: \
                 the connection stalled mid-frame; reconnect",
                waited.as_millis()
            ),
            Error::Unsupported(what) => write!(
                f,
                "nsqd negotiated {what}, which this embedded driver does not run: \
                 turn it off in Identify"
            ),
            Error::Inflate => write!(f, "the DEFLATE stream from nsqd is corrupt; reconnect"),
            Error::Disconnected => write!(
                f,
                "the connection failed earlier (that error was returned then); reconnect"
            ),
        }
    }
}

impl<E: embedded_io::Error> core::error::Error for Error<E> {}

/// What [`blocking::NsqClient::next_event`] hands over: a message, which
/// borrows the receive buffer until the next call, or an owned session
/// event.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A message: FIN, REQ or TOUCH it by id.
    Message(nsq::Message<'a>),
    /// A session event (handshake step, publish answer, heartbeat...).
    Event(nsq::Event),
}

/// The transport-independent half of the NSQ driver: the session
/// (started again for each connection), the receive buffer, stall
/// detection and the fatal-error latch.
pub struct Link<'i, R, S, const PENDING: usize> {
    session: nsq::Session<S, PENDING>,
    rx: RxBuf<R>,
    /// Bytes the last returned event borrowed; released by the next call.
    borrowed: usize,
    last_byte_at: Instant,
    failed: bool,
    identify: Identify<'i>,
    options: DriverOptions,
}

impl<'i, R, S, const PENDING: usize> Link<'i, R, S, PENDING>
where
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A session whose magic and IDENTIFY wait in the transmit buffer.
    pub fn new(
        identify: Identify<'i>,
        options: DriverOptions,
        rx: R,
        tx: S,
        now: Instant,
    ) -> Result<Self, SessionError> {
        let rx = RxBuf::new(rx);
        let mut session = nsq::Session::new(nsq::Options::new(rx.capacity()), tx);
        session.start(&identify, now)?;
        Ok(Link {
            session,
            rx,
            borrowed: 0,
            last_byte_at: now,
            failed: false,
            identify,
            options,
        })
    }

    /// The session (a session whose restart failed answers every command
    /// with `InvalidState`).
    pub fn session(&mut self) -> Result<&mut nsq::Session<S, PENDING>, SessionError> {
        Ok(&mut self.session)
    }

    /// Starts over for a new connection: the session started again (magic
    /// and IDENTIFY queued), input dropped, the fatal-error latch cleared.
    pub fn reset(&mut self, now: Instant) -> Result<(), SessionError> {
        self.rx.clear();
        self.borrowed = 0;
        self.failed = false;
        self.last_byte_at = now;
        self.session.start(&self.identify, now)
    }

    /// When a connect starting at `now` gives up.
    pub fn connect_deadline(&self, now: Instant) -> Instant {
        now + self.options.connect_timeout
    }

    /// `Err(Disconnected)` once a fatal error was returned.
    pub fn ensure_usable<E>(&self) -> Result<(), Error<E>> {
        if self.failed {
            Err(Error::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Passes `result` through, latching a fatal error.
    pub fn check<X, E>(&mut self, result: Result<X, Error<E>>) -> Result<X, Error<E>> {
        if let Err(e) = &result {
            self.failed |= e.is_fatal();
        }
        result
    }

    /// Releases the previous event's bytes and checks the heartbeat window.
    pub fn begin_step<E>(&mut self, now: Instant) -> Result<(), Error<E>> {
        self.ensure_usable()?;
        self.rx.consume(core::mem::take(&mut self.borrowed));
        let session = self.session()?;
        if session.poll_timeout().is_some_and(|at| at <= now) {
            let result = session.handle_timeout(now).map_err(Error::Nsq);
            self.check(result)?;
        }
        Ok(())
    }

    /// True when the receive buffer holds a whole frame, or bytes the codec
    /// rejects (handling them reports the error without reading).
    pub fn has_frame(&self) -> bool {
        !matches!(decode_frame(self.rx.data(), self.rx.capacity()), Ok(None))
    }

    /// The free room a read fills.
    pub fn spare<E>(&mut self) -> Result<&mut [u8], Error<E>> {
        let capacity = self.rx.capacity();
        let spare = self.rx.spare();
        if spare.is_empty() {
            // decode_frame reports frames that cannot fit before this.
            return Err(Error::Nsq(SessionError::Frame(
                nsq::FrameError::FrameTooLarge {
                    needed: capacity + 1,
                    capacity,
                },
            )));
        }
        Ok(spare)
    }

    /// Records a read of `n` bytes at `now` (0: nothing arrived, which is
    /// `Stalled` once a half frame waited too long). True when bytes came.
    pub fn after_read<E>(&mut self, n: usize, now: Instant) -> Result<bool, Error<E>> {
        if n == 0 {
            if !self.rx.is_empty() && now >= self.last_byte_at + self.options.stall_timeout {
                return Err(Error::Stalled {
                    buffered: self.rx.len(),
                    waited: now.saturating_since(self.last_byte_at),
                });
            }
            return Ok(false);
        }
        self.rx.fill(n);
        self.last_byte_at = now;
        Ok(true)
    }
}

impl<E> From<super::IoEnd<E>> for Error<E> {
    fn from(end: super::IoEnd<E>) -> Self {
        match end {
            super::IoEnd::Closed => Error::ConnectionClosed,
            super::IoEnd::Transport(e) => Error::Transport(e),
        }
    }
}

/// One read classified as the NATS drivers do ([`super::read_step`]).
fn read_result<E: embedded_io::Error>(result: Result<usize, E>) -> Result<usize, Error<E>> {
    super::read_step(result).map_err(Into::into)
}

/// One write classified as the NATS drivers do ([`super::write_step`]).
fn write_result<E: embedded_io::Error>(result: Result<usize, E>) -> Result<usize, Error<E>> {
    super::write_step(result).map_err(Into::into)
}
