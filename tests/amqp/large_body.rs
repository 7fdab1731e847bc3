//! Large bodies published without a transmit buffer of their size: the
//! core writes the method and header frames, the runtime writes the body
//! frames straight from the caller's bytes (`Channel::publish_bytes`; a
//! `publish_with` body too large for the buffer is copied once and goes
//! the same way). Checked against RabbitMQ: confirmed, counted by the
//! broker, received whole and byte-exact, and nothing of the same channel
//! between a body's frames (RabbitMQ would close the connection with 505).

use std::time::Duration;

use courier::amqp::{ConnectOptions, Connection, DeclareOptions};
use courier_core::amqp::{ConsumeFlags, FieldTable, Properties, PublishFlags};
use courier_tests::RabbitMq;

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    courier::run(f)
}

/// `n` bytes of a pattern that is not periodic at frame sizes.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i % 251) as u8).wrapping_mul(3).wrapping_add(seed))
        .collect()
}

/// Receives `count` messages from `queue` on a connection whose receive
/// buffer holds `rx` bytes; returns their bodies in order (acked).
async fn receive(url: &str, queue: &str, count: usize, rx: usize) -> Vec<Vec<u8>> {
    let mut o = ConnectOptions::new(url);
    o.rx_capacity = rx;
    let conn = Connection::connect_with(o).await.unwrap();
    let ch = conn.channel().await.unwrap();
    let mut c = ch.consume(queue, ConsumeFlags::default()).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..count {
        let m = tokio::time::timeout(Duration::from_secs(60), c.next())
            .await
            .expect("a message within 60 s")
            .expect("stream open")
            .expect("a message");
        out.push(m.body.clone());
        m.ack().unwrap();
    }
    conn.flush().await.unwrap();
    conn.close().await.unwrap();
    out
}

#[test]
fn a_64_mib_body_is_published_with_the_default_transmit_buffer_and_arrives_byte_exact() {
    let vh = broker().vhost("large64");
    let url = broker().url(&vh);
    let defaults = ConnectOptions::new(&url);
    assert!(
        defaults.tx_capacity < 10 << 20,
        "the default buffer is smaller than the bodies"
    );
    run(async {
        let conn = Connection::connect(&url).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("big", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let props = Properties::default().content_type("application/octet-stream");
        // Handed over as bytes: written from them, no copy.
        ch.publish_bytes(
            "",
            "big",
            PublishFlags::default(),
            &props,
            pattern(64 << 20, 1),
        )
        .await
        .unwrap()
        .await
        .expect("the broker confirms the 64 MiB message");
        // Borrowed: copied once, then the same vectored path.
        ch.publish_with(
            "",
            "big",
            PublishFlags::default(),
            &props,
            &pattern(10 << 20, 2),
        )
        .await
        .unwrap()
        .await
        .expect("the broker confirms the 10 MiB message");
        // A small one after them on the same channel still goes the usual way.
        ch.publish("", "big", &props, b"after").await.unwrap();
        assert!(conn.error().is_none());
        conn.close().await.unwrap();
        let (ready, _, _) = broker().wait_queue(&vh, "big", |c| c.0 == 3);
        assert_eq!(ready, 3, "the broker holds all three");
        let bodies = receive(&url, "big", 3, 72 << 20).await;
        assert_eq!(bodies[0].len(), 64 << 20);
        assert!(bodies[0] == pattern(64 << 20, 1), "64 MiB body byte-exact");
        assert!(bodies[1] == pattern(10 << 20, 2), "10 MiB body byte-exact");
        assert_eq!(bodies[2], b"after");
    });
}

#[test]
fn small_publishes_on_the_same_channel_while_a_large_body_is_written_queue_behind_it() {
    // On one channel a content's frames must follow each other with nothing
    // between them: a small publish slipped between a large body's header
    // and its body frames makes RabbitMQ close the connection (505
    // UNEXPECTED_FRAME). The small ones are queued while the bodies are
    // being written, so this fails unless they wait behind them.
    let vh = broker().vhost("largemix");
    let url = broker().url(&vh);
    run(async {
        let conn = Connection::connect(&url).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        for q in ["big", "small"] {
            ch.queue_declare(q, DeclareOptions::default(), FieldTable::EMPTY)
                .await
                .unwrap();
        }
        let props = Properties::default();
        let large = async {
            let mut confirms = Vec::new();
            for seed in 0..3u8 {
                let c = ch
                    .publish_bytes(
                        "",
                        "big",
                        PublishFlags::default(),
                        &props,
                        pattern(20 << 20, seed),
                    )
                    .await
                    .unwrap();
                confirms.push(c);
            }
            for c in confirms {
                c.await.expect("large body confirmed");
            }
        };
        let many = async {
            let mut confirms = Vec::new();
            for i in 0..500u32 {
                let c = ch
                    .publish_with(
                        "",
                        "small",
                        PublishFlags::default(),
                        &props,
                        &i.to_be_bytes(),
                    )
                    .await
                    .unwrap();
                confirms.push(c);
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for c in confirms {
                c.await.expect("small message confirmed");
            }
        };
        tokio::join!(large, many);
        assert!(
            conn.error().is_none(),
            "no 505 UNEXPECTED_FRAME: {:?}",
            conn.error()
        );
        conn.close().await.unwrap();
        assert_eq!(broker().wait_queue(&vh, "big", |c| c.0 == 3).0, 3);
        assert_eq!(broker().wait_queue(&vh, "small", |c| c.0 == 500).0, 500);
        let bodies = receive(&url, "big", 3, 24 << 20).await;
        for (seed, b) in bodies.iter().enumerate() {
            assert!(
                *b == pattern(20 << 20, seed as u8),
                "body {seed} byte-exact, in order"
            );
        }
        let smalls = receive(&url, "small", 500, 1 << 20).await;
        for (i, b) in smalls.iter().enumerate() {
            assert_eq!(
                b.as_slice(),
                (i as u32).to_be_bytes(),
                "small messages in order"
            );
        }
    });
}

#[test]
fn a_large_body_over_amqps_is_sealed_in_pieces_and_arrives_byte_exact() {
    let vh = broker().vhost("largetls");
    run(async {
        let o = ConnectOptions::new(&broker().tls_url(&vh))
            .with_ca_file(broker().pki_file("ca.pem"))
            .unwrap();
        let conn = Connection::connect_with(o).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("big", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.publish_bytes(
            "",
            "big",
            PublishFlags::default(),
            &Properties::default(),
            pattern(10 << 20, 7),
        )
        .await
        .unwrap()
        .await
        .expect("confirmed over TLS");
        conn.close().await.unwrap();
        let bodies = receive(&broker().url(&vh), "big", 1, 12 << 20).await;
        assert!(bodies[0] == pattern(10 << 20, 7), "byte-exact after TLS");
    });
}
