//! Frames from nsqd: messages, answers to commands, heartbeats, errors.

use super::{Event, Pending, Session, SessionError, State, UnexpectedKind};
use crate::nsq::commands as encode;
use crate::nsq::error::ServerError;
use crate::nsq::frame::{Frame, Message, CLOSE_WAIT, HEARTBEAT, OK};

impl<S: AsRef<[u8]> + AsMut<[u8]>, const PENDING: usize> Session<S, PENDING> {
    pub(super) fn on_frame<'a>(
        &mut self,
        frame: Frame<'a>,
    ) -> Result<Option<Message<'a>>, SessionError> {
        match frame {
            Frame::Response(HEARTBEAT) => {
                // A full transmit buffer is not fatal: any write nsqd reads
                // resets its timer, and the NOP follows once there is room.
                if encode::encode_nop(&mut self.tx).is_err() {
                    self.nop_owed = true;
                }
                self.push_event(Event::Heartbeat);
                Ok(None)
            }
            Frame::Error(data) => {
                self.on_error(ServerError::parse(data))?;
                Ok(None)
            }
            Frame::Message(message) => {
                if self.subscribed && self.is_open() {
                    Ok(Some(message))
                } else {
                    Err(self.unexpected(UnexpectedKind::Message))
                }
            }
            Frame::Response(data) if self.is_open() => {
                self.on_answer(data)?;
                Ok(None)
            }
            Frame::Response(data) => {
                self.on_handshake_response(data)?;
                Ok(None)
            }
        }
    }

    /// Ready, closing or closed: past the handshake, messages may come.
    pub(super) fn is_open(&self) -> bool {
        matches!(self.state, State::Ready | State::Closing | State::Closed)
    }

    pub(super) fn unexpected(&self, got: UnexpectedKind) -> SessionError {
        let expected = match (self.state, self.pending.front()) {
            (State::AwaitingIdentify, _) => "the IDENTIFY response",
            (State::AwaitingTls, _) => "OK after the TLS upgrade",
            (State::AwaitingCompression, _) => "OK after the compression upgrade",
            (State::AwaitingAuthSecret, _) => "nothing until AUTH is sent",
            (State::AwaitingAuth, _) => "the AUTH response",
            (_, Some(Pending::Sub)) => "OK for SUB",
            (_, Some(Pending::Publish(_))) => "OK for a publish",
            (_, Some(Pending::Close)) => "CLOSE_WAIT for CLS",
            (_, None) if got == UnexpectedKind::Message => "no message before SUB is accepted",
            (_, None) => "no response (no command awaits one)",
        };
        SessionError::UnexpectedFrame { expected, got }
    }

    fn on_error(&mut self, error: ServerError) -> Result<(), SessionError> {
        if !error.is_fatal() {
            self.push_event(Event::Error(error));
            return Ok(());
        }
        // nsqd answers in order and hangs up after a fatal error, so every
        // outstanding publish is lost: poll_event reports each before
        // handle_input returns the error itself.
        if self.outstanding_publishes().next().is_some() {
            self.state = State::Failed;
            self.timers.stop_all();
            self.fatal = Some(error);
            return Ok(());
        }
        Err(SessionError::Server(error))
    }

    /// An answer to the oldest command awaiting one.
    fn on_answer(&mut self, data: &[u8]) -> Result<(), SessionError> {
        let event = match (self.pending.front(), data) {
            (Some(Pending::Sub), OK) => {
                self.subscribed = true;
                Event::Subscribed
            }
            (Some(Pending::Publish(id)), OK) => Event::Published { id: *id },
            (Some(Pending::Close), CLOSE_WAIT) => {
                self.state = State::Closed;
                self.timers.stop_all();
                Event::Closed
            }
            _ => return Err(self.unexpected(UnexpectedKind::Response)),
        };
        self.pending.pop_front();
        self.push_event(event);
        Ok(())
    }
}
