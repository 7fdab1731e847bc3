//! Channel 0: the handshake (start, tune, open), the connection's close,
//! and RabbitMQ's blocked / unblocked.

use super::{close_reason, Event, Mechanism, Session, State, Timer, Tune};
use crate::amqp::codec::Writer;
use crate::amqp::error::{text, Error};
use crate::amqp::ids::ReplyCode;
use crate::amqp::methods::{Connection, Method};
use crate::amqp::table::{FieldTable, FieldValue, TableBuilder};
use crate::time::{Duration, Instant};

use super::options::negotiate;

/// Product name in the client properties.
const PRODUCT: &str = "courier";

/// Capabilities we advertise: the server then sends what a careful client
/// needs (consumer cancels, blocked notices, an explicit login refusal).
const CAPABILITIES: [&str; 6] = [
    "publisher_confirms",
    "consumer_cancel_notify",
    "connection.blocked",
    "basic.nack",
    "exchange_exchange_bindings",
    "authentication_failure_close",
];

/// Longest client-properties table we build (fits the fixed strings plus
/// a 64-byte connection name).
const CLIENT_PROPERTIES_CAPACITY: usize = 512;

/// Bytes of a PLAIN response: NUL user NUL password.
const PLAIN_CAPACITY: usize = 2 + 2 * super::options::CREDENTIAL_CAPACITY;

impl<S, const CHANNELS: usize, const CONFIRM_WORDS: usize> Session<S, CHANNELS, CONFIRM_WORDS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    pub(super) fn on_connection_method(
        &mut self,
        method: Method<'_>,
        now: Instant,
    ) -> Result<(), Error> {
        let Method::Connection(m) = method else {
            return Err(self.fail_with_close(
                ReplyCode::CommandInvalid,
                Error::Unexpected {
                    what: "a non-connection method",
                    channel: 0,
                    code: ReplyCode::CommandInvalid,
                },
            ));
        };
        match (self.state, m) {
            (
                _,
                Connection::Close {
                    reply_code,
                    reply_text,
                    class_id,
                    method_id,
                },
            ) => {
                let _ = self.send(0, Connection::CloseOk.into());
                let reason = close_reason(reply_code, reply_text, class_id, method_id);
                let refused = reason.code == ReplyCode::AccessRefused
                    && matches!(self.state, State::AwaitingTune | State::AwaitingStart);
                Err(self.fail(if refused {
                    Error::AccessRefused(reason)
                } else {
                    Error::ServerClosed(reason)
                }))
            }
            (
                State::AwaitingStart,
                Connection::Start {
                    version_major,
                    version_minor,
                    mechanisms,
                    ..
                },
            ) => {
                if (version_major, version_minor) != (0, 9) {
                    return Err(self.fail(Error::Frame(
                        crate::amqp::frame::FrameError::ProtocolVersion {
                            offered: [0, 0, version_major, version_minor],
                        },
                    )));
                }
                let wanted = self.options.mechanism;
                let name: &[u8] = match wanted {
                    Mechanism::Plain => b"PLAIN",
                    Mechanism::External => b"EXTERNAL",
                };
                if !mechanisms.split(|b| *b == b' ').any(|m| m == name) {
                    return Err(self.fail(Error::MechanismNotOffered { wanted }));
                }
                self.send_start_ok()?;
                self.state = State::AwaitingTune;
                Ok(())
            }
            (
                State::AwaitingTune,
                Connection::Tune {
                    channel_max,
                    frame_max,
                    heartbeat,
                },
            ) => {
                let ours = match self.options.channel_max {
                    0 => u16::try_from(CHANNELS).unwrap_or(u16::MAX),
                    n => n.min(u16::try_from(CHANNELS).unwrap_or(u16::MAX)),
                };
                self.tune = Tune {
                    channel_max: negotiate(ours, channel_max),
                    frame_max: negotiate(self.options.frame_max, frame_max),
                    heartbeat: negotiate(self.options.heartbeat, heartbeat),
                };
                let t = self.tune;
                self.send(
                    0,
                    Connection::TuneOk {
                        channel_max: t.channel_max,
                        frame_max: t.frame_max,
                        heartbeat: t.heartbeat,
                    }
                    .into(),
                )?;
                let vhost = self.options.vhost.clone();
                self.send(
                    0,
                    Connection::Open {
                        virtual_host: vhost.as_str().into(),
                    }
                    .into(),
                )?;
                self.state = State::AwaitingOpenOk;
                Ok(())
            }
            (State::AwaitingOpenOk, Connection::OpenOk) => {
                self.state = State::Open;
                self.timers.stop(Timer::Handshake);
                if self.tune.heartbeat > 0 {
                    self.timers
                        .set(Timer::HeartbeatSend, now + self.heartbeat_tick());
                    self.received(now);
                }
                let reconnect = self.ever_connected;
                self.ever_connected = true;
                self.push_event(Event::Connected {
                    reconnect,
                    tune: self.tune,
                });
                Ok(())
            }
            (State::Open | State::Closing, Connection::Blocked { reason }) => {
                if self.blocked_since.is_none() {
                    self.blocked_since = Some(now);
                    if let Some(limit) = self.options.blocked_timeout {
                        self.timers.set(Timer::Blocked, now + limit);
                    }
                }
                self.push_event(Event::Blocked {
                    reason: text(reason),
                });
                Ok(())
            }
            (State::Open | State::Closing, Connection::Unblocked) => {
                self.blocked_since = None;
                self.timers.stop(Timer::Blocked);
                self.push_event(Event::Unblocked);
                Ok(())
            }
            (State::Open, Connection::UpdateSecretOk) => Ok(()),
            (State::Closing, Connection::CloseOk) => {
                self.state = State::Closed;
                self.timers.stop_all();
                self.push_event(Event::Closed);
                Ok(())
            }
            _ => Err(self.fail_with_close(
                ReplyCode::CommandInvalid,
                Error::Unexpected {
                    what: "a connection method out of sequence",
                    channel: 0,
                    code: ReplyCode::CommandInvalid,
                },
            )),
        }
    }

    fn send_start_ok(&mut self) -> Result<(), Error> {
        let mut caps_buf = [0u8; 256];
        let mut caps = TableBuilder::new(&mut caps_buf);
        for c in CAPABILITIES {
            caps.insert(c, FieldValue::Bool(true));
        }
        let caps = caps.finish()?;
        let mut props_buf = [0u8; CLIENT_PROPERTIES_CAPACITY];
        let mut props = TableBuilder::new(&mut props_buf);
        props
            .insert_str("product", PRODUCT)
            .insert_str("version", env!("CARGO_PKG_VERSION"))
            .insert_str("platform", "Rust")
            .insert("capabilities", FieldValue::Table(caps));
        if !self.options.connection_name.is_empty() {
            let name = self.options.connection_name.clone();
            props.insert_str("connection_name", &name);
        }
        let client_properties: FieldTable<'_> = props.finish()?;
        let mut plain = [0u8; PLAIN_CAPACITY];
        let (mechanism, response): (&str, &[u8]) = match self.options.mechanism {
            Mechanism::Plain => {
                let mut w = Writer::new(&mut plain);
                w.u8(0);
                w.put(self.options.user.as_bytes());
                w.u8(0);
                w.put(self.options.password.as_bytes());
                ("PLAIN", w.into_written()?)
            }
            Mechanism::External => ("EXTERNAL", b""),
        };
        let start_ok = Connection::StartOk {
            client_properties,
            mechanism: mechanism.into(),
            response,
            locale: "en_US".into(),
        };
        self.send(0, start_ok.into())
    }

    /// Closes the connection gracefully: writes connection.close (200);
    /// [`Event::Closed`] follows the server's close-ok. Unconfirmed
    /// publishes stay unconfirmed: wait for confirms first.
    pub fn close(&mut self, now: Instant) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Error::NotConnected);
        }
        self.send(
            0,
            Connection::Close {
                reply_code: ReplyCode::Success.as_u16(),
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            }
            .into(),
        )?;
        self.state = State::Closing;
        // The close handshake gets the handshake timeout.
        self.timers.set(
            Timer::Handshake,
            now + Duration::from_millis(self.options.handshake_timeout.as_millis()),
        );
        Ok(())
    }
}
