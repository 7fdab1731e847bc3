//! A publish whose frames fit the transmit buffer waits for the writer to
//! make room when the buffer is full of pending bytes; it never fails with
//! `BufferFull` (the defect: the room check counted the bytes already
//! pending as if the message could never fit). Tight loops of 1 KiB
//! publishes on a small transmit buffer, counted by RabbitMQ's management
//! API.

use courier::amqp::{Confirmation, ConnectOptions, Connection, DeclareOptions};
use courier_core::amqp::{FieldTable, Properties, PublishFlags};
use courier_tests::RabbitMq;

/// How many publishes each loop makes. What it must exceed: the transmit
/// buffer holds about 61 of these frames (the defect failed publish 61),
/// so any N well past 61 reaches the full-buffer path; 10,000 fills the
/// buffer about 160 times over, and its 10 MiB also exceed the kernel's
/// send buffer (`tcp_wmem` max 4 MiB here) plus the buffer, so the writer
/// itself waits on TCP back-pressure from the broker, not only on the
/// publishing loop. 50,000 (the first version) proved nothing more and
/// took five times as long.
const N: usize = 10_000;
const KIB: usize = 1024;
/// Small enough that the loop below fills it many times over.
const TX: usize = 64 * KIB;

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

/// A message body that names its index (to check order and content).
fn body(i: usize) -> Vec<u8> {
    let mut b = format!("{i:08}").into_bytes();
    b.resize(KIB, b'.');
    b
}

async fn small_tx_channel(url: &str, confirms: bool) -> (Connection, courier::amqp::Channel) {
    let mut o = ConnectOptions::new(url);
    o.tx_capacity = TX;
    let conn = Connection::connect_with(o).await.unwrap();
    let ch = conn.channel().await.unwrap();
    if confirms {
        ch.confirm_select().await.unwrap();
    }
    ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
        .await
        .unwrap();
    (conn, ch)
}

#[test]
fn ten_thousand_1kib_publishes_with_confirms_wait_for_room_and_are_all_confirmed() {
    let vh = broker().vhost("room_confirm");
    let url = broker().url(&vh);
    courier::run(async {
        let (conn, ch) = small_tx_channel(&url, true).await;
        let props = Properties::default();
        // No confirm awaited between publishes: the transmit buffer fills.
        let mut pending: Vec<Confirmation> = Vec::with_capacity(N);
        for i in 0..N {
            let c = ch
                .publish_with("", "q", PublishFlags::default(), &props, &body(i))
                .await
                .unwrap_or_else(|e| panic!("publish {i} failed instead of waiting: {e:?}"));
            pending.push(c);
        }
        let mut confirmed = 0;
        for (i, c) in pending.into_iter().enumerate() {
            c.await
                .unwrap_or_else(|e| panic!("publish {i} not confirmed: {e:?}"));
            confirmed += 1;
        }
        assert_eq!(confirmed, N);
        assert!(conn.error().is_none());
        conn.close().await.unwrap();
    });
    let (ready, _, _) = broker().wait_queue(&vh, "q", |c| c.0 == N as u64);
    assert_eq!(ready, N as u64, "the broker holds every confirmed message");
}

#[test]
fn ten_thousand_1kib_publishes_without_confirms_wait_for_room_and_all_arrive() {
    let vh = broker().vhost("room_noconfirm");
    let url = broker().url(&vh);
    courier::run(async {
        let (conn, ch) = small_tx_channel(&url, false).await;
        let props = Properties::default();
        for i in 0..N {
            ch.publish_with("", "q", PublishFlags::default(), &props, &body(i))
                .await
                .unwrap_or_else(|e| panic!("publish {i} failed instead of waiting: {e:?}"))
                .await
                .unwrap();
        }
        conn.flush().await.unwrap();
        assert!(conn.error().is_none());
        conn.close().await.unwrap();
    });
    let (ready, _, _) = broker().wait_queue(&vh, "q", |c| c.0 == N as u64);
    assert_eq!(
        ready, N as u64,
        "at-most-once, but nothing lost on a healthy link"
    );
}

#[test]
fn a_publish_larger_than_a_small_transmit_buffer_still_goes_out() {
    // Larger than the buffer (the large-body path), not a BufferFull loop
    // nor a BufferFull error.
    let vh = broker().vhost("room_big");
    let url = broker().url(&vh);
    courier::run(async {
        let (conn, ch) = small_tx_channel(&url, true).await;
        let props = Properties::default();
        let big = vec![7u8; TX + KIB];
        ch.publish_with("", "q", PublishFlags::default(), &props, &big)
            .await
            .unwrap()
            .await
            .expect("confirmed");
        conn.close().await.unwrap();
    });
    let (ready, _, _) = broker().wait_queue(&vh, "q", |c| c.0 == 1);
    assert_eq!(ready, 1);
}
