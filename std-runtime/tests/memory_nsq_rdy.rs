//! Bounded memory (issue 7): an NSQ consumer far slower than the backlog
//! holds at most `max_in_flight` messages (its RDY), so the process's peak
//! RSS grows by about RDY × message size plus the receive buffer, not by
//! the 100 MiB waiting in nsqd. nsqd's own `in_flight_count` is checked
//! against the bound too.
//!
//! One test per file: peak RSS (VmHWM) is per process.

use std::cell::Cell;
use std::time::Duration;

use courier::nsq::{Config, Consumer, Handler, HandlerError, Message, Producer, ServerNodes};
use courier_tests::Nsqd;

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("field in /proc/self/status")
        * 1024
}

const BODY: usize = 100 * 1024;
const BACKLOG: usize = 1000; // ~100 MiB waiting in nsqd
const MAX_IN_FLIGHT: u32 = 20;
const MIB: u64 = 1024 * 1024;

/// Takes 100 ms per message: far slower than nsqd could send.
struct Slow {
    handled: Cell<u64>,
}

impl Handler for Slow {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &Message) -> Option<((), ())> {
        Some(((), ()))
    }
    async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
        assert_eq!(m.body().len(), BODY);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.handled.set(self.handled.get() + 1);
        Ok(())
    }
}

fn nsqd_in_flight(nsqd: &Nsqd, topic: &str) -> u64 {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"][0]["channels"][0]["in_flight_count"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn slow_nsq_consumer_memory_is_bounded_by_rdy() {
    let nsqd = Nsqd::start_with(&["--max-msg-size=1048576"]);
    let topic = "rdy_bound";
    let (handled, max_seen, nsqd_max, rss_before, peak) = courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let body = vec![b'y'; BODY];
        let batch: Vec<&[u8]> = (0..8).map(|_| body.as_slice()).collect();
        // Create the channel first so the backlog is queued for it.
        let probe = Consumer::builder(
            [(topic, "slow")],
            ServerNodes::new([nsqd.tcp_addr()]),
            0,
            Slow {
                handled: Cell::new(0),
            },
        )
        .start()
        .await
        .unwrap();
        probe.stop().await;
        for _ in 0..BACKLOG / 8 {
            producer.multi_publish(topic, &batch).await.unwrap();
        }
        producer.stop().await;
        drop(producer);
        drop(batch);
        drop(body);
        let rss_before = status_bytes("VmRSS:");
        let consumer = Consumer::builder(
            [(topic, "slow")],
            ServerNodes::new([nsqd.tcp_addr()]),
            MAX_IN_FLIGHT,
            Slow {
                handled: Cell::new(0),
            },
        )
        .start()
        .await
        .unwrap();
        let mut nsqd_max = 0;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            nsqd_max = nsqd_max.max(nsqd_in_flight(&nsqd, topic));
        }
        let peak = status_bytes("VmHWM:");
        let handled = consumer.handler().handled.get();
        let max_seen = consumer.max_seen_in_flight();
        consumer.stop().await;
        (handled, max_seen, nsqd_max, rss_before, peak)
    });
    let growth = peak.saturating_sub(rss_before);
    let bound = u64::from(MAX_IN_FLIGHT) * BODY as u64;
    eprintln!(
        "RDY {MAX_IN_FLIGHT} x {} KiB = {:.1} MiB bound: handled {handled} in 1.5 s, max in flight \
         {max_seen} (nsqd saw {nsqd_max}); RSS before {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB",
        BODY / 1024,
        bound as f64 / MIB as f64,
        rss_before as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert!(handled > 0, "the consumer made progress");
    assert!(
        handled < BACKLOG as u64,
        "the backlog must outlast the watch"
    );
    assert!(max_seen <= MAX_IN_FLIGHT, "{max_seen} in flight");
    assert!(
        nsqd_max <= u64::from(MAX_IN_FLIGHT),
        "nsqd had {nsqd_max} in flight"
    );
    // RDY's worth of messages, the 1 MiB receive buffer, slack for the
    // allocator: far below the 100 MiB backlog.
    assert!(
        growth <= bound * 2 + 16 * MIB,
        "peak RSS grew by {} MiB for a {} MiB RDY bound",
        growth / MIB,
        bound / MIB
    );
}
