//! A receive loop over courier-core's sans-IO NATS session, for instruction
//! counts per received message under `valgrind --tool=callgrind` (see
//! `scripts/profile.sh recv SIZE`). No sockets: the same batch of 100 `MSG`
//! frames is handed to `handle_input` again and again, as the runtime does
//! with its receive buffer, and each message's payload is touched.
//!
//! Arguments: `COUNT SIZE` (COUNT messages of SIZE bytes; COUNT a multiple
//! of 100).

use courier_core::nats::session::{ConnectOptions, Session};
use courier_core::nats::Received;
use courier_core::time::Instant;
use std::hint::black_box;

const INFO: &[u8] = b"INFO {\"server_id\":\"S\",\"version\":\"2.11.0\",\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n";
const BATCH: u64 = 100;

type S = Session<Vec<u8>, 4, 2>;

/// Hands `bytes` to the session until it needs more; returns the messages
/// and payload bytes it delivered.
fn feed(s: &mut S, mut bytes: &[u8]) -> (u64, usize) {
    let now = Instant::from_millis(1);
    let (mut messages, mut payload) = (0, 0);
    loop {
        while s.poll_event().is_some() {}
        let (used, received) = s.handle_input(bytes, now).expect("input");
        if let Some(Received::Message(m)) = received {
            messages += 1;
            payload += black_box(m.payload).len();
        }
        if used == 0 && !s.has_events() {
            return (messages, payload);
        }
        bytes = &bytes[used..];
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let options = ConnectOptions {
        rx_capacity: 1 << 20,
        ..ConnectOptions::default()
    };
    let mut s: S = Session::new(options, vec![0; 1 << 16]);
    feed(&mut s, INFO);
    s.subscribe("bench.>", None).expect("subscribe");
    feed(&mut s, b"PONG\r\n");
    let n = s.transmit().len();
    s.transmitted(n);
    let mut batch = Vec::new();
    for _ in 0..BATCH {
        batch.extend_from_slice(format!("MSG bench.subject.x 1 {size}\r\n").as_bytes());
        batch.extend(std::iter::repeat_n(b'x', size));
        batch.extend_from_slice(b"\r\n");
    }
    let (mut messages, mut bytes) = (0, 0);
    for _ in 0..count / BATCH {
        let (m, b) = feed(&mut s, black_box(&batch));
        messages += m;
        bytes += b;
    }
    assert_eq!(messages, count / BATCH * BATCH, "every message delivered");
    println!("{messages} messages of {size} B received: {bytes} payload bytes");
}
