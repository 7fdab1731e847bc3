//! What the connection does with what the core session reports: feeds it
//! the received bytes and acts on the owned events (`poll_event`) and on the
//! messages, replies and errors that borrow the receive buffer.

use courier_core::nats::{Error as CoreError, Event as CoreEvent, Received};

use super::options::Event;
use super::shared::Shared;
use super::Error;
use crate::session_io::Inbound;

/// What [`process_input`] saw that the read loop acts on.
#[derive(Default)]
pub(crate) struct Processed {
    /// The server sent a new INFO.
    pub(crate) info_updated: bool,
    /// ... saying it entered lame duck mode.
    pub(crate) lame_duck: bool,
    /// Input is left that needs transmit room first.
    pub(crate) blocked: bool,
}

/// Feeds every complete operation in `rx` to the session and acts on what
/// comes out: the owned events first (the session parses nothing while one
/// waits), then the message the input borrowed.
pub(crate) fn process_input(sh: &mut Shared, rx: &mut Inbound) -> Result<Processed, Error> {
    let mut processed = Processed::default();
    loop {
        drain_events(sh, &mut processed);
        let now = sh.now();
        let (consumed, received) = match sh.session.handle_input(rx.data(), now) {
            Ok(r) => r,
            // Nothing was consumed; retry after the writer drained.
            Err(CoreError::BufferFull(_)) => {
                processed.blocked = true;
                return Ok(processed);
            }
            Err(e) => return Err(e.into()),
        };
        if consumed == 0 && received.is_none() && !sh.session.has_events() {
            return Ok(processed);
        }
        if let Some(received) = received {
            on_received(sh, received);
        }
        rx.consume(consumed);
    }
}

/// Acts on every owned event the session holds.
pub(crate) fn drain_events(sh: &mut Shared, processed: &mut Processed) {
    while let Some(event) = sh.session.poll_event() {
        on_event(sh, event, processed);
    }
}

/// Acts on a message, a reply or a server's error text (they borrow the
/// receive buffer).
fn on_received(sh: &mut Shared, received: Received<'_>) {
    match received {
        Received::Message(m) => {
            count_in(sh, &m);
            if let Some(q) = sh.receivers.subs.get(&m.sid.0) {
                let msg = sh.receivers.slab.message(
                    m.subject,
                    m.reply,
                    m.headers.map(|h| h.as_bytes()),
                    m.payload,
                );
                if let Some(ev) = q.borrow_mut().push(msg) {
                    sh.events.pending.push(ev);
                }
            }
        }
        Received::Reply {
            request,
            message: m,
        } => {
            count_in(sh, &m);
            if let Some(req) = sh.receivers.requests.remove(&request.0) {
                let msg = sh.receivers.slab.message(
                    m.subject,
                    m.reply,
                    m.headers.map(|h| h.as_bytes()),
                    m.payload,
                );
                let _ = req.reply.send(Ok(msg));
            }
        }
        Received::ServerError { kind, message } => sh.events.pending.push(
            super::auth::permission_violation(kind, message).unwrap_or_else(|| Event::Error {
                message: format!("server error ({kind:?}): {message}"),
            }),
        ),
        _ => {}
    }
}

fn count_in(sh: &mut Shared, m: &courier_core::nats::Message<'_>) {
    sh.statistics.in_messages += 1;
    sh.statistics.in_bytes += m.payload.len() as u64;
}

/// Acts on one owned core event.
fn on_event(sh: &mut Shared, event: CoreEvent, processed: &mut Processed) {
    match event {
        CoreEvent::InfoUpdated => processed.info_updated = true,
        CoreEvent::LameDuckMode => {
            processed.info_updated = true;
            processed.lame_duck = true;
        }
        CoreEvent::SubscriptionDone { sid } => {
            if let Some(q) = sh.receivers.subs.remove(&sid.0) {
                q.borrow_mut().close();
            }
        }
        CoreEvent::NoResponders { request } => {
            if let Some(req) = sh.receivers.requests.remove(&request.0) {
                let _ = req.reply.send(Err(Error::NoResponders {
                    subject: req.subject,
                }));
            }
        }
        CoreEvent::RequestTimedOut { request } => {
            if let Some(req) = sh.receivers.requests.remove(&request.0) {
                let _ = req.reply.send(Err(Error::TimedOut {
                    operation: "request",
                    after: req.timeout,
                }));
            }
        }
        CoreEvent::Pong { ping } => {
            while sh.receivers.flushes.front().is_some_and(|f| f.ping <= ping) {
                if let Some(flush) = sh.receivers.flushes.pop_front() {
                    sh.statistics.confirmed_bytes =
                        sh.statistics.confirmed_bytes.max(flush.position);
                    let _ = flush.done.send(Ok(()));
                }
            }
            // A flush's or a confirmation ping's PONG: every publish
            // written before it reached the server.
            let at = sh.unconfirmed.pong(ping).max(sh.statistics.confirmed_bytes);
            sh.statistics.confirmed_bytes = at;
            sh.unconfirmed.confirm(at);
        }
        CoreEvent::Connected {
            max_payload_warning: Some(w),
            ..
        } => sh.events.pending.push(Event::Error {
            message: format!(
                "the server allows {}-byte messages but the receive buffer holds {}: larger \
                 messages will fail; raise ConnectOptions::receive_buffer_size",
                w.max_payload, w.rx_capacity
            ),
        }),
        _ => {}
    }
}
