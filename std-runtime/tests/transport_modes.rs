//! The io_uring variants under the real NATS client: pub/sub through a
//! nats-server on a free loopback port, with small messages and payloads
//! large enough to take the registered-buffer refills and the zero-copy
//! path. The counters show the variant really carried the bytes.
//!
//! Every wait is bounded, so a broken transport fails instead of hanging.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use courier::nats::{self, Message, Subscriber};
use courier::{BackendChoice, Runtime, Transport};
use courier_tests::NatsServer;

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing happened within 20 s"))
}

async fn next(sub: &mut Subscriber) -> Message {
    within("next message", sub.next())
        .await
        .expect("subscription ended early")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// 100 small publishes, then large ones through both write paths (copied
/// into the transmit buffer, and vectored via `publish_bytes`), all
/// received in order with identical bytes on the same client.
async fn pub_sub_scenario(url: String) -> (Transport, courier::Stats) {
    let client = nats::connect([url]).await.unwrap();
    let mut sub = client.subscribe("modes.>").await.unwrap();
    client.flush().await.unwrap();
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..100 {
        let subject = format!("modes.small.{i}");
        let payload = format!("hello {i}").into_bytes();
        client.publish(&subject, &payload).await.unwrap();
        expected.push((subject, payload));
    }
    for i in 0..4u8 {
        let copied = pattern(100 * 1024 + usize::from(i), i);
        client.publish("modes.copied", &copied).await.unwrap();
        expected.push(("modes.copied".into(), copied));
        let vectored = pattern(300 * 1024 + usize::from(i), i + 100);
        client
            .publish_bytes("modes.vectored", None, Bytes::from(vectored.clone()))
            .await
            .unwrap();
        expected.push(("modes.vectored".into(), vectored));
    }
    within("flush", client.flush()).await.unwrap();
    for (n, (subject, payload)) in expected.iter().enumerate() {
        let msg = next(&mut sub).await;
        assert_eq!(msg.subject(), subject, "message {n}");
        assert_eq!(msg.payload.len(), payload.len(), "message {n}");
        assert!(msg.payload[..] == payload[..], "message {n}: bytes differ");
    }
    let transport = courier::current_transport().unwrap();
    let stats = courier::stats();
    client.close().await.unwrap();
    (transport, stats)
}

/// Runs the scenario on `choice`; `None` when io_uring is refused here.
fn run_variant(choice: BackendChoice) -> Option<(Transport, Transport, courier::Stats)> {
    let rt = match Runtime::builder().backend(choice).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("io_uring refused here ({e}); the epoll suite covers NATS");
            return None;
        }
    };
    let at_start = rt.transport();
    let server = NatsServer::start();
    let (ran, stats) = rt.block_on(pub_sub_scenario(server.url()));
    Some((at_start, ran, stats))
}

#[test]
fn nats_pub_sub_on_registered_buffers() {
    let Some((at_start, ran, stats)) = run_variant(BackendChoice::UringFixed) else {
        return;
    };
    assert_eq!(at_start, ran);
    if ran == Transport::Uring {
        eprintln!("buffer registration refused here; ran plain io_uring (logged)");
        return;
    }
    assert_eq!(ran, Transport::UringFixedBuffers);
    assert!(stats.fixed_buffer_ops > 0, "{stats:?}");
    assert_eq!(stats.zero_copy_sends, 0);
}

#[test]
fn nats_pub_sub_on_zero_copy_send() {
    let Some((at_start, ran, stats)) = run_variant(BackendChoice::UringZeroCopy) else {
        return;
    };
    assert_eq!(at_start, ran);
    if ran == Transport::Uring {
        eprintln!("SEND_ZC refused here; ran plain io_uring (logged)");
        return;
    }
    assert_eq!(ran, Transport::UringZeroCopySend);
    // At least the four 300 KiB vectored publishes went zero-copy.
    assert!(stats.zero_copy_sends >= 4, "{stats:?}");
    assert_eq!(stats.fixed_buffer_ops, 0);
}

#[test]
fn nats_pub_sub_on_plain_io_uring_reports_it() {
    let Some((at_start, ran, stats)) = run_variant(BackendChoice::Uring) else {
        return;
    };
    assert_eq!(at_start, Transport::Uring);
    assert_eq!(ran, Transport::Uring);
    assert_eq!(stats.fixed_buffer_ops + stats.zero_copy_sends, 0);
}
