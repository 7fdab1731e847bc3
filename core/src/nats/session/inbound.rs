//! Server operations after the handshake: PONG, -ERR, MSG/HMSG.

use super::*;
use crate::nats::auth::Authenticator;
use crate::nats::commands::{self};
use crate::nats::error::{Error, ServerErrorKind, SERVER_MESSAGE_CAPACITY};
use crate::nats::headers::{Headers, STATUS_NO_RESPONDERS};
use crate::nats::ids::{PingId, RequestId, Sid};
use crate::nats::info::InfoStorage;
use crate::nats::outbox::Sendable;
use crate::nats::parser::{self, MsgFrame};
use crate::nats::subscriptions::Delivery;
use crate::time::Instant;
use heapless::String;

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    pub(super) fn on_pong(&mut self, now: Instant) -> Result<(), Error> {
        let answered = self.first_ping_of_connection + self.pongs_received;
        self.pings_outstanding = 0;
        if self.state == State::AwaitingPong && answered == self.first_ping_of_connection {
            // Re-subscribe before the held publishes are released, so
            // messages published meanwhile reach our own subscriptions.
            // All or nothing: a retry after BufferFull must not repeat SUBs.
            let needed: usize = self.subs.iter().map(resubscribe_len).sum();
            let (queued, capacity) = (self.out.len(), self.out.capacity());
            if queued + needed > capacity {
                return Err(Error::BufferFull(crate::buf::CapacityError {
                    needed: queued + needed,
                    capacity,
                }));
            }
            let mut sink = Sendable(&mut self.out);
            for sub in self.subs.iter() {
                commands::subscribe(&mut sink, &sub.subject, sub.queue.as_deref(), sub.sid.0)?;
                if let Some(remaining) = sub.remaining() {
                    commands::unsubscribe(&mut sink, sub.sid.0, Some(remaining))?;
                }
            }
            self.pongs_received += 1;
            self.out.release();
            self.state = State::Connected;
            let reconnect = self.ever_connected;
            self.ever_connected = true;
            self.arm_keepalive(now);
            self.push_event(Event::Connected {
                reconnect,
                max_payload_warning: self.max_payload_warning(),
            });
            return Ok(());
        }
        self.pongs_received += 1;
        // Drains whose PING this PONG answers are complete: the server
        // processed their UNSUB, so no message for them can follow.
        while let Some(sid) = self.subs.finish_draining(PingId(answered)) {
            self.end_subscription(sid);
        }
        self.push_event(Event::Pong {
            ping: PingId(answered),
        });
        Ok(())
    }

    pub(super) fn on_server_error<'a>(&mut self, text: &'a str) -> Result<Received<'a>, Error> {
        let kind = ServerErrorKind::classify(text);
        if !kind.is_fatal() {
            return Ok(Received::ServerError {
                kind,
                message: text,
            });
        }
        let error = if kind == ServerErrorKind::AuthorizationViolation {
            Error::AuthorizationViolation
        } else {
            let mut message = String::<SERVER_MESSAGE_CAPACITY>::new();
            let mut cut = text.len().min(SERVER_MESSAGE_CAPACITY);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let _ = message.push_str(text.get(..cut).unwrap_or_default());
            Error::Server { kind, message }
        };
        Err(self.fail(error))
    }

    pub(super) fn on_message<'a>(&mut self, frame: MsgFrame<'a>) -> Option<Received<'a>> {
        // Headers come from another client, not the server: a broken block
        // must not kill our connection. Deliver the message without them.
        let headers = match frame.headers.map(Headers::parse_received) {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => {
                self.stats.malformed_headers += 1;
                None
            }
            None => None,
        };
        let sid = Sid(frame.sid);
        let message = Message {
            sid,
            subject: frame.subject,
            reply: frame.reply,
            headers,
            payload: frame.payload,
            status: headers.and_then(|h| h.status()),
        };
        if self.inbox_sid == Some(sid) {
            let token = frame.subject.rsplit('.').next().unwrap_or_default();
            let id = parser::parse_decimal(token.as_bytes()).map(RequestId);
            let Some(request) = id.filter(|id| self.timers.stop(Timer::Request(*id))) else {
                self.stats.late_replies += 1;
                return None;
            };
            self.stats.messages_received += 1;
            if message.status == Some(STATUS_NO_RESPONDERS) {
                self.push_event(Event::NoResponders { request });
                return None;
            }
            return Some(Received::Reply { request, message });
        }
        match self.subs.on_message(sid) {
            Delivery::Drop => {
                self.stats.dropped_unknown_sid += 1;
                None
            }
            Delivery::Deliver { last } => {
                if last {
                    // Cannot overflow: each sid ends once and SUBS bounds them.
                    let _ = self.done.push(sid);
                }
                self.stats.messages_received += 1;
                Some(Received::Message(message))
            }
        }
    }
}
