//! The opening most AMQP tests share: a connection, a channel in confirm
//! mode and a declared queue, and a run of numbered messages published and
//! confirmed. One place instead of a copy per test file.

use courier::amqp::{Channel, Connection, DeclareOptions};
use courier_core::amqp::{FieldTable, Properties};

/// Connects to `url`, opens a channel, puts it in confirm mode and declares
/// `queue` (default options, no arguments).
pub async fn confirmed_queue(url: &str, queue: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url).await.expect("connect");
    let ch = conn.channel().await.expect("open a channel");
    ch.confirm_select().await.expect("confirm.select");
    ch.queue_declare(queue, DeclareOptions::default(), FieldTable::EMPTY)
        .await
        .expect("queue.declare");
    (conn, ch)
}

/// Publishes each number of `numbers` as its 4 big-endian bytes to `queue`
/// through the default exchange, waiting for each publisher confirm.
pub async fn publish_numbers(ch: &Channel, queue: &str, numbers: std::ops::Range<u32>) {
    for i in numbers {
        ch.publish("", queue, &Properties::default(), &i.to_be_bytes())
            .await
            .unwrap_or_else(|e| panic!("publish {i}: {e:?}"));
    }
}
