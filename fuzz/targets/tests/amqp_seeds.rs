//! Writes the hand-built AMQP seeds into `fuzz/corpus/amqp_frame/` and
//! `fuzz/corpus/amqp_session/` (next to the RabbitMQ 3.10.8 capture):
//!
//!   cargo test -p courier-fuzz-targets --test amqp_seeds -- --ignored
//!
//! A session seed is `[script length u16 LE][script][server bytes]` (see
//! `split_script`); the script is written the way `arbitrary` reads the
//! target's `Setup` and `Op`s, so each seed walks a real conversation:
//! handshake, channel, confirms, declare, consume, publish, deliveries,
//! acks, flow, blocking, channel and connection close.

use std::path::{Path, PathBuf};

use courier_core::amqp::codec::Writer;
use courier_core::amqp::frame::write_header;
use courier_core::amqp::methods::{Basic, Channel, Confirm, Connection, Method, Queue};
use courier_core::amqp::properties::{ContentHeader, Properties};
use courier_core::amqp::{FieldTable, FieldValue, TableBuilder};

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const HEARTBEAT: [u8; 8] = [8, 0, 0, 0, 0, 0, 0, 0xCE];

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 7];
    write_header(&mut out, kind, channel, payload.len());
    out.extend_from_slice(payload);
    out.push(0xCE);
    out
}

fn encode(f: impl Fn(&mut Writer<'_>)) -> Vec<u8> {
    let mut c = Writer::counting();
    f(&mut c);
    let mut out = vec![0u8; c.finish().unwrap()];
    let mut w = Writer::new(&mut out);
    f(&mut w);
    w.finish().unwrap();
    out
}

fn method<'a>(channel: u16, m: impl Into<Method<'a>>) -> Vec<u8> {
    let m = m.into();
    frame(FRAME_METHOD, channel, &encode(|w| m.write(w)))
}

fn content(channel: u16, m: Basic<'_>, props: Properties<'_>, body: &[u8], max: usize) -> Vec<u8> {
    let mut out = method(channel, m);
    let header = ContentHeader::basic(body.len() as u64, props);
    out.extend(frame(FRAME_HEADER, channel, &encode(|w| header.write(w))));
    for chunk in body.chunks(max) {
        out.extend(frame(FRAME_BODY, channel, chunk));
    }
    out
}

fn deliver(channel: u16, tag: u64, body: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut b = TableBuilder::new(&mut buf);
    b.insert_str("x-seed", "yes");
    b.insert("x-n", FieldValue::I64(-3));
    let headers = b.finish().unwrap();
    content(
        channel,
        Basic::Deliver {
            consumer_tag: "ctag".into(),
            delivery_tag: tag,
            redelivered: tag.is_multiple_of(2),
            exchange: "ex".into(),
            routing_key: "rk".into(),
        },
        Properties::default()
            .content_type("text/plain")
            .headers(headers)
            .correlation_id("c1")
            .timestamp(1_700_000_000),
        body,
        100,
    )
}

fn start() -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut b = TableBuilder::new(&mut buf);
    b.insert_str("product", "RabbitMQ");
    b.insert("capabilities", FieldValue::Table(FieldTable::EMPTY));
    let props = b.finish().unwrap();
    method(
        0,
        Connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: props,
            mechanisms: b"AMQPLAIN PLAIN",
            locales: b"en_US",
        },
    )
}

fn greeting(frame_max: u32, heartbeat: u16) -> Vec<u8> {
    let mut out = start();
    out.extend(method(
        0,
        Connection::Tune {
            channel_max: 2047,
            frame_max,
            heartbeat,
        },
    ));
    out.extend(method(0, Connection::OpenOk));
    out
}

/// The `Op` variants in declaration order (see `amqp_session::Op`).
#[derive(Clone, Copy)]
#[allow(dead_code)]
enum Op {
    Input(u16),
    Transmit(u16),
    TransmitAll,
    Advance(u16),
    AdvanceSecs(u8),
    OpenChannel,
    CloseChannel(u8),
    ConfirmSelect(u8),
    DeclareQueue(u8, u8, bool),
    DeclareExchange(u8, u8),
    Qos(u8, u16),
    Consume(u8, u8, bool),
    Cancel(u8, u8),
    Publish(u8, u16, bool, bool),
    Ack(u8, u8, bool),
    Nack(u8, u8, bool, bool),
    Reject(u8, u8),
    Close,
    Reset,
}
const OPS: u64 = 19;

/// The u32 that `arbitrary` maps to variant `i` of `OPS`.
fn variant(out: &mut Vec<u8>, i: u64) {
    let v = (i << 32).div_ceil(OPS);
    assert_eq!((v * OPS) >> 32, i);
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

fn script(setup: [u8; 4], ops: &[Op]) -> Vec<u8> {
    let mut s = setup.to_vec();
    let b = |x: bool| u8::from(x);
    for op in ops {
        match *op {
            Op::Input(n) => {
                variant(&mut s, 0);
                s.extend(n.to_le_bytes());
            }
            Op::Transmit(n) => {
                variant(&mut s, 1);
                s.extend(n.to_le_bytes());
            }
            Op::TransmitAll => variant(&mut s, 2),
            Op::Advance(ms) => {
                variant(&mut s, 3);
                s.extend(ms.to_le_bytes());
            }
            Op::AdvanceSecs(x) => {
                variant(&mut s, 4);
                s.push(x);
            }
            Op::OpenChannel => variant(&mut s, 5),
            Op::CloseChannel(c) => {
                variant(&mut s, 6);
                s.push(c);
            }
            Op::ConfirmSelect(c) => {
                variant(&mut s, 7);
                s.push(c);
            }
            Op::DeclareQueue(c, n, p) => {
                variant(&mut s, 8);
                s.extend([c, n, b(p)]);
            }
            Op::DeclareExchange(c, n) => {
                variant(&mut s, 9);
                s.extend([c, n]);
            }
            Op::Qos(c, p) => {
                variant(&mut s, 10);
                s.push(c);
                s.extend(p.to_le_bytes());
            }
            Op::Consume(c, q, a) => {
                variant(&mut s, 11);
                s.extend([c, q, b(a)]);
            }
            Op::Cancel(c, t) => {
                variant(&mut s, 12);
                s.extend([c, t]);
            }
            Op::Publish(c, len, m, p) => {
                variant(&mut s, 13);
                s.push(c);
                s.extend(len.to_le_bytes());
                s.extend([b(m), b(p)]);
            }
            Op::Ack(c, t, m) => {
                variant(&mut s, 14);
                s.extend([c, t, b(m)]);
            }
            Op::Nack(c, t, m, r) => {
                variant(&mut s, 15);
                s.extend([c, t, b(m), b(r)]);
            }
            Op::Reject(c, t) => {
                variant(&mut s, 16);
                s.extend([c, t]);
            }
            Op::Close => variant(&mut s, 17),
            Op::Reset => variant(&mut s, 18),
        }
    }
    s
}

/// A conversation: client ops, with `Recv(bytes)` standing for "the server
/// sends these now" (an `Input` of exactly their length).
enum Step {
    Do(Op),
    Recv(Vec<u8>),
}

fn seed(setup: [u8; 4], steps: Vec<Step>) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut server = Vec::new();
    for step in steps {
        match step {
            Step::Do(op) => ops.push(op),
            Step::Recv(bytes) => {
                ops.push(Op::Input(bytes.len() as u16));
                ops.push(Op::TransmitAll);
                server.extend(bytes);
            }
        }
    }
    let script = script(setup, &ops);
    let mut out = (script.len() as u16).to_le_bytes().to_vec();
    out.extend(script);
    out.extend(server);
    out
}

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target)
}

fn capture() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../core/src/amqp/session/fixtures/rabbitmq-3.10.8-connection-start.bin"),
    )
    .unwrap()
}

fn sessions() -> Vec<(&'static str, Vec<u8>)> {
    use Op::*;
    use Step::{Do, Recv};
    // rx 256 KiB, tx 16 KiB, heartbeat 0, frame_max 131072.
    let roomy = [3, 2, 0, 0];
    let open = |hb: u16| {
        vec![
            Recv(greeting(131_072, hb)),
            Do(OpenChannel),
            Recv(method(1, Channel::OpenOk)),
        ]
    };
    let mut full = open(0);
    full.extend([
        Do(ConfirmSelect(0)),
        Recv(method(1, Confirm::SelectOk)),
        Do(DeclareQueue(0, 1, false)),
        Recv(method(
            1,
            Queue::DeclareOk {
                queue: "q".into(),
                message_count: 0,
                consumer_count: 0,
            },
        )),
        Do(Qos(0, 10)),
        Recv(method(1, Basic::QosOk)),
        Do(Consume(0, 1, false)),
        Recv(method(
            1,
            Basic::ConsumeOk {
                consumer_tag: "ctag".into(),
            },
        )),
        Do(Publish(0, 10, false, true)),
        Do(Publish(0, 300, true, false)),
        Do(Publish(0, 0, false, false)),
        Do(Transmit(50)),
        Do(TransmitAll),
        Recv(method(
            1,
            Basic::Ack {
                delivery_tag: 2,
                multiple: true,
            },
        )),
        Recv(method(
            1,
            Basic::Nack {
                delivery_tag: 3,
                multiple: false,
                requeue: false,
            },
        )),
        Recv(deliver(1, 1, b"hello")),
        Recv(deliver(1, 2, &[7u8; 250])),
        Do(Ack(0, 0, false)),
        Do(Nack(0, 1, true, true)),
        Do(Reject(0, 0)),
        Do(Cancel(0, 3)),
        Recv(method(
            1,
            Basic::CancelOk {
                consumer_tag: "ctag".into(),
            },
        )),
        Do(CloseChannel(0)),
        Recv(method(1, Channel::CloseOk)),
        Do(Close),
        Recv(method(0, Connection::CloseOk)),
    ]);
    let mut server_closes = open(0);
    server_closes.extend([
        Do(DeclareExchange(0, 2)),
        Recv(method(
            1,
            Channel::Close {
                reply_code: 406,
                reply_text: "PRECONDITION_FAILED - inequivalent arg 'type'".into(),
                class_id: 40,
                method_id: 10,
            },
        )),
        Do(TransmitAll),
        Do(OpenChannel),
        Recv(method(1, Channel::OpenOk)),
        Recv(method(1, Channel::Flow { active: false })),
        Recv(method(
            0,
            Connection::Blocked {
                reason: "low on memory".into(),
            },
        )),
        Do(Publish(0, 5, false, false)),
        Recv(method(0, Connection::Unblocked)),
        Recv(method(
            0,
            Connection::Close {
                reply_code: 320,
                reply_text: "CONNECTION_FORCED - broker forced connection closure".into(),
                class_id: 0,
                method_id: 0,
            },
        )),
    ]);
    let mut heartbeats = open(1);
    heartbeats.extend([
        Do(AdvanceSecs(1)),
        Recv(HEARTBEAT.to_vec()),
        Do(Advance(600)),
        Do(AdvanceSecs(3)),
        Do(Reset),
        Recv(greeting(4096, 1)),
        Do(Advance(100)),
    ]);
    let mut returned = open(0);
    returned.extend([
        Do(Publish(0, 20, true, false)),
        Recv(content(
            1,
            Basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: "".into(),
                routing_key: "q".into(),
            },
            Properties::default(),
            &[1u8; 20],
            4088,
        )),
        Recv(method(1, Basic::GetEmpty)),
    ]);
    let mut raw_capture = vec![0, 0];
    raw_capture.extend(capture());
    let mut raw_greeting = vec![0, 0];
    raw_greeting.extend(greeting(131_072, 60));
    vec![
        ("rabbitmq-3.10.8-connection-start", raw_capture),
        ("greeting-unscripted", raw_greeting),
        ("confirms-consume-close", seed(roomy, full)),
        (
            "server-closes-channel-then-connection",
            seed(roomy, server_closes),
        ),
        (
            "heartbeats-timeout-reconnect",
            seed([1, 1, 1, 1], heartbeats),
        ),
        ("mandatory-return", seed(roomy, returned)),
    ]
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    // Byte 0 picks the limits: 3 = 64 KiB buffer, no frame-max.
    let with = |bytes: Vec<u8>| {
        let mut out = vec![3u8];
        out.extend(bytes);
        out
    };
    let mut mixed = greeting(131_072, 60);
    mixed.extend(method(1, Channel::OpenOk));
    mixed.extend(HEARTBEAT);
    mixed.extend(deliver(1, 1, b"hello"));
    let mut table = vec![3u8];
    let mut buf = [0u8; 256];
    let mut b = TableBuilder::new(&mut buf);
    b.insert("t", FieldValue::Bool(true));
    b.insert(
        "d",
        FieldValue::Decimal {
            scale: 2,
            value: 314,
        },
    );
    b.insert("f", FieldValue::F64(1.5));
    b.insert("x", FieldValue::Bytes(b"\x00\x01"));
    b.insert("T", FieldValue::Timestamp(1_700_000_000));
    b.insert("V", FieldValue::Void);
    b.insert("F", FieldValue::Table(FieldTable::EMPTY));
    table.extend(b.finish().unwrap().as_bytes());
    vec![
        ("rabbitmq-3.10.8-connection-start", with(capture())),
        ("greeting-channel-heartbeat-delivery", with(mixed)),
        ("field-table-every-type", table),
        (
            "small-buffer-delivery",
            [vec![0x0d], deliver(1, 9, b"abc")].concat(),
        ),
    ]
}

#[test]
#[ignore = "writes the seed files; run when the seeds change"]
fn write_amqp_seeds() {
    for (target, seeds) in [("amqp_frame", frames()), ("amqp_session", sessions())] {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}

/// The seeds still pass their targets (the replay test covers the files;
/// this covers the generator).
#[test]
fn amqp_seeds_pass_their_targets() {
    for (_, bytes) in frames() {
        courier_fuzz_targets::amqp_frame::amqp_frame(&bytes);
    }
    for (_, bytes) in sessions() {
        courier_fuzz_targets::amqp_session::amqp_session(&bytes);
    }
}
