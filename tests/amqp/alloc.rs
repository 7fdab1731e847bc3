//! Heap allocations per message on courier's AMQP publish-with-confirms and
//! consume paths in steady state, counted by a global allocator on the
//! runtime's thread, against a real RabbitMQ. The target is 0:
//! publish with confirms (a reused confirm slot per publish) and the
//! borrowed-delivery consumer (`consume_with`) must allocate nothing; the
//! owned `Message` stream copies body and routing key (bounded). Prints the
//! numbers (`cargo test -p courier-tests --test amqp alloc:: -- --nocapture`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::amqp::{Connection, DeclareOptions, Settle};
use courier_core::amqp::{ConsumeFlags, FieldTable, Properties, PublishFlags};
use courier_tests::alloc_count::thread_allocations;
use courier_tests::RabbitMq;

fn allocations() -> u64 {
    thread_allocations()
}

const N: u64 = 10_000;
const WINDOW: usize = 1_000;

async fn publish(
    ch: &courier::amqp::Channel,
    window: &mut VecDeque<courier::amqp::Confirmation>,
    n: u64,
) {
    let props = Properties::default();
    let body = [7u8; 16];
    for _ in 0..n {
        let c = ch
            .publish_with("", "q", PublishFlags::default(), &props, &body)
            .await
            .unwrap();
        window.push_back(c);
        if window.len() >= WINDOW {
            window.pop_front().unwrap().await.unwrap();
        }
    }
    while let Some(c) = window.pop_front() {
        c.await.unwrap();
    }
}

#[test]
fn allocations_per_message_on_publish_with_confirms_and_consume() {
    let broker = RabbitMq::shared();
    let vh = broker.vhost("alloc");
    courier::run(async {
        let conn = Connection::connect(&broker.url(&vh)).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let mut window = VecDeque::with_capacity(WINDOW + 1);
        publish(&ch, &mut window, 2_000).await; // warm-up: buffers, maps and the window reach size
        let (a0, t0) = (allocations(), Instant::now());
        publish(&ch, &mut window, N).await;
        let (pub_allocs, pub_time) = (allocations() - a0, t0.elapsed());
        // A second batch for the handler consumer below.
        publish(&ch, &mut window, N + 2_000).await;

        let sub = conn.channel().await.unwrap();
        sub.qos(1_000).await.unwrap();
        let mut c = sub.consume("q", ConsumeFlags::default()).await.unwrap();
        for _ in 0..2_000 {
            c.next().await.unwrap().unwrap().ack().unwrap();
        }
        let (a0, t0) = (allocations(), Instant::now());
        for _ in 0..N {
            let m = tokio::time::timeout(Duration::from_secs(20), c.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            m.ack().unwrap();
        }
        let (sub_allocs, sub_time) = (allocations() - a0, t0.elapsed());
        c.cancel().await.unwrap();
        // After the cancel the stream ends once what was prefetched is
        // read: hand those back to the queue for the handler below.
        let mut requeued = 0;
        while let Some(m) = c.next().await {
            m.unwrap().nack(true).unwrap();
            requeued += 1;
        }
        assert!(requeued <= 1_000, "prefetch 1000 bounds what was in flight");

        // Borrowed deliveries: a handler on another channel takes the
        // second batch; counts start after its first 2,000.
        let seen = Rc::new(Cell::new(0u64));
        let bytes = Rc::new(Cell::new(0u64));
        let start = Rc::new(Cell::new((0u64, Instant::now())));
        let borrowed = conn.channel().await.unwrap();
        borrowed.qos(1_000).await.unwrap();
        let (s, b, st) = (seen.clone(), bytes.clone(), start.clone());
        let h = borrowed
            .consume_with("q", ConsumeFlags::default(), move |d| {
                s.set(s.get() + 1);
                b.set(b.get() + d.body.len());
                if s.get() == 2_000 {
                    st.set((allocations(), Instant::now()));
                }
                Settle::Ack
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.get() < N + 2_000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (a0, t0) = start.get();
        let (handler_allocs, handler_time) = (allocations() - a0, t0.elapsed());
        assert_eq!(seen.get(), N + 2_000, "every message reached the handler");
        assert_eq!(bytes.get(), (N + 2_000) * 16, "every body arrived whole");
        h.cancel().await.unwrap();
        conn.flush().await.unwrap();
        // Every handler answer reached the broker: nothing left unacked.
        let (ready, unacked, _) = broker.wait_queue(&vh, "q", |(r, u, _)| r == 0 && u == 0);
        assert_eq!((ready, unacked), (0, 0));

        let per_pub = pub_allocs as f64 / N as f64;
        let per_sub = sub_allocs as f64 / N as f64;
        let per_handler = handler_allocs as f64 / N as f64;
        eprintln!(
            "amqp 16 B, debug build, shared loaded machine (noise): publish with confirms (window {WINDOW}): \
             {per_pub:.3} allocations/msg, {:.0} msg/s; consume prefetch 1000 + ack, owned Message stream: \
             {per_sub:.3} allocations/msg, {:.0} msg/s; borrowed handler (consume_with): {per_handler:.3} allocations/msg, {:.0} msg/s",
            N as f64 / pub_time.as_secs_f64(),
            N as f64 / sub_time.as_secs_f64(),
            N as f64 / handler_time.as_secs_f64()
        );
        // Steady state: the confirm slab and the handler path allocate
        // nothing per message (a few growth steps of shared buffers over
        // 10,000 messages are tolerated, not one per message).
        assert!(per_pub < 0.01, "publish: {per_pub} allocations per message");
        assert!(
            per_handler < 0.01,
            "handler consume: {per_handler} allocations per message"
        );
        // The owned stream copies the body and routing key into a Message.
        assert!(per_sub <= 3.0, "consume: {per_sub} allocations per message");
        conn.flush().await.unwrap();
        conn.close().await.unwrap();
    });
}
