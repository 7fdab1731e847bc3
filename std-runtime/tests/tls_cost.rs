//! What TLS costs the NATS client, measured against a real nats-server with
//! a generated CA: heap allocations per message on the publish and
//! receive paths over TLS (rustls allocates per record batch, not per
//! message), and the TLS connect time (p50/p90 over 100 connects, printed,
//! not asserted: timings belong in the report, and this machine is shared).
//!
//! `cargo test -p courier --test tls_cost -- --nocapture` prints the figures.
//! One test per binary: the allocation counter is process-wide.

use std::time::{Duration, Instant};

use courier::nats::ConnectOptions;
use courier_tests::alloc_count::{process_allocations, CountingAlloc};
use courier_tests::certs::TestPki;
use courier_tests::NatsServer;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    process_allocations()
}

const MESSAGES: u64 = 100_000;

#[test]
fn allocations_per_message_and_handshake_time_over_tls() {
    let pki = TestPki::generate();
    let config = pki.nats_config("s.conf", "", false, "");
    let server = NatsServer::start_with(&["-c", config.to_str().unwrap()]);
    let url = server.url();
    let ca = pki.ca_file.clone();
    courier::run(async move {
        let options = || ConnectOptions::new().tls_ca_file(&ca).unwrap();
        let client = options().connect([url.as_str()]).await.unwrap();
        let payload = [b'x'; 16];
        for _ in 0..10_000 {
            client.publish("alloc.pub", payload).await.unwrap();
        }
        client.flush().await.unwrap();
        let before = allocations();
        let io_before = courier::stats();
        for _ in 0..MESSAGES {
            client.publish("alloc.pub", payload).await.unwrap();
        }
        client.flush().await.unwrap();
        let publish_allocs = allocations() - before;
        let io = courier::stats();
        println!(
            "over TLS, publishing {MESSAGES} 16-byte messages (36 plaintext bytes each): \
             {} writes, {} reads, {} bytes on the wire (TLS records included)",
            io.writes - io_before.writes,
            io.reads - io_before.reads,
            io.bytes_written - io_before.bytes_written,
        );

        let mut sub = client.subscribe("alloc.sub").await.unwrap();
        client.flush().await.unwrap();
        let mut receive_allocs = 0;
        for round in 0..2 {
            let batch = if round == 0 { 20_000 } else { MESSAGES };
            let before = allocations();
            let mut received = 0u64;
            for sent in 0..batch {
                client.publish("alloc.sub", payload).await.unwrap();
                if sent % 1000 == 999 {
                    while sub.pending() > 0 {
                        assert_eq!(sub.next().await.unwrap().payload.len(), 16);
                        received += 1;
                    }
                }
            }
            while received < batch {
                assert_eq!(sub.next().await.unwrap().payload.len(), 16);
                received += 1;
            }
            if round == 1 {
                receive_allocs = allocations() - before;
            }
        }
        let publish_per_msg = publish_allocs as f64 / MESSAGES as f64;
        let both_per_msg = receive_allocs as f64 / MESSAGES as f64;
        println!(
            "over TLS, allocations per 16-byte message: publish {publish_per_msg:.4} \
             ({publish_allocs} in {MESSAGES}), publish+receive {both_per_msg:.4} \
             ({receive_allocs} in {MESSAGES})"
        );
        client.close().await.unwrap();

        // TLS connect: TCP + INFO + TLS 1.3 handshake + CONNECT/PING/PONG.
        let mut times = Vec::new();
        for _ in 0..100 {
            let options = options();
            let start = Instant::now();
            let c = options.connect([url.as_str()]).await.unwrap();
            times.push(start.elapsed());
            c.close().await.unwrap();
        }
        times.sort();
        let p = |q: usize| times[q.min(times.len() - 1)];
        println!(
            "TLS connect (TCP + INFO + TLS 1.3 handshake + CONNECT/PONG) over 100 connects: \
             p50 {:?}, p90 {:?}, max {:?} (noisy shared machine, debug build)",
            p(50),
            p(90),
            p(99)
        );
        assert!(times.iter().all(|t| *t < Duration::from_secs(10)));

        // rustls appends one owned Vec per encrypted batch and per decrypted
        // record batch, never per message: far below one per message.
        assert!(
            publish_per_msg < 0.05,
            "publish over TLS allocates {publish_per_msg} per message"
        );
        assert!(
            both_per_msg < 0.2,
            "publish+receive over TLS allocates {both_per_msg} per message"
        );
    });
}
