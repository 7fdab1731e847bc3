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

/// Prints each paired round and the median of the per-round ratios
/// facade/native with its spread (min, max).
fn report(backend: &str, n: usize, pairs: &[(f64, f64)]) {
    let mut ratios: Vec<f64> = pairs.iter().map(|(nat, fac)| fac / nat).collect();
    for (round, (nat, fac)) in pairs.iter().enumerate() {
        println!(
            "{backend} round {round}: native {nat:.0} msgs/s, facade {fac:.0} msgs/s, ratio {:.2}",
            fac / nat
        );
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{backend}: facade/native median {:.2} (min {:.2}, max {:.2}) over {} paired rounds of {n} x 1 KiB",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
        ratios.len()
    );
}

fn rounds() -> usize {
    std::env::var("MOM_PERF_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
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
        let mut pairs = Vec::new();
        for round in 0..rounds() {
            let key = format!("perf.{round}");
            let native = native_round(&url, &key, n, &payload).await;
            let facade = Box::pin(facade_round(&uri, &key, n, &payload)).await;
            pairs.push((native, facade));
        }
        report("NATS core pubsub", n, &pairs);
    });
}

/// Native NSQ: a producer (each PUB waits for nsqd's OK, as the facade's
/// send does) and a consumer whose handler counts.
async fn nsq_native_round(addr: &str, topic: &str, n: usize, payload: &[u8]) -> f64 {
    use courier::nsq::{Config, Consumer, Handler, HandlerError, Message, Producer, ServerNodes};
    use std::cell::Cell;
    use std::rc::Rc;
    struct Count(Rc<Cell<usize>>, Rc<tokio::sync::Notify>, usize);
    impl Handler for Count {
        type Class = ();
        type Context = ();
        fn classify(&self, _: &Message) -> Option<((), ())> {
            Some(((), ()))
        }
        async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
            assert_eq!(m.body().len(), KIB);
            self.0.set(self.0.get() + 1);
            if self.0.get() == self.2 {
                self.1.notify_one();
            }
            Ok(())
        }
    }
    let got = Rc::new(Cell::new(0));
    let done = Rc::new(tokio::sync::Notify::new());
    let consumer = Consumer::builder(
        [(topic.to_string(), "native#ephemeral".to_string())],
        ServerNodes::new(vec![addr.to_string()]),
        100,
        Count(got.clone(), done.clone(), n),
    )
    .start()
    .await
    .unwrap();
    let p = Producer::new(vec![addr.to_string()], Config::default()).unwrap();
    p.connect().await.unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        p.publish(topic, payload).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), done.notified())
        .await
        .unwrap_or_else(|_| panic!("native NSQ: {} of {n}", got.get()));
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    p.stop().await;
    consumer.stop().await;
    rate
}

/// NSQ: facade (envelope in the body, `nsq-pubsub`) vs the native
/// producer/consumer, same nsqd, 1 KiB.
#[test]
#[ignore]
fn throughput_facade_vs_native_nsq_1kib() {
    let nsqd = courier_tests::Nsqd::start();
    let addr = nsqd.tcp_addr();
    let uri = format!("nsq-pubsub://{addr}");
    let n = 10_000;
    let payload = vec![b'x'; KIB];
    courier::run(async {
        let mut pairs = Vec::new();
        for round in 0..rounds() {
            let native = nsq_native_round(&addr, &format!("nperf{round}"), n, &payload).await;
            let facade = Box::pin(facade_round(&uri, &format!("fperf{round}"), n, &payload)).await;
            pairs.push((native, facade));
        }
        report("NSQ pubsub", n, &pairs);
    });
}

/// Native AMQP: publish to a topic exchange, an exclusive queue consumed
/// without acks (what an `amqp-pubsub` facade receiver does).
async fn amqp_native_round(url: &str, key: &str, n: usize, payload: &[u8]) -> f64 {
    use courier::amqp::{Connection, DeclareOptions};
    use courier_core::amqp::{ConsumeFlags, FieldTable, Properties};
    let conn = Connection::connect(url).await.unwrap();
    let ch = conn.channel().await.unwrap();
    ch.exchange_declare("native", "topic", DeclareOptions::default())
        .await
        .unwrap();
    let opts = DeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare("", opts, FieldTable::EMPTY)
        .await
        .unwrap()
        .name;
    ch.queue_bind(&q, "native", key, FieldTable::EMPTY)
        .await
        .unwrap();
    let flags = ConsumeFlags {
        no_ack: true,
        exclusive: false,
    };
    let mut consumer = ch.consume(&q, flags).await.unwrap();
    let pconn = Connection::connect(url).await.unwrap();
    let pch = pconn.channel().await.unwrap();
    let t0 = Instant::now();
    let recv = courier::spawn(async move {
        for _ in 0..n {
            let m = consumer.next().await.unwrap().unwrap();
            assert_eq!(m.body.len(), KIB);
        }
    });
    let props = Properties::default();
    for _ in 0..n {
        pch.publish("native", key, &props, payload).await.unwrap();
    }
    recv.await.unwrap();
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let _ = pconn.close().await;
    let _ = conn.close().await;
    rate
}

/// AMQP: facade (`amqp-pubsub`, properties + headers table) vs native
/// publish/consume on the same RabbitMQ, 1 KiB, no confirms, no acks.
#[test]
#[ignore]
fn throughput_facade_vs_native_amqp_1kib() {
    let broker = courier_tests::RabbitMq::shared();
    let vhost = broker.vhost("mom-perf");
    let url = broker.url(&vhost);
    let uri = url.replacen("amqp://", "amqp-pubsub://", 1);
    let n = 20_000;
    let payload = vec![b'x'; KIB];
    courier::run(async {
        let mut pairs = Vec::new();
        for round in 0..rounds() {
            let key = format!("perf.{round}");
            let native = amqp_native_round(&url, &key, n, &payload).await;
            let facade = Box::pin(facade_round(&uri, &key, n, &payload)).await;
            pairs.push((native, facade));
        }
        report("AMQP pubsub", n, &pairs);
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
