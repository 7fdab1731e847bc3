//! The handshake after [`Session::start`]: IDENTIFY's answer, the TLS and
//! compression upgrades, AUTH, in nsqd's order.

use super::{Event, Session, SessionError, State, UnexpectedKind};
use crate::nsq::commands as encode;
use crate::nsq::frame::OK;
use crate::nsq::identify::{parse_auth_response, parse_identify_response, IdentifyReply};

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    /// Sends `AUTH` with `secret` after [`Event::AuthRequired`].
    pub fn auth(&mut self, secret: &[u8]) -> Result<(), SessionError> {
        if self.state != State::AwaitingAuthSecret {
            return Err(SessionError::InvalidState {
                operation: "AUTH",
                state: self.state.name(),
            });
        }
        encode::encode_auth(&mut self.tx, secret)?;
        self.state = State::AwaitingAuth;
        Ok(())
    }

    /// A response frame while the handshake runs.
    pub(super) fn on_handshake_response(&mut self, data: &[u8]) -> Result<(), SessionError> {
        match self.state {
            State::AwaitingIdentify => {
                if let IdentifyReply::Negotiated(n) = parse_identify_response(data)? {
                    self.tls_pending = n.tls_v1;
                    self.compression_pending = n.compression();
                    self.negotiated = Some(n);
                }
                self.push_event(Event::Identified);
                self.next_handshake_step();
                Ok(())
            }
            State::AwaitingTls | State::AwaitingCompression if data == OK => {
                self.next_handshake_step();
                Ok(())
            }
            State::AwaitingAuth => {
                self.auth = Some(parse_auth_response(data)?);
                self.push_event(Event::Authenticated);
                self.enter_ready();
                Ok(())
            }
            _ => Err(self.unexpected(UnexpectedKind::Response)),
        }
    }

    /// Moves to the next handshake step after IDENTIFY or an upgrade's OK,
    /// announcing it.
    fn next_handshake_step(&mut self) {
        if core::mem::take(&mut self.tls_pending) {
            self.state = State::AwaitingTls;
            self.push_event(Event::StartTls);
        } else if let Some(c) = self.compression_pending.take() {
            self.state = State::AwaitingCompression;
            self.push_event(Event::StartCompression(c));
        } else if self.negotiated.as_ref().is_some_and(|n| n.auth_required) {
            self.state = State::AwaitingAuthSecret;
            self.push_event(Event::AuthRequired);
        } else {
            self.enter_ready();
        }
    }

    fn enter_ready(&mut self) {
        self.state = State::Ready;
        self.push_event(Event::Ready);
    }
}
