//! How received messages are printed: for people, raw payloads, or one
//! JSON object a line.

use std::io::{self, Write};

use base64::Engine as _;
use clap::ValueEnum;
use std::collections::BTreeMap;

use serde::Serialize;

/// Output format of received messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `[#n] received on "subject"`, headers, the payload, a blank line.
    #[default]
    Human,
    /// The payload alone, one message a line.
    Raw,
    /// One JSON object a line (payload as text if UTF-8, else base64).
    Json,
}

/// A payload in JSON: `"payload"` when it is UTF-8, otherwise
/// `"payload_base64"`, so binary payloads survive the trip through JSON.
#[derive(Serialize)]
pub struct JsonPayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

impl<'a> JsonPayload<'a> {
    /// The JSON fields of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => JsonPayload {
                payload: Some(text),
                payload_base64: None,
            },
            Err(_) => JsonPayload {
                payload: None,
                payload_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// One NATS message as one JSON object, fields in this order.
#[derive(Serialize)]
struct NatsJson<'a> {
    subject: &'a str,
    reply: Option<&'a str>,
    /// Name -> every value, in order (a name may repeat).
    headers: BTreeMap<&'a str, Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(flatten)]
    payload: JsonPayload<'a>,
}

/// The JSON line of a NATS message.
pub fn nats_json(msg: &courier::nats::Message) -> String {
    let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    if let Some(h) = msg.headers() {
        for (name, value) in h.iter() {
            headers.entry(name).or_default().push(value);
        }
    }
    to_line(&NatsJson {
        subject: msg.subject(),
        reply: msg.reply(),
        headers,
        status: msg.status(),
        payload: JsonPayload::new(&msg.payload),
    })
}

/// One NSQ message as the tail prints it.
#[derive(Serialize)]
pub struct NsqDelivery<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The channel it was read on.
    pub channel: &'a str,
    /// nsqd's 16-byte message id (ASCII hex in practice).
    #[serde(serialize_with = "lossy")]
    pub id: &'a [u8],
    /// Delivery attempts so far.
    pub attempts: u16,
    /// Publish time, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The body.
    #[serde(flatten)]
    pub body: JsonPayload<'a>,
}

fn lossy<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// The JSON line of an NSQ message.
pub fn nsq_json(m: &NsqDelivery<'_>) -> String {
    to_line(m)
}

fn to_line<T: Serialize>(value: &T) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Writes messages to stdout in the chosen format, numbering them.
pub struct Printer {
    format: Format,
    seq: u64,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: Format) -> Self {
        Printer { format, seq: 0 }
    }

    /// Prints a NATS message.
    pub fn nats(&mut self, msg: &courier::nats::Message) -> io::Result<()> {
        self.seq += 1;
        let mut out = io::stdout().lock();
        match self.format {
            Format::Raw => raw(&mut out, &msg.payload),
            Format::Json => writeln!(out, "{}", nats_json(msg)),
            Format::Human => {
                write!(out, "[#{}] received on {:?}", self.seq, msg.subject())?;
                if let Some(reply) = msg.reply() {
                    write!(out, " with reply {reply:?}")?;
                }
                writeln!(out)?;
                if let Some(h) = msg.headers() {
                    if let Some(status) = h.status() {
                        writeln!(out, "status: {status}")?;
                    }
                    for (name, value) in h.iter() {
                        writeln!(out, "{name}: {value}")?;
                    }
                }
                out.write_all(&msg.payload)?;
                writeln!(out, "\n")
            }
        }
    }

    /// Prints an NSQ message.
    pub fn nsq(&mut self, m: &NsqDelivery<'_>, body: &[u8]) -> io::Result<()> {
        self.seq += 1;
        let mut out = io::stdout().lock();
        match self.format {
            Format::Raw => raw(&mut out, body),
            Format::Json => writeln!(out, "{}", nsq_json(m)),
            Format::Human => {
                writeln!(
                    out,
                    "[#{}] {}/{} id {} attempt {}",
                    self.seq,
                    m.topic,
                    m.channel,
                    String::from_utf8_lossy(m.id),
                    m.attempts
                )?;
                out.write_all(body)?;
                writeln!(out, "\n")
            }
        }
    }
}

/// The payload, then a newline unless it already ends with one.
pub fn raw(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    out.write_all(payload)?;
    if !payload.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_payloads_become_base64() {
        assert_eq!(to_line(&JsonPayload::new(b"hi")), r#"{"payload":"hi"}"#);
        assert_eq!(
            to_line(&JsonPayload::new(&[0xff, 0x00])),
            r#"{"payload_base64":"/wA="}"#
        );
    }

    #[test]
    fn nsq_json_has_every_field_in_order() {
        let line = nsq_json(&NsqDelivery {
            topic: "t",
            channel: "c",
            id: b"0123456789abcdef",
            attempts: 2,
            timestamp_ns: 7,
            body: JsonPayload::new(b"x"),
        });
        assert_eq!(
            line,
            r#"{"topic":"t","channel":"c","id":"0123456789abcdef","attempts":2,"timestamp_ns":7,"payload":"x"}"#
        );
    }
}
