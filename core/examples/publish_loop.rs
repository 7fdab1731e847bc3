//! A publish loop over courier-core's sans-IO NATS session, for instruction
//! counts under `valgrind --tool=callgrind` (stable on a loaded machine,
//! unlike wall time). No sockets: the "driver" drains `transmit()` whenever
//! 32 KiB are queued, as the runtime's write loop does.
//!
//! ```sh
//! cargo build --release -p courier-core --example publish_loop
//! # instructions per publish = (count at 2N - count at N) / N
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/publish_loop nats 100000 16
//! ```
//!
//! Arguments: `nats COUNT SIZE` (PUB of SIZE bytes to `bench.subject.x`),
//! or `mpub COUNT SIZE` (COUNT messages of SIZE bytes in NSQ MPUB batches
//! of 200, encoded into a transmit buffer that is drained after each).

use courier_core::nats::session::{ConnectOptions, Session};
use courier_core::time::Instant;
use std::hint::black_box;

const INFO: &[u8] = b"INFO {\"server_id\":\"S\",\"version\":\"2.11.0\",\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n";

fn feed<S: AsRef<[u8]> + AsMut<[u8]>>(s: &mut Session<S, 4, 2>, mut bytes: &[u8]) {
    loop {
        let (used, event) = s
            .handle_input(bytes, Instant::from_millis(1))
            .expect("handshake input");
        bytes = &bytes[used..];
        if used == 0 && event.is_none() {
            break;
        }
    }
}

fn drain<S: AsRef<[u8]> + AsMut<[u8]>>(s: &mut Session<S, 4, 2>) -> usize {
    let n = s.transmit().len();
    black_box(s.transmit());
    s.transmitted(n);
    n
}

fn nats(count: u64, size: usize) {
    let mut s: Session<Vec<u8>, 4, 2> = Session::new(ConnectOptions::default(), vec![0; 1 << 17]);
    feed(&mut s, INFO);
    drain(&mut s);
    feed(&mut s, b"PONG\r\n");
    let payload = vec![b'x'; size];
    let mut sent = 0usize;
    for _ in 0..count {
        black_box(&payload);
        s.publish(black_box("bench.subject.x"), None, None, &payload)
            .expect("publish");
        if s.transmit().len() >= 32 * 1024 {
            sent += drain(&mut s);
        }
    }
    sent += drain(&mut s);
    println!("{count} publishes of {size} B: {sent} bytes queued for the wire");
}

fn mpub(count: u64, size: usize) {
    use courier_core::buf::TxBuf;
    let body = vec![b'x'; size];
    let batch: Vec<&[u8]> = vec![body.as_slice(); 200];
    let mut tx = TxBuf::new(vec![0u8; 256 + 200 * (size + 4)]);
    let mut sent = 0usize;
    let mut left = count;
    while left > 0 {
        let n = left.min(200) as usize;
        courier_core::nsq::commands::encode_mpub(&mut tx, black_box("bench_topic"), &batch[..n])
            .expect("mpub");
        let pending = tx.pending().len();
        black_box(tx.pending());
        tx.consume(pending);
        sent += pending;
        left -= n as u64;
    }
    println!("{count} messages of {size} B in MPUB batches of 200: {sent} bytes");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(16);
    match args.get(1).map(String::as_str) {
        Some("nats") | None => nats(count, size),
        Some("mpub") => mpub(count, size),
        Some(other) => eprintln!("unknown loop {other:?}: use nats or mpub"),
    }
}
