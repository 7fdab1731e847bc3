//! NATS backend: core NATS for `ack=0` (subscription / queue group), and
//! JetStream for `ack=1` (a stream and a durable pull consumer created from
//! the URI's options: `stream=` (default `MOM`) stores the sender's default
//! routing key / the receiver's binding, each added to the stream's subjects
//! when it is not there yet (see `nats_stream`); pt2pt receivers share the durable
//! `queue=` (default: the receiver's name), pubsub receivers each get a
//! durable of their own, `<name>-<random>`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;

use super::envelope::{crc_hex, decimal, header, Incoming, Outgoing, Text};
use super::nats_stream::ensure_stream;
use super::receiver::{Acker, Delivery, ReceiverOptions};
use super::sender::SenderOptions;
use super::uri::{DataType, MomUri};
use super::Error;
use crate::nats::jetstream::{self, AckPolicy, ConsumerOptions, JsMessage, Messages, PullOptions};
use crate::nats::{Client, HeaderMap, Message, Subscriber};
use crate::outbox::{Outbox, OutboxOptions};

const DEFAULT_STREAM: &str = "MOM";
/// Storage kept for a sender's header block (the envelope's is ~190 bytes).
const BLOCK_ROOM: usize = 512;

async fn connect(uri: &MomUri, name: &str) -> Result<Client, Error> {
    let mut options = crate::nats::ConnectOptions::new().name(name);
    if let Some(tls) = uri.tls_config()? {
        options = options.tls(tls);
    }
    Ok(options.connect(uri.backend_urls()).await?)
}

/// Writes the envelope's header block into `buf` (reused: once the
/// previous message's block is dropped, `reserve` takes its storage back,
/// so a send allocates nothing here) and hands it over as a [`HeaderMap`].
/// The block is written directly and marked checked (the core does not
/// check it again before `HPUB`): the names are constants, the values ours
/// (hex, decimal) or the caller's strings (routing key, content
/// type/encoding, message id), which are refused here when they hold CR or LF, as the core's `HeaderWriter`
/// would (`headers_of_always_passes_the_full_check`).
fn headers_of(buf: &mut BytesMut, m: &Outgoing<'_>, ack: bool) -> Result<HeaderMap, Error> {
    let crc = crc_hex(m.crc());
    let mut digits = [0u8; 20];
    let ts = decimal(m.timestamp_ms, &mut digits);
    let fields = [
        (header::NAME, m.name),
        (header::ID, &*m.id),
        (header::TIMESTAMP, ts),
        (
            header::CRC32C,
            std::str::from_utf8(&crc).unwrap_or_default(),
        ),
        (header::CONTENT_TYPE, m.content_type),
        (header::CONTENT_ENCODING, m.content_encoding),
        (header::COMPRESSION, m.compression.name().unwrap_or("")),
        // JetStream drops a resend with the same id in its duplicate window.
        ("Nats-Msg-Id", if ack { &*m.id } else { "" }),
    ];
    let caller = [m.name, m.content_type, m.content_encoding, &*m.id];
    if caller
        .iter()
        .any(|v| v.bytes().any(|b| b == b'\r' || b == b'\n'))
    {
        return Err(Error::Nats(crate::nats::Error::Protocol(
            courier_core::nats::HeaderError::InvalidValue.into(),
        )));
    }
    let present = |(n, v): &&(&str, &str)| {
        !v.is_empty() || !(*n == header::COMPRESSION || *n == "Nats-Msg-Id")
    };
    let need = 12
        + fields
            .iter()
            .filter(present)
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    buf.clear();
    // Room for a larger block next time (a longer key, compression) so
    // the storage taken back keeps fitting.
    buf.reserve(need.max(BLOCK_ROOM));
    buf.extend_from_slice(b"NATS/1.0\r\n");
    for (n, v) in fields.iter().filter(present) {
        buf.extend_from_slice(n.as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(v.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    Ok(HeaderMap::from_checked_raw(buf.split().freeze()))
}

fn incoming(h: Option<&HeaderMap>) -> Incoming {
    // One pass over the header block's bytes (the connection checked its
    // framing when it arrived; `HeaderMap::iter` would check every line
    // again and split with the generic substring searcher). The envelope's
    // names all differ in length, so the length picks the one to compare.
    // Values are views into the block, not copies; a line that is not
    // `Name: Value` is skipped, as the core's reader does.
    let mut inc = Incoming::default();
    let Some(h) = h else { return inc };
    let raw = h.as_bytes();
    let Some(first) = raw.iter().position(|&b| b == b'\n') else {
        return inc;
    };
    let mut rest = raw.get(first + 1..).unwrap_or_default();
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        let Ok(value) = std::str::from_utf8(line[colon + 1..].trim_ascii()) else {
            continue;
        };
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let v = || Some(Text::in_header(h, value));
        match name.len() {
            8 if is(header::NAME) => inc.name = v(),
            6 if is(header::ID) => inc.id = v(),
            13 if is(header::TIMESTAMP) => inc.timestamp_ms = value.parse().ok(),
            10 if is(header::CRC32C) => inc.crc = v(),
            12 if is(header::CONTENT_TYPE) => inc.content_type = v(),
            16 if is(header::CONTENT_ENCODING) => inc.content_encoding = v(),
            15 if is(header::COMPRESSION) => inc.compression = v(),
            _ => {}
        }
    }
    inc
}

pub(crate) struct NatsSender {
    client: Client,
    ack: bool,
    /// `ack=1`: the JetStream stream the sender's subjects are added to.
    stream: String,
    /// The header block's storage, reused from message to message.
    headers: RefCell<BytesMut>,
    /// `outbox=DIR` (needs `ack=1`): every envelope, header block
    /// included, is spooled on disk first, then published to JetStream and
    /// retried until a PubAck (replayed after a restart).
    outbox: Option<(Outbox, String)>,
    /// Routing keys the stream is known to store (the outbox path adds a
    /// new key before spooling: a spooled message no stream stores would
    /// be retried forever).
    stored: RefCell<HashSet<String>>,
}

impl NatsSender {
    pub async fn connect(uri: &MomUri, options: &SenderOptions) -> Result<Self, Error> {
        let client = connect(uri, "courier-mom-sender").await?;
        if uri.ack {
            let key = options.routing_key.as_deref().ok_or_else(|| {
                Error::Unsupported(
                    "a NATS ack=1 sender needs a default routing key: the JetStream stream stores it"
                        .into(),
                )
            })?;
            ensure_stream(
                &client,
                uri.stream.as_deref().unwrap_or(DEFAULT_STREAM),
                key,
            )
            .await?;
        }
        let outbox = match &uri.outbox {
            // `Sender::connect` refused an outbox without ack=1.
            Some(dir) if uri.ack => {
                let js = jetstream::new(client.clone());
                let (outbox, recovery) = Outbox::jetstream(js, OutboxOptions::new(dir)).await?;
                if recovery.replayed > 0 || !recovery.corrupt.is_empty() {
                    log::info!(
                        "mom: outbox {dir}: replaying {} messages, {} corrupt records skipped",
                        recovery.replayed,
                        recovery.corrupt.len()
                    );
                }
                Some((outbox, dir.clone()))
            }
            _ => None,
        };
        let stored = options.routing_key.iter().cloned().collect();
        Ok(NatsSender {
            client,
            ack: uri.ack,
            stream: uri.stream.as_deref().unwrap_or(DEFAULT_STREAM).to_string(),
            headers: RefCell::new(BytesMut::new()),
            outbox,
            stored: RefCell::new(stored),
        })
    }

    pub async fn send(&self, m: &Outgoing<'_>, timeout: Duration) -> Result<(), Error> {
        if let Some((outbox, _)) = &self.outbox {
            if !self.stored.borrow().contains(m.name) {
                ensure_stream(&self.client, &self.stream, m.name).await?;
                self.stored.borrow_mut().insert(m.name.to_string());
            }
            let h = headers_of(&mut self.headers.borrow_mut(), m, true)?;
            outbox
                .publish_with_headers(m.name, Some(&m.id), h.as_bytes(), &m.body)
                .await?;
            return Ok(());
        }
        // Not held across an await: the block is a `Bytes` of its own.
        let h = headers_of(&mut self.headers.borrow_mut(), m, self.ack)?;
        if !self.ack {
            self.client
                .publish_with_headers(m.name, &h, &m.body)
                .await?;
            return Ok(());
        }
        // A JetStream publish is a request answered with a PubAck.
        let request = || self.client.request_with(m.name, Some(&h), &m.body, timeout);
        let reply = match request().await {
            // No stream stores this routing key (not the sender's default
            // one): add it to the sender's stream, then publish again (the
            // Nats-Msg-Id makes a double store impossible).
            Err(crate::nats::Error::NoResponders { .. }) => {
                ensure_stream(&self.client, &self.stream, m.name).await?;
                request().await?
            }
            r => r?,
        };
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            Error::Unsupported(format!("JetStream answered with something not JSON: {e}"))
        })?;
        if let Some(err) = v.get("error") {
            return Err(Error::Unsupported(format!(
                "JetStream refused the message on {:?}: {err}",
                m.name
            )));
        }
        Ok(())
    }

    /// Stops; with an outbox, waits up to `deadline` for JetStream to
    /// confirm every spooled message and reports those it did not.
    pub async fn stop(&self, name: &str, deadline: Duration) -> Result<(), Error> {
        let mut res = Ok(());
        if let Some((outbox, dir)) = &self.outbox {
            let report = outbox.stop(deadline).await;
            if report.remaining > 0 {
                res = Err(Error::Unconfirmed {
                    name: name.to_string(),
                    remaining: report.remaining,
                    spool: dir.clone(),
                });
            }
        }
        // The broker may be gone (that is why messages are unconfirmed):
        // the spool's report answers, not the flush.
        let closed = async {
            self.client.flush().await?;
            self.client.close().await
        };
        match tokio::time::timeout(Duration::from_millis(500), closed).await {
            Ok(Err(e)) if res.is_ok() && self.outbox.is_none() => return Err(e.into()),
            _ => {}
        }
        res
    }
}

pub(crate) enum NatsReceiver {
    Core {
        client: Client,
        sub: Subscriber,
    },
    Js {
        client: Client,
        messages: Box<Messages>,
    },
}

impl NatsReceiver {
    pub async fn connect(name: &str, uri: &MomUri, o: &ReceiverOptions) -> Result<Self, Error> {
        let client = connect(uri, name).await?;
        let group = uri.queue.clone().unwrap_or_else(|| name.to_string());
        if !uri.ack {
            let sub = match uri.data_type {
                DataType::PubSub => client.subscribe(&o.binding).await?,
                DataType::Pt2Pt => client.queue_subscribe(&o.binding, &group).await?,
            };
            // The SUB is on the wire before the receiver is reported ready.
            client.flush().await?;
            return Ok(NatsReceiver::Core { client, sub });
        }
        let js = jetstream::new(client.clone());
        let stream = uri.stream.as_deref().unwrap_or(DEFAULT_STREAM);
        ensure_stream(&client, stream, &o.binding).await?;
        let durable = match uri.data_type {
            DataType::Pt2Pt => group,
            DataType::PubSub => format!("{name}-{:08x}", fastrand::u32(..)),
        };
        let mut copts = ConsumerOptions::durable(durable)
            .ack_policy(AckPolicy::Explicit)
            .ack_wait(Duration::from_secs(30))
            .filter_subject(o.binding.clone());
        if uri.data_type == DataType::PubSub {
            copts = copts
                .deliver(jetstream::Deliver::New)
                .inactive_threshold(Duration::from_secs(300));
        }
        let consumer = js.create_consumer(stream, &copts).await?;
        let messages = consumer
            .messages(PullOptions {
                batch: uri.max_in_flight.unwrap_or(100) as usize,
                ..PullOptions::default()
            })
            .await?;
        Ok(NatsReceiver::Js {
            client,
            messages: Box::new(messages),
        })
    }

    pub async fn next(&mut self) -> Result<Option<Delivery>, Error> {
        match self {
            NatsReceiver::Core { sub, .. } => {
                let Some(m): Option<Message> = sub.next().await else {
                    return Ok(None);
                };
                let env = incoming(m.headers()).open(m.subject(), &m.payload)?;
                Ok(Some(Delivery::new(env, Acker::None, 1)))
            }
            NatsReceiver::Js { messages, .. } => {
                let m: JsMessage = match messages.next().await {
                    None => return Ok(None),
                    Some(r) => r?,
                };
                match incoming(m.headers()).open(m.subject(), m.payload()) {
                    Ok(env) => {
                        let attempt = m.metadata().delivered as u32;
                        Ok(Some(Delivery::new(env, Acker::Js(m), attempt)))
                    }
                    Err(e) => {
                        // Reported, and never redelivered as good. Spawned:
                        // `next` must stay cancel-safe (receive may drop it).
                        crate::spawn(async move {
                            let _ = m.term().await;
                        });
                        Err(e)
                    }
                }
            }
        }
    }

    pub async fn stop(&mut self) {
        let client = match self {
            NatsReceiver::Core { client, sub } => {
                let _ = sub.unsubscribe().await;
                client
            }
            NatsReceiver::Js { client, .. } => client,
        };
        let _ = client.flush().await;
        let _ = client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mom::Compression;
    use std::borrow::Cow;

    fn msg(compression: Compression) -> Outgoing<'static> {
        Outgoing {
            name: "orders.eu",
            id: "0123456789abcdef0123456789abcdef".into(),
            timestamp_ms: 1_700_000_000_123,
            content_type: "application/json",
            content_encoding: "utf-8",
            compression,
            body: Cow::Borrowed(b"{\"a\":1}"),
        }
    }

    #[test]
    fn header_block_bytes_as_documented_and_buffer_reused() {
        let mut buf = BytesMut::new();
        let crc = format!("{:08x}", crc32c::crc32c(b"{\"a\":1}"));
        let expect = |extra: &str| {
            format!(
                "NATS/1.0\r\nMom-Name: orders.eu\r\nMom-Id: 0123456789abcdef0123456789abcdef\r\n\
                 Mom-Timestamp: 1700000000123\r\nMom-Crc32c: {crc}\r\n\
                 Content-Type: application/json\r\nContent-Encoding: utf-8\r\n{extra}\r\n"
            )
        };
        let h = headers_of(&mut buf, &msg(Compression::None), false).unwrap();
        assert_eq!(std::str::from_utf8(h.as_bytes()).unwrap(), expect(""));
        let first = h.as_bytes().as_ptr();
        drop(h);
        let h = headers_of(&mut buf, &msg(Compression::Zlib), true).unwrap();
        assert_eq!(
            std::str::from_utf8(h.as_bytes()).unwrap(),
            expect("Mom-Compression: zlib\r\nNats-Msg-Id: 0123456789abcdef0123456789abcdef\r\n")
        );
        // The same storage, taken back once the first block was dropped.
        assert_eq!(h.as_bytes().as_ptr(), first);
        // Read back through the receive path.
        let inc = incoming(Some(&h));
        assert_eq!(inc.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(inc.crc.as_deref(), Some(crc.as_str()));
    }

    #[test]
    fn incoming_reads_any_case_skips_odd_lines_and_matches_the_core_reader() {
        let block =
            "NATS/1.0\r\nmom-name:  a.b \r\nnocolon\r\nX-Other: 1\r\nMOM-CRC32C: 0000abcd\r\n\
                     Mom-Timestamp: 17\r\nContent-Type: text/plain\r\n\r\n";
        let h = HeaderMap::from_raw(bytes::Bytes::from(block));
        let inc = incoming(Some(&h));
        assert_eq!(inc.name.as_deref(), Some("a.b"));
        assert_eq!(inc.crc.as_deref(), Some("0000abcd"));
        assert_eq!(inc.timestamp_ms, Some(17));
        assert_eq!(inc.content_type.as_deref(), Some("text/plain"));
        assert!(inc.id.is_none() && inc.content_encoding.is_none() && inc.compression.is_none());
        // The same values as the core's reader gives.
        let core = courier_core::nats::headers::Headers::parse_received(block.as_bytes()).unwrap();
        assert_eq!(core.get("mom-name"), inc.name.as_deref());
        // The dispatch by length needs every name to have its own.
        let names = [
            header::NAME,
            header::ID,
            header::TIMESTAMP,
            header::CRC32C,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::COMPRESSION,
        ];
        let lens: std::collections::HashSet<_> = names.iter().map(|n| n.len()).collect();
        assert_eq!(lens.len(), names.len());
    }

    #[test]
    fn a_content_type_with_crlf_is_refused() {
        let mut buf = BytesMut::new();
        let mut m = msg(Compression::None);
        m.content_type = "text/plain\r\nEvil: 1";
        let e = headers_of(&mut buf, &m, false).unwrap_err();
        assert!(matches!(e, Error::Nats(_)), "{e}");
    }

    proptest::proptest! {
        /// The facade's block skips the core's re-check, so every block it
        /// writes must pass that check (or be refused before sending).
        #[test]
        fn headers_of_always_passes_the_full_check(
            name in "[ -~\r\n\u{e9}]{1,16}",
            content_type in "[ -~\r\n\t]{0,16}",
            content_encoding in "[ -~\r\n]{0,8}",
            id in "[ -~\r\n]{32}",
            zlib: bool,
            ack: bool,
        ) {
            let mut buf = BytesMut::new();
            let mut m = msg(if zlib { Compression::Zlib } else { Compression::None });
            m.name = &name;
            m.content_type = &content_type;
            m.content_encoding = &content_encoding;
            m.id = id.as_str().into();
            let bad = [&name, &content_type, &content_encoding, &id]
                .iter()
                .any(|v| v.contains(['\r', '\n']));
            match headers_of(&mut buf, &m, ack) {
                Ok(h) => {
                    proptest::prop_assert!(!bad);
                    proptest::prop_assert!(
                        courier_core::nats::headers::Headers::parse(h.as_bytes()).is_ok()
                    );
                    proptest::prop_assert!(h.is_checked());
                }
                Err(_) => proptest::prop_assert!(bad),
            }
        }
    }
}
