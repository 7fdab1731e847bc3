//! What a consumer sends: SUB, RDY, FIN, REQ, TOUCH, NOP, CLS, and the
//! checks every command shares.

use super::{Pending, Session, SessionError, State};
use crate::nsq::commands as encode;
use crate::nsq::frame::MessageId;

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    /// Sends `SUB topic channel`; [`Event::Subscribed`](super::Event::Subscribed) follows.
    pub fn subscribe(&mut self, topic: &str, channel: &str) -> Result<(), SessionError> {
        self.require_ready("SUB")?;
        if self.subscribed || self.pending.iter().any(|p| *p == Pending::Sub) {
            return Err(SessionError::InvalidState {
                operation: "SUB",
                state: "already subscribed (nsqd allows one SUB per connection)",
            });
        }
        self.reserve_pending()?;
        encode::encode_sub(&mut self.tx, topic, channel)?;
        self.push_pending(Pending::Sub);
        Ok(())
    }

    /// Sends `RDY count`: how many messages nsqd may have in flight to us.
    /// A count above nsqd's `max_rdy_count` is refused here (nsqd would
    /// answer `E_INVALID` and hang up).
    pub fn ready(&mut self, count: u32) -> Result<(), SessionError> {
        self.require_open("RDY")?;
        if let Some(max) = self.negotiated.as_ref().map(|n| n.max_rdy_count) {
            if i64::from(count) > max && max > 0 {
                return Err(SessionError::RdyTooHigh { count, max });
            }
        }
        Ok(encode::encode_rdy(&mut self.tx, count)?)
    }

    /// Sends `FIN id`: the message was handled.
    pub fn fin(&mut self, id: &MessageId) -> Result<(), SessionError> {
        self.require_open("FIN")?;
        Ok(encode::encode_fin(&mut self.tx, id)?)
    }

    /// Sends `REQ id delay_ms`: redeliver the message after the delay.
    pub fn req(&mut self, id: &MessageId, delay_ms: u32) -> Result<(), SessionError> {
        self.require_open("REQ")?;
        Ok(encode::encode_req(&mut self.tx, id, delay_ms)?)
    }

    /// Sends `TOUCH id`: reset the message's timeout.
    pub fn touch(&mut self, id: &MessageId) -> Result<(), SessionError> {
        self.require_open("TOUCH")?;
        Ok(encode::encode_touch(&mut self.tx, id)?)
    }

    /// Sends `NOP` (normally not needed: heartbeats are answered already).
    pub fn nop(&mut self) -> Result<(), SessionError> {
        self.require_open("NOP")?;
        Ok(encode::encode_nop(&mut self.tx)?)
    }

    /// Sends `CLS`: nsqd stops sending messages and answers `CLOSE_WAIT`
    /// ([`Event::Closed`](super::Event::Closed)). In-flight messages can
    /// still be FIN'd.
    pub fn close(&mut self) -> Result<(), SessionError> {
        self.require_ready("CLS")?;
        self.reserve_pending()?;
        encode::encode_cls(&mut self.tx)?;
        self.push_pending(Pending::Close);
        self.state = State::Closing;
        Ok(())
    }

    pub(super) fn require_ready(&self, operation: &'static str) -> Result<(), SessionError> {
        match (self.state, &self.error) {
            (State::Ready, _) => Ok(()),
            (_, Some(e)) => Err(e.clone()),
            (state, None) => Err(SessionError::InvalidState {
                operation,
                state: state.name(),
            }),
        }
    }

    /// Ready, or closing but messages may still be in flight.
    fn require_open(&self, operation: &'static str) -> Result<(), SessionError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None if self.is_open() => Ok(()),
            None => Err(SessionError::InvalidState {
                operation,
                state: self.state.name(),
            }),
        }
    }

    pub(super) fn reserve_pending(&self) -> Result<(), SessionError> {
        if self.pending.is_full() {
            return Err(SessionError::TooManyOutstanding { capacity: PENDING });
        }
        Ok(())
    }

    pub(super) fn push_pending(&mut self, p: Pending) {
        // Checked by reserve_pending before anything was written.
        let _ = self.pending.push_back(p);
    }
}
