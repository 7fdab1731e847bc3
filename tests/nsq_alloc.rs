//! Heap allocations on courier's NSQ consume path in steady state, counted
//! by a global allocator on the runtime's thread (the only thread courier
//! uses with `ServerNodes`), against a real nsqd.

mod nsq_support;

use std::cell::Cell;
use std::time::Duration;

use courier::nsq::{
    Compression, Config, Consumer, Handler, HandlerError, Message, Producer, ServerNodes,
};
use courier_tests::alloc_count::{thread_allocations, CountingAlloc};
use nsq_support::{topic, wait_until};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    thread_allocations()
}

/// Counts messages and checks the body without allocating.
#[derive(Default)]
struct Count {
    handled: Cell<u64>,
    bytes: Cell<u64>,
}

impl Handler for Count {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &Message) -> Option<((), ())> {
        Some(((), ()))
    }
    async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
        self.handled.set(self.handled.get() + 1);
        self.bytes.set(self.bytes.get() + m.body().len() as u64);
        Ok(())
    }
}

/// Consumes TOTAL messages with `config` on an nsqd started with
/// `nsqd_args`; returns heap allocations per message after WARMUP.
fn allocations_per_consumed_message(nsqd_args: &[&str], config: Config) -> f64 {
    let nsqd = nsq_support::nsqd(nsqd_args);
    let topic = topic("alloc");
    const TOTAL: u64 = 30_000;
    const WARMUP: u64 = 10_000;
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], config.clone()).unwrap();
        let body = [b'x'; 100];
        let batch: Vec<&[u8]> = vec![&body; 1000];
        // The channel exists before the messages arrive.
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            200,
            Count::default(),
        )
        .config(config)
        .start()
        .await
        .unwrap();
        consumer.set_max_in_flight(0);
        for _ in 0..TOTAL / 1000 {
            producer.multi_publish(&topic, &batch).await.unwrap();
        }
        producer.stop().await;
        consumer.set_max_in_flight(200);
        let handled = || consumer.handler().handled.get();
        assert!(wait_until(Duration::from_secs(30), || handled() >= WARMUP).await);
        let (n0, a0) = (handled(), allocations());
        assert!(a0 > 0, "the counting allocator sees this thread");
        assert!(wait_until(Duration::from_secs(60), || handled() >= TOTAL).await);
        let (n1, a1) = (handled(), allocations());
        let per_message = (a1 - a0) as f64 / (n1 - n0) as f64;
        eprintln!(
            "steady state on {:?}: {} allocations for {} messages = {per_message:.4} per message",
            courier::current_backend(),
            a1 - a0,
            n1 - n0
        );
        assert_eq!(consumer.handler().bytes.get(), 100 * handled());
        consumer.stop().await;
        per_message
    })
}

#[test]
fn consuming_allocates_nothing_per_message_in_steady_state() {
    let per_message = allocations_per_consumed_message(&[], Config::default());
    // Bounded, not per message: a handful of buffer growths at most.
    assert!(
        per_message < 0.01,
        "{per_message} allocations per consumed message"
    );
}

#[test]
fn consuming_with_snappy_or_deflate_allocates_nothing_per_message() {
    for compression in [Compression::Snappy, Compression::Deflate { level: 1 }] {
        let config = Config {
            compression,
            ..Config::default()
        };
        let per_message = allocations_per_consumed_message(&["--snappy=true"], config);
        eprintln!("{compression:?}: {per_message:.4} allocations per consumed message");
        assert!(
            per_message < 0.01,
            "{compression:?}: {per_message} per message"
        );
    }
}

#[test]
fn consuming_over_tls_allocates_per_write_not_per_message() {
    let certs = nsq_support::generate_certs();
    let https = format!("--https-address=127.0.0.1:{}", courier_tests::free_port());
    let args = [
        format!("--tls-cert={}", certs.server_cert.display()),
        format!("--tls-key={}", certs.server_key.display()),
        "--tls-required=true".to_string(),
        https,
    ];
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let config = Config {
        tls: Some(
            courier::nsq::TlsConfig::new()
                .ca_pem(certs.ca_pem.as_bytes())
                .unwrap(),
        ),
        ..Config::default()
    };
    let per_message = allocations_per_consumed_message(&args, config);
    // rustls buffers each outgoing record in its own Vec: a few
    // allocations per write batch (many messages), never several per message.
    eprintln!("TLS: {per_message:.4} allocations per consumed message");
    assert!(per_message < 0.25, "TLS: {per_message} per message");
}

#[test]
fn publishing_allocates_nothing_per_message_in_steady_state() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("alloc_pub");
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let body = [b'p'; 100];
        for _ in 0..2_000 {
            producer.publish(&topic, &body).await.unwrap();
        }
        let a0 = allocations();
        const N: u64 = 10_000;
        for _ in 0..N {
            producer.publish(&topic, &body).await.unwrap();
        }
        let per_publish = (allocations() - a0) as f64 / N as f64;
        eprintln!("PUB: {per_publish:.4} allocations per publish");
        producer.stop().await;
        assert!(per_publish < 0.01, "{per_publish} allocations per PUB");
    });
}
