//! Class `connection` (10): the handshake, close, and RabbitMQ's
//! connection.blocked / unblocked / update-secret.

use crate::amqp::codec::{DecodeError, Reader, ShortStr, Writer};
use crate::amqp::table::FieldTable;

/// A method of class `connection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection<'a> {
    /// 10.10 server → client.
    Start {
        /// Major protocol version (0).
        version_major: u8,
        /// Minor protocol version (9).
        version_minor: u8,
        /// Server properties (product, version, capabilities).
        server_properties: FieldTable<'a>,
        /// Space-separated SASL mechanisms.
        mechanisms: &'a [u8],
        /// Space-separated locales.
        locales: &'a [u8],
    },
    /// 10.11 client → server.
    StartOk {
        /// Client properties (product, capabilities...).
        client_properties: FieldTable<'a>,
        /// Chosen SASL mechanism.
        mechanism: ShortStr<'a>,
        /// SASL response.
        response: &'a [u8],
        /// Chosen locale.
        locale: ShortStr<'a>,
    },
    /// 10.20 server → client.
    Secure {
        /// SASL challenge.
        challenge: &'a [u8],
    },
    /// 10.21 client → server.
    SecureOk {
        /// SASL response.
        response: &'a [u8],
    },
    /// 10.30 server → client; 10.31 (TuneOk) the client's answer.
    Tune {
        /// Highest channel number (0: no limit).
        channel_max: u16,
        /// Largest frame (0: no limit).
        frame_max: u32,
        /// Heartbeat interval in seconds (0: none).
        heartbeat: u16,
    },
    /// 10.31 client → server.
    TuneOk {
        /// Highest channel number.
        channel_max: u16,
        /// Largest frame.
        frame_max: u32,
        /// Heartbeat interval in seconds.
        heartbeat: u16,
    },
    /// 10.40 client → server.
    Open {
        /// Virtual host.
        virtual_host: ShortStr<'a>,
    },
    /// 10.41 server → client.
    OpenOk,
    /// 10.50 either way.
    Close {
        /// Reply code.
        reply_code: u16,
        /// Reply text.
        reply_text: ShortStr<'a>,
        /// Class of the method that failed (0: none).
        class_id: u16,
        /// Method that failed (0: none).
        method_id: u16,
    },
    /// 10.51 either way.
    CloseOk,
    /// 10.60 server → client (RabbitMQ): publishing is blocked.
    Blocked {
        /// Why (e.g. "low on memory").
        reason: ShortStr<'a>,
    },
    /// 10.61 server → client (RabbitMQ).
    Unblocked,
    /// 10.70 client → server (RabbitMQ): new credentials.
    UpdateSecret {
        /// The new secret.
        new_secret: &'a [u8],
        /// Why.
        reason: ShortStr<'a>,
    },
    /// 10.71 server → client.
    UpdateSecretOk,
}

impl<'a> Connection<'a> {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Connection::Start { .. } => 10,
            Connection::StartOk { .. } => 11,
            Connection::Secure { .. } => 20,
            Connection::SecureOk { .. } => 21,
            Connection::Tune { .. } => 30,
            Connection::TuneOk { .. } => 31,
            Connection::Open { .. } => 40,
            Connection::OpenOk => 41,
            Connection::Close { .. } => 50,
            Connection::CloseOk => 51,
            Connection::Blocked { .. } => 60,
            Connection::Unblocked => 61,
            Connection::UpdateSecret { .. } => 70,
            Connection::UpdateSecretOk => 71,
        }
    }

    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => Connection::Start {
                version_major: r.u8()?,
                version_minor: r.u8()?,
                server_properties: r.table()?,
                mechanisms: r.long_str()?,
                locales: r.long_str()?,
            },
            11 => Connection::StartOk {
                client_properties: r.table()?,
                mechanism: r.short_str()?,
                response: r.long_str()?,
                locale: r.short_str()?,
            },
            20 => Connection::Secure {
                challenge: r.long_str()?,
            },
            21 => Connection::SecureOk {
                response: r.long_str()?,
            },
            30 | 31 => {
                let (channel_max, frame_max, heartbeat) = (r.u16()?, r.u32()?, r.u16()?);
                if method == 30 {
                    Connection::Tune {
                        channel_max,
                        frame_max,
                        heartbeat,
                    }
                } else {
                    Connection::TuneOk {
                        channel_max,
                        frame_max,
                        heartbeat,
                    }
                }
            }
            40 => {
                let virtual_host = r.short_str()?;
                let _capabilities = r.short_str()?;
                let _insist = r.bit()?;
                Connection::Open { virtual_host }
            }
            41 => {
                let _known_hosts = r.short_str()?;
                Connection::OpenOk
            }
            50 => Connection::Close {
                reply_code: r.u16()?,
                reply_text: r.short_str()?,
                class_id: r.u16()?,
                method_id: r.u16()?,
            },
            51 => Connection::CloseOk,
            60 => Connection::Blocked {
                reason: r.short_str()?,
            },
            61 => Connection::Unblocked,
            70 => Connection::UpdateSecret {
                new_secret: r.long_str()?,
                reason: r.short_str()?,
            },
            71 => Connection::UpdateSecretOk,
            method => return Err(DecodeError::UnknownMethod { class: 10, method }),
        })
    }

    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            Connection::Start {
                version_major,
                version_minor,
                server_properties,
                mechanisms,
                locales,
            } => {
                w.put(&[version_major, version_minor]);
                w.table(server_properties);
                w.long_str(mechanisms);
                w.long_str(locales);
            }
            Connection::StartOk {
                client_properties,
                mechanism,
                response,
                locale,
            } => {
                w.table(client_properties);
                w.short_str(mechanism);
                w.long_str(response);
                w.short_str(locale);
            }
            Connection::Secure { challenge: s } | Connection::SecureOk { response: s } => {
                w.long_str(s)
            }
            Connection::Tune {
                channel_max,
                frame_max,
                heartbeat,
            }
            | Connection::TuneOk {
                channel_max,
                frame_max,
                heartbeat,
            } => {
                w.u16(channel_max);
                w.u32(frame_max);
                w.u16(heartbeat);
            }
            Connection::Open { virtual_host } => {
                w.short_str(virtual_host);
                w.short_str(ShortStr::new(""));
                w.bits(&[false]);
            }
            Connection::OpenOk => w.short_str(ShortStr::new("")),
            Connection::Close {
                reply_code,
                reply_text,
                class_id,
                method_id,
            } => {
                w.u16(reply_code);
                w.short_str(reply_text);
                w.u16(class_id);
                w.u16(method_id);
            }
            Connection::Blocked { reason } => w.short_str(reason),
            Connection::UpdateSecret { new_secret, reason } => {
                w.long_str(new_secret);
                w.short_str(reason);
            }
            Connection::CloseOk | Connection::Unblocked | Connection::UpdateSecretOk => {}
        }
    }
}
