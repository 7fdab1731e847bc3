//! NSQ producer across an nsqd restart (issue 7, defect 3): nsqd is killed
//! (SIGKILL) and restarted on the same port while a producer publishes
//! MPUB batches. The producer reconnects with backoff and sends the
//! unanswered batch again (at-least-once): every publish returns Ok, and
//! nsqd holds at least every confirmed message, duplicates counted.
//!
//! nsqd runs with `--mem-queue-size=0 --sync-every=1` on a tmpfs data path,
//! so every message it answered OK for is on its disk queue and survives
//! the SIGKILL; the topic's depth after the restart is what it received.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::nsq::{Config, Producer};
use courier_tests::Nsqd;

const BATCH: usize = 20;

fn topic_depth(nsqd: &Nsqd, topic: &str) -> u64 {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .map(|t| t["depth"].as_u64().unwrap_or(0))
        .unwrap_or(0)
}

#[test]
fn producer_survives_an_nsqd_kill_and_restart_without_losing_a_message() {
    let data = tempfile::Builder::new()
        .prefix("courier-nsqd-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("data dir");
    let data_arg = format!("--data-path={}", data.path().display());
    let nsqd = Nsqd::start_with(&[&data_arg, "--mem-queue-size=0", "--sync-every=1"]);
    let addr = nsqd.tcp_addr();
    let nsqd = Arc::new(Mutex::new(nsqd));
    let topic = format!("restart_{}", std::process::id());

    let restarted = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let killer = {
        let (nsqd, restarted, started) = (nsqd.clone(), restarted.clone(), started.clone());
        std::thread::spawn(move || {
            while !started.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(300));
            nsqd.lock().unwrap().kill();
            std::thread::sleep(Duration::from_millis(500));
            nsqd.lock().unwrap().restart();
            restarted.store(true, Ordering::SeqCst);
        })
    };

    let config = Config {
        reconnect_delay: Duration::from_millis(50),
        reconnect_delay_max: Duration::from_millis(400),
        ..Config::default()
    };
    let (confirmed, resent, failed) = courier::run(async {
        let producer = Producer::new([addr.clone()], config).expect("producer");
        producer.connect().await.expect("first connect");
        let mut confirmed = 0u64;
        let mut failed = Vec::new();
        let mut after_restart = 0;
        let mut n = 0u64;
        while after_restart < 20 {
            let bodies: Vec<Vec<u8>> = (0..BATCH)
                .map(|_| {
                    n += 1;
                    format!("m{n}").into_bytes()
                })
                .collect();
            match producer.multi_publish(&topic, &bodies).await {
                Ok(()) => confirmed += BATCH as u64,
                Err(e) => failed.push(e.to_string()),
            }
            started.store(true, Ordering::SeqCst);
            if restarted.load(Ordering::SeqCst) {
                after_restart += 1;
            }
        }
        let resent = producer.resent_publishes();
        producer.stop().await;
        (confirmed, resent, failed)
    });
    killer.join().expect("killer thread");
    let nsqd = nsqd.lock().unwrap();
    let depth = topic_depth(&nsqd, &topic);
    eprintln!(
        "confirmed {confirmed}, resent {resent} batches, nsqd holds {depth} (duplicates {})",
        depth.saturating_sub(confirmed)
    );
    assert!(failed.is_empty(), "publishes failed: {failed:?}");
    assert!(
        resent >= 1,
        "the kill must have caught a batch in flight or a reconnect"
    );
    assert!(
        depth >= confirmed,
        "lost: nsqd holds {depth} of {confirmed} confirmed messages"
    );
    assert!(
        depth <= confirmed + resent * BATCH as u64,
        "{depth} messages for {confirmed} confirmed and {resent} resent batches"
    );
}
