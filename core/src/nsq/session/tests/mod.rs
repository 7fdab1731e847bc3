//! Session tests: byte vectors in, bytes and events out (no sockets).
//! Files: `handshake` (IDENTIFY, upgrades, AUTH, timers), `traffic`
//! (heartbeats, publishes, errors, CLS), `replay` (a recorded nsqd 1.3.0
//! conversation, split-anywhere proptests).

mod handshake;
mod replay;
mod traffic;

use super::*;
use crate::nsq::frame::{encode_frame, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE};
use std::format;
use std::string::String;
use std::vec::Vec;

type TestSession = Session<[u8; 1024], 4>;

const NSQD_IDENTIFY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;

fn frame(frame_type: i32, data: &[u8]) -> Vec<u8> {
    let mut out = std::vec![0u8; data.len() + 8];
    encode_frame(&mut out, frame_type, data).unwrap();
    out
}
fn response(data: &[u8]) -> Vec<u8> {
    frame(FRAME_TYPE_RESPONSE, data)
}
fn error(data: &[u8]) -> Vec<u8> {
    frame(FRAME_TYPE_ERROR, data)
}
fn message(id: &[u8; 16], attempts: u16, body: &[u8]) -> Vec<u8> {
    let mut d = 42i64.to_be_bytes().to_vec();
    d.extend_from_slice(&attempts.to_be_bytes());
    d.extend_from_slice(id);
    d.extend_from_slice(body);
    frame(FRAME_TYPE_MESSAGE, &d)
}

fn identify() -> Identify<'static> {
    Identify {
        client_id: Some("c"),
        feature_negotiation: true,
        heartbeat_interval: Some(1000),
        ..Identify::default()
    }
}

/// A started session over `tx` with a receive buffer of `rx_capacity`.
fn started<S: AsRef<[u8]> + AsMut<[u8]>, const P: usize>(
    tx: S,
    rx_capacity: usize,
    identify: &Identify<'_>,
) -> Session<S, P> {
    let mut s = Session::new(Options::new(rx_capacity), tx);
    s.start(identify, Instant(0)).unwrap();
    s
}

fn new_session() -> TestSession {
    started([0u8; 1024], 4096, &identify())
}

/// Takes everything the session wants to send.
fn sent<S: AsRef<[u8]> + AsMut<[u8]>, const P: usize>(s: &mut Session<S, P>) -> Vec<u8> {
    let out = s.transmit().to_vec();
    s.transmitted(out.len());
    out
}

/// What one step gave: a message (borrowing the input) or an owned event.
enum Out<'a> {
    Message(Message<'a>),
    Event(Event),
}

impl Out<'_> {
    fn describe(&self) -> String {
        match self {
            Out::Message(m) => format!("Message({m:?})"),
            Out::Event(e) => format!("{e:?}"),
        }
    }
}

/// Feeds `input` until the session needs more bytes, handing `on` every
/// message and event in order (events polled after each `handle_input`, as
/// a driver does). Returns the bytes consumed.
fn drive<S: AsRef<[u8]> + AsMut<[u8]>, const P: usize>(
    s: &mut Session<S, P>,
    input: &[u8],
    now: u64,
    mut on: impl FnMut(&mut Session<S, P>, Out<'_>),
) -> Result<usize, SessionError> {
    let mut at = 0;
    loop {
        let (n, message) = s.handle_input(&input[at..], Instant(now))?;
        let got_message = message.is_some();
        if let Some(m) = message {
            on(s, Out::Message(m));
        }
        at += n;
        let mut polled = false;
        while let Some(e) = s.poll_event() {
            polled = true;
            on(s, Out::Event(e));
        }
        if n == 0 && !got_message && !polled {
            return Ok(at);
        }
    }
}

/// Feeds `input`; messages and events as Debug strings. Checks that the
/// whole input was consumed.
fn feed(s: &mut TestSession, input: &[u8], now: u64) -> Result<Vec<String>, SessionError> {
    let mut events = Vec::new();
    let at = drive(s, input, now, |_, out| events.push(out.describe()))?;
    assert_eq!(at, input.len(), "unconsumed input");
    Ok(events)
}

/// One `handle_input` call, then every event it queued.
fn step(s: &mut TestSession, input: &[u8], now: u64) -> (usize, Vec<String>) {
    let (n, message) = s.handle_input(input, Instant(now)).unwrap();
    let mut out: Vec<String> = message.iter().map(|m| format!("Message({m:?})")).collect();
    while let Some(e) = s.poll_event() {
        out.push(format!("{e:?}"));
    }
    (n, out)
}

fn ready_session() -> TestSession {
    let mut s = new_session();
    sent(&mut s);
    let ev = feed(&mut s, &response(NSQD_IDENTIFY), 1).unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], "Ready");
    s
}

fn consumer_session() -> TestSession {
    let mut s = ready_session();
    s.subscribe("t", "c").unwrap();
    assert_eq!(sent(&mut s), b"SUB t c\n");
    assert_eq!(feed(&mut s, &response(b"OK"), 2).unwrap(), ["Subscribed"]);
    s
}

#[test]
fn per_message_results_stay_small() {
    // One of these is returned per message: no handshake payloads.
    std::println!(
        "Event {} bytes, result {} bytes",
        core::mem::size_of::<Event>(),
        core::mem::size_of::<Result<(usize, Option<Message<'_>>), SessionError>>()
    );
    assert!(core::mem::size_of::<Event>() <= 128);
    assert!(core::mem::size_of::<Option<Message<'_>>>() <= 64);
}
