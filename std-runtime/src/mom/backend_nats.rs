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
    // One pass over the header block: line ends found eight bytes at a
    // time, then the ':' in the (short) name (the connection checked the
    // block's framing when it arrived; `HeaderMap::iter` would check every
    // line again and trim with the generic Unicode trim). The envelope's names
    // all differ in length, so the length picks the one to compare. Values
    // are views into the block, not copies; a line that is not
    // `Name: Value` is skipped, as the core's reader does.
    let mut inc = Incoming::default();
    let Some(h) = h else { return inc };
    // ONE UTF-8 check for the whole block instead of one per value. The
    // core's `Headers::parse_received` already checked, when the HMSG
    // arrived, that the block's fields are UTF-8, so this does not fail
    // for a received block; it is kept (rather than trusting the bytes
    // without proof, which needs `unsafe`, forbidden here) because the
    // `&str` it returns is what lets the loop below slice values at the
    // ASCII ':' / CR / LF positions (always char boundaries) with no
    // further check. A block that is not UTF-8 yields no fields, so the
    // message is reported as not an envelope (no checksum), never passed on.
    let Ok(text) = std::str::from_utf8(h.as_bytes()) else {
        return inc;
    };
    let bytes = text.as_bytes();
    let mut timestamp_seen = false;
    // Lines end with CRLF (a bare LF stays inside its line, as in the
    // core's reader); the first is the version line.
    let Some(mut line) = crlf_end(bytes, 0) else {
        return inc;
    };
    while let Some(next) = crlf_end(bytes, line) {
        let end = next - 2; // the CR
                            // Names are short: the ':' is found after a few bytes.
        if let Some(colon) = bytes[line..end].iter().position(|&b| b == b':') {
            let colon = line + colon;
            let (name, value) = (line..colon, colon + 1..end);
            field(&mut inc, &mut timestamp_seen, h, text, name, value);
        }
        line = next;
    }
    inc
}

/// The index just after the first CRLF at or after `from`.
fn crlf_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let lf = find_lf(bytes, at)?;
        if lf > from && bytes[lf - 1] == b'\r' {
            return Some(lf + 1);
        }
        at = lf + 1;
    }
}

/// The first `\n` at or after `from`: eight bytes per step (the SWAR
/// zero-byte test; its lowest flagged byte is always exact), since most
/// of a header block is values that need no other look.
fn find_lf(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LFS: u64 = ONES * b'\n' as u64;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ LFS;
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    rest.iter().position(|&b| b == b'\n').map(|p| i + p)
}

/// `s.trim_end()` / `s.trim()` as the core's reader trims (Unicode
/// whitespace), cheaply: the ASCII trim gives the same answer unless the
/// byte it stops at is non-ASCII or a vertical tab (whitespace to Unicode,
/// not to `trim_ascii`).
fn unicode_trim(s: &str, start: bool) -> &str {
    let t = if start {
        s.trim_ascii()
    } else {
        s.trim_ascii_end()
    };
    let plain = |b: Option<&u8>| b.is_none_or(|&b| b < 0x80 && b != 0x0b);
    if plain(t.as_bytes().first()) && plain(t.as_bytes().last()) {
        t
    } else if start {
        s.trim()
    } else {
        s.trim_end()
    }
}

/// One `name: value` line of a received block: `name` and `value` are
/// byte ranges of `text` (the block) ending at ASCII bytes.
fn field(
    inc: &mut Incoming,
    timestamp_seen: &mut bool,
    h: &HeaderMap,
    text: &str,
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
) {
    // Trimmed as the core's reader trims (`trim_end` / `trim`).
    let name = unicode_trim(&text[name], false).as_bytes();
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let raw = &text[value.clone()];
    let trimmed = unicode_trim(raw, true);
    // Where the trimmed value sits in the block.
    let start = value.start + (trimmed.as_ptr() as usize - raw.as_ptr() as usize);
    // The first value of a name counts, as with `HeaderMap::get`.
    let set = |slot: &mut Option<Text>| {
        if slot.is_none() {
            *slot = Some(Text::in_block(h, start..start + trimmed.len()));
        }
    };
    match name.len() {
        8 if is(header::NAME) => set(&mut inc.name),
        6 if is(header::ID) => set(&mut inc.id),
        13 if is(header::TIMESTAMP) && !*timestamp_seen => {
            *timestamp_seen = true;
            inc.timestamp_ms = trimmed.parse().ok();
        }
        10 if is(header::CRC32C) => set(&mut inc.crc),
        12 if is(header::CONTENT_TYPE) => set(&mut inc.content_type),
        16 if is(header::CONTENT_ENCODING) => set(&mut inc.content_encoding),
        15 if is(header::COMPRESSION) => set(&mut inc.compression),
        _ => {}
    }
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
        /// The one-pass reader gives, for every envelope header, what the
        /// core's reader (`Headers::parse_received(..).get`) gives on any
        /// received block: names in any case, repeated names (the first
        /// counts), lines without ':' , values with ':', padding, bare LF
        /// and non-ASCII text.
        #[test]
        fn incoming_agrees_with_the_core_reader(
            lines in proptest::collection::vec((
                proptest::prop_oneof![
                    proptest::strategy::Strategy::prop_map(
                        proptest::sample::select(vec![
                            "Mom-Name", "mom-id", "MOM-TIMESTAMP", "Mom-Crc32c",
                            "content-type", "Content-Encoding", "Mom-Compression", "X-Other",
                        ]),
                        String::from,
                    ),
                    "[ -~\u{e9}\n]{0,10}",
                ],
                proptest::option::of(proptest::prop_oneof![
                    "[0-9]{1,5}",
                    "[ -~\t\u{b}\u{e9}\u{a0}\n]{0,12}",
                ]),
                "[ \t]{0,2}",
            ), 0..10),
        ) {
            let mut block = String::from("NATS/1.0\r\n");
            for (name, value, pad) in &lines {
                block.push_str(name);
                if let Some(v) = value {
                    block.push_str(&format!("{pad}:{pad}{v}{pad}"));
                }
                block.push_str("\r\n");
            }
            block.push_str("\r\n");
            let core = courier_core::nats::headers::Headers::parse_received(block.as_bytes()).unwrap();
            let h = HeaderMap::from_raw(bytes::Bytes::from(block.clone()));
            let inc = incoming(Some(&h));
            let texts = [
                (header::NAME, &inc.name),
                (header::ID, &inc.id),
                (header::CRC32C, &inc.crc),
                (header::CONTENT_TYPE, &inc.content_type),
                (header::CONTENT_ENCODING, &inc.content_encoding),
                (header::COMPRESSION, &inc.compression),
            ];
            for (name, got) in texts {
                proptest::prop_assert_eq!(got.as_deref(), core.get(name), "{} in {:?}", name, block);
            }
            proptest::prop_assert_eq!(
                inc.timestamp_ms,
                core.get(header::TIMESTAMP).and_then(|v| v.parse().ok())
            );
        }

        /// The eight-bytes-at-a-time search finds the first LF, as a
        /// byte-by-byte search does, from any start.
        #[test]
        fn find_lf_is_the_first_lf(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![proptest::prelude::Just(b'\n'), proptest::prelude::any::<u8>()],
                0..40,
            ),
            from in 0usize..45,
        ) {
            let slow = bytes
                .get(from..)
                .and_then(|r| r.iter().position(|&b| b == b'\n'))
                .map(|p| from + p);
            proptest::prop_assert_eq!(find_lf(&bytes, from), slow);
        }

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
