//! The facade's cost beside the native courier API on the same real
//! server: allocations per message (in the suite, asserted: none for raw
//! uncompressed messages on NATS) and messages/s at 1 KiB
//! (ignored in the suite; run it with
//! `cargo test --release -p courier-tests --test mom_perf -- --ignored --nocapture`).

mod mom_support;

use std::time::{Duration, Instant};

use courier::mom::SendOptions;
use courier_tests::alloc_count::{thread_allocations, CountingAlloc};
use courier_tests::NatsServer;
use mom_support::*;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const KIB: usize = 1024;

/// Allocations per message: facade send + receive vs native publish +
/// next, raw 1 KiB payloads, no compression, NATS core.
#[test]
fn allocations_per_message_facade_vs_native() {
    let nats = NatsServer::start();
    let uri = format!("nats-pubsub://127.0.0.1:{}", nats.port());
    courier::run(async {
        let n = 2_000u64;
        let payload = vec![b'x'; KIB];
        // Facade.
        let mut r = receiver("r", &uri, "alloc.mom").await;
        let s = sender(&uri, "alloc.mom").await;
        let none = SendOptions::default();
        for _ in 0..100 {
            s.send_bytes(&payload, None, &none).await.unwrap();
            r.receive(Some(Duration::from_secs(5)))
                .await
                .unwrap()
                .unwrap();
        }
        let before = thread_allocations();
        for _ in 0..n {
            s.send_bytes(&payload, None, &none).await.unwrap();
        }
        let sent = thread_allocations() - before;
        let before = thread_allocations();
        for _ in 0..n {
            r.receive(Some(Duration::from_secs(5)))
                .await
                .unwrap()
                .unwrap();
        }
        let received = thread_allocations() - before;
        // Native.
        let c = courier::nats::connect([nats.url()]).await.unwrap();
        let mut sub = c.subscribe("alloc.native").await.unwrap();
        c.flush().await.unwrap();
        for _ in 0..100 {
            c.publish("alloc.native", &payload).await.unwrap();
            sub.next().await.unwrap();
        }
        let before = thread_allocations();
        for _ in 0..n {
            c.publish("alloc.native", &payload).await.unwrap();
        }
        let native_sent = thread_allocations() - before;
        let before = thread_allocations();
        for _ in 0..n {
            sub.next().await.unwrap();
        }
        let native_received = thread_allocations() - before;
        let per = |a: u64| a as f64 / n as f64;
        println!(
            "allocations per 1 KiB message on NATS: facade send {:.1} receive {:.1}; native publish {:.1} next {:.1}",
            per(sent),
            per(received),
            per(native_sent),
            per(native_received)
        );
        // Raw, uncompressed sends reuse the sender's header storage and
        // borrow the payload: none per message (a few over 2,000 at most).
        assert!(per(sent) < 0.05, "facade send: {:.2}", per(sent));
        // Receives hand over views of the message's own header block and
        // payload (no copies): none per message either.
        assert!(per(received) < 0.05, "facade receive: {:.2}", per(received));
    });
}

async fn facade_round(uri: &str, key: &str, n: usize, payload: &[u8]) -> f64 {
    let mut r = receiver("r", uri, key).await;
    let s = sender(uri, key).await;
    let none = SendOptions::default();
    let t0 = Instant::now();
    let recv = courier::spawn(async move {
        for _ in 0..n {
            r.receive(Some(Duration::from_secs(30)))
                .await
                .unwrap()
                .unwrap();
        }
        r.stop().await;
    });
    for _ in 0..n {
        s.send_bytes(payload, None, &none).await.unwrap();
    }
    let sent_in = t0.elapsed();
    recv.await.unwrap();
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    println!(
        "  facade: sends done after {sent_in:?}, all received after {:?}",
        t0.elapsed()
    );
    s.stop(Duration::from_secs(10)).await.unwrap();
    rate
}

async fn native_round(url: &str, key: &str, n: usize, payload: &[u8]) -> f64 {
    let sc = courier::nats::connect([url]).await.unwrap();
    let mut sub = sc.subscribe(key).await.unwrap();
    sc.flush().await.unwrap();
    let c = courier::nats::connect([url]).await.unwrap();
    let t0 = Instant::now();
    let recv = courier::spawn(async move {
        for _ in 0..n {
            sub.next().await.unwrap();
        }
    });
    for _ in 0..n {
        c.publish(key, payload).await.unwrap();
    }
    let sent_in = t0.elapsed();
    recv.await.unwrap();
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    println!(
        "  native: publishes done after {sent_in:?}, all received after {:?}",
        t0.elapsed()
    );
    c.close().await.unwrap();
    sc.close().await.unwrap();
    rate
}

/// msgs/s through the facade and the native client, interleaved rounds,
/// median of the per-round ratios (noisy on a shared 2-core machine).
#[test]
#[ignore]
fn throughput_facade_vs_native_nats_1kib() {
    let nats = NatsServer::start();
    let uri = format!("nats-pubsub://127.0.0.1:{}", nats.port());
    let url = nats.url();
    let n = 50_000;
    let payload = vec![b'x'; KIB];
    courier::run(async {
        let mut ratios = Vec::new();
        for round in 0..5 {
            let key = format!("perf.{round}");
            let native = native_round(&url, &key, n, &payload).await;
            let facade = Box::pin(facade_round(&uri, &key, n, &payload)).await;
            println!(
                "round {round}: native {native:.0} msgs/s, facade {facade:.0} msgs/s, ratio {:.2}",
                facade / native
            );
            ratios.push(facade / native);
        }
        ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "facade/native median {:.2} (min {:.2}, max {:.2}) over {} rounds of {n} x 1 KiB",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len()
        );
    });
}

/// Instruction-count harness (not a measurement by itself): run it under
/// callgrind twice, with `MOM_PROFILE_N=N` and `2N`, and divide the
/// difference by N to get instructions per message; see
/// `scripts/mom_profile.sh`. `MOM_PROFILE=facade|native`,
/// `MOM_PROFILE_RECV=0` sends to a subject nobody reads (send path only),
/// `MOM_PROFILE_NATS=nats://..` an external server (so that valgrind
/// counts only this process).
#[test]
#[ignore]
fn instructions_profile() {
    let n: usize = std::env::var("MOM_PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let facade = std::env::var("MOM_PROFILE").as_deref() != Ok("native");
    let recv = std::env::var("MOM_PROFILE_RECV").as_deref() != Ok("0");
    let own;
    let url = match std::env::var("MOM_PROFILE_NATS") {
        Ok(u) => u,
        Err(_) => {
            own = NatsServer::start();
            own.url()
        }
    };
    let payload = vec![b'x'; KIB];
    courier::run(async {
        const BATCH: usize = 100;
        if facade {
            let uri = format!("nats-pubsub://{}", url.trim_start_matches("nats://"));
            let mut r = receiver("r", &uri, "prof.read").await;
            let key = if recv { "prof.read" } else { "prof.nobody" };
            let s = sender(&uri, key).await;
            let none = SendOptions::default();
            for _ in 0..n / BATCH {
                for _ in 0..BATCH {
                    s.send_bytes(&payload, None, &none).await.unwrap();
                }
                if recv {
                    for _ in 0..BATCH {
                        let d = r.receive(Some(Duration::from_secs(5))).await.unwrap();
                        assert_eq!(d.unwrap().payload.len(), KIB);
                    }
                }
            }
            s.stop(Duration::from_secs(5)).await.unwrap();
        } else {
            let c = courier::nats::connect([url.as_str()]).await.unwrap();
            let rc = courier::nats::connect([url.as_str()]).await.unwrap();
            let mut sub = rc.subscribe("prof.read").await.unwrap();
            rc.flush().await.unwrap();
            let key = if recv { "prof.read" } else { "prof.nobody" };
            for _ in 0..n / BATCH {
                for _ in 0..BATCH {
                    c.publish(key, &payload).await.unwrap();
                }
                if recv {
                    for _ in 0..BATCH {
                        assert_eq!(sub.next().await.unwrap().payload.len(), KIB);
                    }
                }
            }
            c.flush().await.unwrap();
        }
    });
}
