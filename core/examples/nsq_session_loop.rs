//! NSQ publish and consume loops over courier-core's sans-IO NSQ session,
//! for instruction counts under `valgrind --tool=callgrind` (stable on a
//! loaded machine, unlike wall time). No sockets: the "driver" drains
//! `transmit()` and feeds nsqd's answers as byte vectors.
//!
//! ```sh
//! cargo build --release -p courier-core --example nsq_session_loop
//! # instructions per message = (count at 2N - count at N) / N
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/nsq_session_loop consume 100000 1024
//! ```
//!
//! Arguments: `pub COUNT SIZE` (one PUB and its OK per message), `mpub
//! COUNT SIZE` (MPUB batches of 200 and their OK), `consume COUNT SIZE`
//! (one MESSAGE frame in, one FIN out per message). `scripts/profile.sh`
//! runs them.

use courier_core::nsq::{Identify, Options, Session};
use courier_core::time::Instant;
use std::hint::black_box;

const PENDING: usize = 8;
type S = Session<Vec<u8>, PENDING>;

const OK: &[u8] = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";
const IDENTIFY_OK: &[u8] = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";

/// Feeds every frame in `bytes`, handing each message to `on_message`;
/// returns how many messages came.
fn feed(s: &mut S, mut bytes: &[u8], mut on_message: impl FnMut(&mut S, [u8; 16])) -> usize {
    let mut messages = 0;
    loop {
        let (used, id, evented) = step(s, bytes);
        if let Some(id) = id {
            messages += 1;
            on_message(s, id);
        }
        if used == 0 && !evented && !pending_events(s) {
            return messages;
        }
        bytes = &bytes[used..];
    }
}

/// One `handle_input` call: bytes used, for a message its id, and whether
/// anything came out.
fn step(s: &mut S, bytes: &[u8]) -> (usize, Option<[u8; 16]>, bool) {
    let (used, message) = s
        .handle_input(bytes, Instant::from_millis(1))
        .expect("input");
    let id = message.map(|m| {
        black_box(m.body);
        m.id.0
    });
    (used, id, id.is_some())
}

/// Drains the session's owned events; whether there were any.
fn pending_events(s: &mut S) -> bool {
    let mut any = false;
    while let Some(event) = s.poll_event() {
        black_box(event);
        any = true;
    }
    any
}

fn session(consumer: bool) -> S {
    let identify = Identify::default();
    let mut s: S = Session::new(Options::new(1 << 20), vec![0; 1 << 20]);
    s.start(&identify, Instant::from_millis(0)).expect("start");
    drain(&mut s);
    feed(&mut s, IDENTIFY_OK, |_, _| {});
    if consumer {
        s.subscribe("bench_topic", "ch").expect("sub");
        drain(&mut s);
        feed(&mut s, OK, |_, _| {});
        s.ready(2500).expect("rdy");
        drain(&mut s);
    }
    s
}

fn drain(s: &mut S) -> usize {
    let n = s.transmit().len();
    black_box(s.transmit());
    s.transmitted(n);
    n
}

fn publish(count: u64, size: usize) {
    let mut s = session(false);
    let body = vec![b'x'; size];
    let mut sent = 0;
    for _ in 0..count {
        s.publish(black_box("bench_topic"), black_box(&body))
            .expect("publish");
        sent += drain(&mut s);
        feed(&mut s, OK, |_, _| {});
    }
    println!("{count} PUB of {size} B: {sent} bytes");
}

fn mpub(count: u64, size: usize) {
    let mut s = session(false);
    let body = vec![b'x'; size];
    let batch: Vec<&[u8]> = vec![body.as_slice(); 200];
    let (mut sent, mut left) = (0, count);
    while left > 0 {
        let n = left.min(200) as usize;
        s.publish_multi(black_box("bench_topic"), &batch[..n])
            .expect("mpub");
        sent += drain(&mut s);
        feed(&mut s, OK, |_, _| {});
        left -= n as u64;
    }
    println!("{count} messages of {size} B in MPUB batches of 200: {sent} bytes");
}

fn consume(count: u64, size: usize) {
    let mut s = session(true);
    // 64 MESSAGE frames per read, as a socket read of a busy consumer.
    let mut chunk = Vec::new();
    for i in 0..64u64 {
        let len = 4 + 8 + 2 + 16 + size;
        chunk.extend_from_slice(&(len as u32).to_be_bytes());
        chunk.extend_from_slice(&2u32.to_be_bytes());
        chunk.extend_from_slice(&1_700_000_000_000_000_000u64.to_be_bytes());
        chunk.extend_from_slice(&1u16.to_be_bytes());
        chunk.extend_from_slice(format!("{i:016x}").as_bytes());
        chunk.extend(std::iter::repeat_n(b'x', size));
    }
    let (mut got, mut sent) = (0u64, 0);
    while got < count {
        got += feed(&mut s, black_box(&chunk), |s, id| {
            s.fin(&courier_core::nsq::MessageId(id)).expect("fin");
        }) as u64;
        sent += drain(&mut s);
    }
    println!("{got} messages of {size} B consumed, {sent} bytes of FIN");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(16);
    match args.get(1).map(String::as_str) {
        Some("pub") | None => publish(count, size),
        Some("mpub") => mpub(count, size),
        Some("consume") => consume(count, size),
        Some(other) => eprintln!("unknown loop {other:?}: use pub, mpub or consume"),
    }
}
