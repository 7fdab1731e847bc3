//! A scripted RabbitMQ for the session's tests: encodes what a server
//! sends, and drives a session through the handshake.

use std::string::String;
use std::vec::Vec;

use super::{Delivery, DeliveryKind, Event, Options, Session};
use crate::amqp::codec::Writer;
use crate::amqp::frame::write_header;
use crate::amqp::ids::{FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD};
use crate::amqp::methods::{Basic, Channel, Connection, Method};
use crate::amqp::properties::{ContentHeader, Properties};
use crate::amqp::table::{FieldTable, FieldValue, TableBuilder};
use crate::time::Instant;

pub type TestSession = Session<Vec<u8>, 8, 2>;

pub fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = std::vec![0u8; 7];
    write_header(&mut out, kind, channel, payload.len());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
    out
}

pub fn encode<T>(f: impl Fn(&mut Writer<'_>) -> T) -> Vec<u8> {
    let mut c = Writer::counting();
    f(&mut c);
    let mut out = std::vec![0u8; c.finish().unwrap()];
    let mut w = Writer::new(&mut out);
    f(&mut w);
    w.finish().unwrap();
    out
}

pub fn method(channel: u16, m: impl Into<Method<'static>>) -> Vec<u8> {
    let m = m.into();
    frame(FRAME_METHOD, channel, &encode(|w| m.write(w)))
}

/// A content method, its header and the body split at `frame_max`.
pub fn content(
    channel: u16,
    m: Basic<'_>,
    props: Properties<'_>,
    body: &[u8],
    frame_max: usize,
) -> Vec<u8> {
    let m = Method::Basic(m);
    let mut out = frame(FRAME_METHOD, channel, &encode(|w| m.write(w)));
    let header = ContentHeader::basic(body.len() as u64, props);
    out.extend(frame(FRAME_HEADER, channel, &encode(|w| header.write(w))));
    for chunk in body.chunks(frame_max - 8) {
        out.extend(frame(FRAME_BODY, channel, chunk));
    }
    out
}

pub fn deliver(channel: u16, tag: u64, body: &[u8]) -> Vec<u8> {
    content(
        channel,
        Basic::Deliver {
            consumer_tag: "ctag".into(),
            delivery_tag: tag,
            redelivered: false,
            exchange: "ex".into(),
            routing_key: "rk".into(),
        },
        Properties::default().content_type("text/plain"),
        body,
        131_072,
    )
}

pub fn start() -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut b = TableBuilder::new(&mut buf);
    b.insert_str("product", "RabbitMQ");
    b.insert("capabilities", FieldValue::Table(FieldTable::EMPTY));
    let props = b.finish().unwrap();
    let m = Method::Connection(Connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: b"AMQPLAIN PLAIN",
        locales: b"en_US",
    });
    frame(FRAME_METHOD, 0, &encode(|w| m.write(w)))
}

pub fn tune(frame_max: u32, heartbeat: u16) -> Vec<u8> {
    method(
        0,
        Connection::Tune {
            channel_max: 2047,
            frame_max,
            heartbeat,
        },
    )
}

/// What the server sends from connection.start to a channel 1 open-ok.
pub fn greeting(frame_max: u32, heartbeat: u16) -> Vec<u8> {
    let mut out = start();
    out.extend(tune(frame_max, heartbeat));
    out.extend(method(0, Connection::OpenOk));
    out
}

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Feeds all of `input` (which must parse completely), collecting
/// deliveries as text lines and draining events after every frame.
pub fn feed(s: &mut TestSession, input: &[u8], now: Instant) -> (Vec<String>, Vec<Event>) {
    let mut log = Vec::new();
    let mut events = Vec::new();
    let mut at = 0;
    loop {
        let (used, d) = s.handle_input(&input[at..], now).unwrap();
        if let Some(d) = d {
            log.push(describe(&d));
        }
        events.extend(core::iter::from_fn(|| s.poll_event()));
        if used == 0 {
            break;
        }
        at += used;
    }
    assert_eq!(at, input.len(), "input left unparsed");
    (log, events)
}

pub fn describe(d: &Delivery<'_>) -> String {
    let mut body = Vec::new();
    for c in d.body.chunks() {
        body.extend_from_slice(c);
    }
    let kind = match d.kind {
        DeliveryKind::Deliver {
            delivery_tag,
            redelivered,
            ..
        } => std::format!("deliver {delivery_tag} {redelivered}"),
        DeliveryKind::Return { reply_code, .. } => std::format!("return {}", reply_code.as_u16()),
        DeliveryKind::Get { delivery_tag, .. } => std::format!("get {delivery_tag}"),
    };
    std::format!(
        "ch{} {kind} {}/{} {:?} len={} sum={}",
        d.channel,
        d.exchange,
        d.routing_key,
        d.properties.content_type,
        body.len(),
        body.iter().map(|b| *b as u64).sum::<u64>()
    )
}

/// A session through the handshake (heartbeat `hb`) with channel 1 open.
pub fn open_session(frame_max: u32, hb: u16) -> TestSession {
    let options = Options {
        heartbeat: hb,
        ..Options::default()
    };
    let mut s = TestSession::new(options, std::vec![0u8; 1 << 20]);
    s.start(t(0));
    feed(&mut s, &greeting(frame_max, hb), t(1));
    let ch = s.open_channel().unwrap();
    assert_eq!(ch, 1);
    feed(&mut s, &method(1, Channel::OpenOk), t(2));
    let n = s.transmit().len();
    s.transmitted(n);
    s
}
