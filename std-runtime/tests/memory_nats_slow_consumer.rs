//! Bounded memory (issue 7): a NATS subscriber far slower than its
//! publisher stays within its pending limits. The overflow is dropped,
//! counted (`Subscriber::dropped`) and reported as `SlowConsumer` events,
//! and the process's peak RSS grows by about the configured bound, not by
//! the flood.
//!
//! One test per file: peak RSS (VmHWM) is per process.

use std::cell::Cell;
use std::rc::Rc;

use courier::nats::{ConnectOptions, Event, PendingLimits};
use courier_tests::NatsServer;

/// `VmRSS` / `VmHWM` of this process in bytes.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("field in /proc/self/status")
        * 1024
}

const PAYLOAD: usize = 1024;
const FLOOD: usize = 100_000; // 100 MiB of payload
const PENDING_BYTES: usize = 4 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

#[test]
fn slow_subscriber_stays_within_its_pending_limits() {
    let server = NatsServer::start();
    let url = server.url();
    let (received, dropped, events, rss_before, peak) = courier::run(async move {
        let slow = Rc::new(Cell::new(0u64));
        let seen = slow.clone();
        let subscriber = ConnectOptions::new()
            .pending_limits(PendingLimits {
                messages: 1_000_000,
                bytes: PENDING_BYTES,
            })
            .event_callback(move |e| {
                if matches!(e, Event::SlowConsumer { .. }) {
                    seen.set(seen.get() + 1);
                }
            })
            .connect([url.clone()])
            .await
            .expect("subscriber connects");
        let mut sub = subscriber.subscribe("flood").await.expect("subscribe");
        subscriber.flush().await.expect("SUB confirmed");
        let publisher = ConnectOptions::new()
            .connect([url])
            .await
            .expect("publisher connects");
        let payload = vec![b'x'; PAYLOAD];
        // Warm up both paths once, then take the baseline.
        publisher.publish("flood", &payload).await.unwrap();
        publisher.flush().await.unwrap();
        let _ = sub.next().await;
        let rss_before = status_kib("VmRSS:");
        // The subscriber reads nothing while the flood arrives.
        for _ in 0..FLOOD {
            publisher.publish("flood", &payload).await.unwrap();
        }
        publisher.flush().await.unwrap();
        subscriber.flush().await.unwrap();
        let peak = status_kib("VmHWM:");
        // Now it drains what was kept.
        let mut received = 0u64;
        while sub.pending() > 0 {
            let _ = sub.next().await;
            received += 1;
        }
        let dropped = sub.dropped();
        let _ = publisher.close().await;
        let _ = subscriber.close().await;
        (received, dropped, slow.get(), rss_before, peak)
    });
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "pending bound {} MiB: kept {received}, dropped {} msgs ({} MiB), {events} SlowConsumer \
         events; RSS before {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB",
        PENDING_BYTES as u64 / MIB,
        dropped.0,
        dropped.1 / MIB,
        rss_before as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert_eq!(
        received + dropped.0,
        FLOOD as u64,
        "every message kept or counted"
    );
    assert!(
        received * PAYLOAD as u64 <= PENDING_BYTES as u64,
        "{received} kept"
    );
    assert!(
        dropped.0 > 0 && events >= 1,
        "{dropped:?} dropped, {events} events"
    );
    // The pending bound plus slack for message bookkeeping and the
    // allocator; a subscriber that queued the flood would grow by 100+ MiB.
    assert!(
        growth <= PENDING_BYTES as u64 * 3 + 16 * MIB,
        "peak RSS grew by {} MiB for a {} MiB pending bound",
        growth / MIB,
        PENDING_BYTES as u64 / MIB
    );
}
