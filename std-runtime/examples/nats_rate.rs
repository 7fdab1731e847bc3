//! Quick sanity rate check: publishes N messages while subscribed to them on
//! one client and prints messages/s and syscalls per message. Not a
//! benchmark (see the bench crate); a smoke test of the hot path.
//!
//! `cargo run --release -p courier --example nats_rate -- nats://127.0.0.1:4222 [count] [size]`

use std::time::Instant;

use courier::nats::{self, ConnectOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let count: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    courier::run(async move {
        println!("backend: {:?}", courier::current_backend());
        let client = ConnectOptions::new()
            .pending_limits(nats::PendingLimits {
                messages: usize::MAX,
                bytes: usize::MAX,
            })
            .connect([url.as_str()])
            .await
            .expect("connect");
        let payload = vec![b'x'; size];

        let start = Instant::now();
        let before = courier::stats();
        for _ in 0..count {
            client.publish("rate.pub", &payload).await.unwrap();
        }
        client.flush().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        let s = courier::stats();
        println!(
            "publish only: {:.0} msg/s, {:.4} writes/msg",
            count as f64 / secs,
            (s.writes - before.writes) as f64 / count as f64
        );

        let mut sub = client.subscribe("rate.sub").await.unwrap();
        client.flush().await.unwrap();
        let start = Instant::now();
        let before = courier::stats();
        let consumer = courier::spawn(async move {
            for _ in 0..count {
                sub.next().await.unwrap();
            }
        });
        for _ in 0..count {
            client.publish("rate.sub", &payload).await.unwrap();
        }
        consumer.await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        let s = courier::stats();
        println!(
            "publish+receive (same client): {:.0} msg/s, {:.4} reads/msg, {:.4} writes/msg",
            count as f64 / secs,
            (s.reads - before.reads) as f64 / count as f64,
            (s.writes - before.writes) as f64 / count as f64
        );

        let start = Instant::now();
        let mut svc = client.subscribe("rate.req").await.unwrap();
        let responder = client.clone();
        courier::spawn(async move {
            while let Some(m) = svc.next().await {
                let _ = responder.publish(m.reply().unwrap(), "ok").await;
            }
        });
        client.flush().await.unwrap();
        let n = 10_000;
        for _ in 0..n {
            client.request("rate.req", "x").await.unwrap();
        }
        println!(
            "request/reply (same client, sequential): {:.1} us/round trip",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        client.close().await.unwrap();
    });
}
