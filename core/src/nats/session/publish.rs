//! PUB/HPUB, held publishes, the zero-copy header-only publish.

use super::*;
use crate::nats::auth::Authenticator;
use crate::nats::commands::{self};
use crate::nats::error::Error;
use crate::nats::info::InfoStorage;
use crate::nats::outbox::{Held, Sendable};

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// The bytes a publish puts on the wire (control line, headers,
    /// payload and trailer), after validating its subjects: what it will
    /// take of the transmit buffer.
    pub fn publish_size(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload_len: usize,
    ) -> Result<usize, Error> {
        commands::publish_size(subject, reply, headers, payload_len)
    }

    /// Bytes queued for transmission, held publishes included.
    pub fn queued_bytes(&self) -> usize {
        self.out.len()
    }

    /// Bytes of publishes held until the handshake completes (made while
    /// not connected, or kept across a [`Session::start`]).
    pub fn held_bytes(&self) -> usize {
        self.out.held_len()
    }

    pub(super) fn check_publish(
        &self,
        headers: Option<&[u8]>,
        payload_len: usize,
    ) -> Result<(), Error> {
        let size = headers.map_or(0, <[u8]>::len).saturating_add(payload_len);
        if headers.is_some() && !self.options.headers {
            return Err(Error::HeadersNotSupported);
        }
        if let Some(info) = &self.info {
            if headers.is_some() && !info.headers() {
                return Err(Error::HeadersNotSupported);
            }
            if info.max_payload() > 0 && size as u64 > info.max_payload() {
                return Err(Error::PayloadTooLarge {
                    size,
                    max_payload: info.max_payload(),
                });
            }
        }
        Ok(())
    }

    /// Publishes `payload` to `subject` (HPUB when `headers` is given: a
    /// complete NATS/1.0 block such as `HeaderWriter::as_bytes()`).
    /// Validated first (the header block fully, every time); written whole
    /// or not at all. Queued behind the handshake when not connected (room
    /// for the handshake is kept free).
    pub fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.publish_block(subject, reply, headers, false, payload)
    }

    /// [`Session::publish`] with a block that is already checked
    /// ([`CheckedBlock`](crate::nats::headers::CheckedBlock)): the subjects,
    /// size and server support are still checked, the block's lines are not.
    pub fn publish_checked(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: crate::nats::headers::CheckedBlock<'_>,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.publish_block(subject, reply, Some(headers.as_bytes()), true, payload)
    }

    /// `checked`: `headers` is a `CheckedBlock`'s (the drivers check a
    /// block once, so a plain publish never links the header parser).
    pub(crate) fn publish_block(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        checked: bool,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.check_publish(headers, payload.len())?;
        let len = payload.len();
        if self.state == State::Connected {
            commands::write_publish(
                &mut Sendable(&mut self.out),
                subject,
                reply,
                headers,
                checked,
                len,
                Some(payload),
            )
        } else {
            let reserve = self.handshake_reserve()?;
            commands::write_publish(
                &mut Held {
                    outbox: &mut self.out,
                    reserve,
                },
                subject,
                reply,
                headers,
                checked,
                len,
                Some(payload),
            )
        }
    }

    /// Zero-copy publish: appends only the `PUB`/`HPUB` control line (and
    /// headers) for a payload of `payload_len` bytes and returns the trailer
    /// (`\r\n`). Needs state `Connected` and an empty [`Session::transmit`]
    /// (else [`Error::NotConnected`] / [`Error::BufferFull`]). The driver
    /// writes [`Session::transmit`] (which stops at the end of the prefix),
    /// then the payload, then the trailer, and only then anything else.
    pub fn publish_header_only(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload_len: usize,
    ) -> Result<&'static [u8], Error> {
        self.publish_header_only_block(subject, reply, headers, false, payload_len)
    }

    /// [`Session::publish_header_only`]; `checked` as in `publish_block`.
    pub(crate) fn publish_header_only_block(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        checked: bool,
        payload_len: usize,
    ) -> Result<&'static [u8], Error> {
        if self.state != State::Connected {
            return Err(Error::NotConnected);
        }
        if !self.out.is_empty() {
            // Flush first: the payload must follow its prefix directly.
            let capacity = self.out.capacity();
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: (self.out.len() + 1).min(capacity),
                capacity,
            }));
        }
        self.check_publish(headers, payload_len)?;
        commands::write_publish(
            &mut Sendable(&mut self.out),
            subject,
            reply,
            headers,
            checked,
            payload_len,
            None,
        )?;
        self.out.mark_vectored();
        Ok(commands::CRLF)
    }

    /// Publishes held until the handshake completes (see
    /// [`Session::held_bytes`]).
    pub fn held_publishes(&self) -> usize {
        self.out.held_publishes()
    }
}
