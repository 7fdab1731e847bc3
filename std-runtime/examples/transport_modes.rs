//! Compares the transports (epoll, io_uring, io_uring with registered
//! buffers, io_uring with zero-copy send) on the same workloads and prints
//! what actually ran, rates and operations per message. Not the benchmark
//! (see the bench crate); a quick way to see what each variant costs here.
//!
//! ```text
//! cargo run --release -p courier --example transport_modes -- nats nats://127.0.0.1:4222
//! cargo run --release -p courier --example transport_modes -- sweep
//! ```
//!
//! `nats URL [TRANSPORT|all [DIVISOR]]`: publish rates for 16 B, 64 KiB and 1 MiB payloads (16 B via
//! `publish`, the large ones via `publish_bytes`, the vectored path).
//! `sweep`: raw transport writes of 4 KiB..1 MiB into a local sink, to pick
//! the zero-copy threshold (best of 3 runs each; `COURIER_ZC_THRESHOLD=0`
//! sends every write zero-copy).

use std::io::Read;
use std::net::TcpListener;
use std::time::Instant;

use bytes::Bytes;
use courier::nats::{self, ConnectOptions};
use courier::{BackendChoice, Runtime};

const CHOICES: [(&str, BackendChoice); 4] = [
    ("epoll", BackendChoice::Epoll),
    ("uring", BackendChoice::Uring),
    ("uring-fixed", BackendChoice::UringFixed),
    ("uring-zc", BackendChoice::UringZeroCopy),
];

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("nats") => {
            let url = args
                .next()
                .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
            let only = args.next().filter(|o| o != "all");
            let divisor = args.next().and_then(|d| d.parse().ok()).unwrap_or(1);
            nats_rates(&url, only.as_deref(), divisor);
        }
        Some("sweep") => sweep(),
        _ => eprintln!("usage: transport_modes nats [URL [TRANSPORT|all [DIVISOR]]] | sweep"),
    }
}

fn runtime(choice: BackendChoice) -> Runtime {
    Runtime::builder()
        .backend(choice)
        .build()
        .unwrap_or_else(|e| panic!("{choice:?}: {e}"))
}

/// `divisor` shrinks the message counts (e.g. under strace).
fn nats_rates(url: &str, only: Option<&str>, divisor: u64) {
    println!(
        "{:<24} {:>8} {:>9} {:>12} {:>9} {:>10} {:>10} {:>8} {:>8}",
        "transport", "payload", "msgs", "msg/s", "MB/s", "writes/msg", "sqe/msg", "zc", "fixed"
    );
    for (name, choice) in CHOICES {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        for (size, count) in [
            (16usize, 2_000_000u64),
            (64 * 1024, 20_000),
            (1024 * 1024, 2_000),
        ] {
            // ONLY_SIZE=<bytes> runs one payload size (one size per strace run).
            if std::env::var("ONLY_SIZE").is_ok_and(|o| o != size.to_string()) {
                continue;
            }
            let count = (count / divisor.max(1)).max(1);
            let rt = runtime(choice);
            let url = url.to_string();
            rt.block_on(async move {
                let client = ConnectOptions::new()
                    .connect([url.as_str()])
                    .await
                    .expect("connect");
                let payload = Bytes::from(vec![b'x'; size]);
                // Warm-up: connection, buffers, server side.
                for _ in 0..(count / 20).max(10) {
                    publish(&client, size, &payload).await;
                }
                client.flush().await.unwrap();
                let before = courier::stats();
                let start = Instant::now();
                for _ in 0..count {
                    publish(&client, size, &payload).await;
                }
                client.flush().await.unwrap();
                let secs = start.elapsed().as_secs_f64();
                let s = courier::stats();
                let per = |a: u64, b: u64| (a - b) as f64 / count as f64;
                println!(
                    "{:<24} {:>8} {:>9} {:>12.0} {:>9.1} {:>10.4} {:>10.4} {:>8} {:>8}",
                    courier::current_transport().unwrap().to_string(),
                    size,
                    count,
                    count as f64 / secs,
                    (count as f64 * size as f64) / secs / 1e6,
                    per(s.writes, before.writes),
                    per(s.submissions, before.submissions),
                    s.zero_copy_sends - before.zero_copy_sends,
                    s.fixed_buffer_ops - before.fixed_buffer_ops,
                );
                client.close().await.unwrap();
            });
        }
    }
}

async fn publish(client: &nats::Client, size: usize, payload: &Bytes) {
    if size < 64 * 1024 {
        client.publish("modes.rate", &payload[..]).await.unwrap();
    } else {
        client
            .publish_bytes("modes.rate", None, payload.clone())
            .await
            .unwrap();
    }
}

/// A peer that reads and discards until end of stream.
fn sink() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                return;
            }
        }
    });
    addr
}

fn sweep() {
    const TOTAL: usize = 512 << 20;
    println!(
        "{:<24} {:>9} {:>10} {:>12}",
        "transport", "write", "MB/s", "writes/op"
    );
    for size in [
        4 << 10,
        8 << 10,
        16 << 10,
        32 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
    ] {
        for (_, choice) in &CHOICES[1..] {
            let mut best = 0f64;
            let mut name = String::new();
            let mut writes_per_op = 0f64;
            for _ in 0..3 {
                let rt = runtime(*choice);
                let (rate, transport, wpo) = rt.block_on(async move {
                    let (_rd, mut wr) = courier::transport::connect(sink()).await.unwrap();
                    let ops = TOTAL / size;
                    let mut data = vec![b'y'; size];
                    let parts_payload = Bytes::from(vec![b'z'; size]);
                    let start = Instant::now();
                    for i in 0..ops {
                        if i % 2 == 0 {
                            let (res, back) = wr.write_all(data).await;
                            res.unwrap();
                            data = back;
                        } else {
                            let (res, _) = wr.write_vectored_all(vec![parts_payload.clone()]).await;
                            res.unwrap();
                        }
                    }
                    let secs = start.elapsed().as_secs_f64();
                    let s = courier::stats();
                    wr.shutdown().unwrap();
                    (
                        (ops * size) as f64 / secs / 1e6,
                        courier::current_transport().unwrap().to_string(),
                        s.writes as f64 / ops as f64,
                    )
                });
                if rate > best {
                    best = rate;
                    name = transport;
                    writes_per_op = wpo;
                }
            }
            println!("{name:<24} {size:>9} {best:>10.0} {writes_per_op:>12.3}");
        }
    }
}
