//! Publish with confirms at window 1 (publish, await its confirm, repeat):
//! the publish is the only confirm outstanding on its channel, so its frames
//! are written from the caller's task with one non-blocking `send(2)` while
//! the writer is idle, instead of waking the writer (on io_uring: no write
//! submission and no write completion per round trip). A burst of publishes
//! (window 1,000) still batches through the writer. Counted with the
//! runtime's per-thread syscall counters; the broker's queue depth checks
//! that nothing was lost or doubled.

use courier::amqp::{Confirmation, Connection, DeclareOptions};
use courier::{Backend, BackendChoice, Runtime};
use courier_core::amqp::{FieldTable, Properties, PublishFlags};
use courier_tests::RabbitMq;

/// Round trips at window 1 per backend.
const W1: u64 = 300;
/// Publishes of the burst (none awaited until all are queued).
const BURST: u64 = 2_000;
/// Bytes of one publish of 16 B to "q" on the default exchange: method
/// frame 18 (basic.publish, 10 B of arguments), header frame 22, body
/// frame 24 (each 7 B of frame header and 1 B frame end).
const FRAMES: u64 = 64;

fn runtime(choice: BackendChoice) -> Option<Runtime> {
    match Runtime::builder().backend(choice).build() {
        Ok(rt) => Some(rt),
        // A kernel without io_uring: the epoll run covers the path.
        Err(e) if choice == BackendChoice::Uring => {
            eprintln!("io_uring unavailable here ({e}): skipped");
            None
        }
        Err(e) => panic!("runtime: {e}"),
    }
}

/// Publishes `W1` messages one round trip at a time, then `BURST` without
/// awaiting; returns the counter deltas of both phases.
fn run(choice: BackendChoice, vhost: &str) -> Option<(Backend, courier::Stats, courier::Stats)> {
    let broker = RabbitMq::shared();
    let vh = broker.vhost(vhost);
    let url = broker.url(&vh);
    let rt = runtime(choice)?;
    let backend = rt.backend();
    let (w1, burst) = rt.block_on(async {
        let conn = Connection::connect(&url).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let props = Properties::default();
        let body = [b'w'; 16];
        let before = courier::stats();
        for i in 0..W1 {
            let c = ch
                .publish_with("", "q", PublishFlags::default(), &props, &body)
                .await
                .unwrap();
            c.await
                .unwrap_or_else(|e| panic!("publish {i} not confirmed: {e:?}"));
        }
        let after_w1 = courier::stats();
        let mut pending: Vec<Confirmation> = Vec::with_capacity(BURST as usize);
        for _ in 0..BURST {
            let c = ch
                .publish_with("", "q", PublishFlags::default(), &props, &body)
                .await
                .unwrap();
            pending.push(c);
        }
        for (i, c) in pending.into_iter().enumerate() {
            c.await
                .unwrap_or_else(|e| panic!("burst publish {i} not confirmed: {e:?}"));
        }
        let after_burst = courier::stats();
        assert!(conn.error().is_none());
        conn.close().await.unwrap();
        (delta(&before, &after_w1), delta(&after_w1, &after_burst))
    });
    let (ready, _, _) = broker.wait_queue(&vh, "q", |c| c.0 == W1 + BURST);
    assert_eq!(
        ready,
        W1 + BURST,
        "the broker holds every confirmed message once"
    );
    Some((backend, w1, burst))
}

fn delta(a: &courier::Stats, b: &courier::Stats) -> courier::Stats {
    courier::Stats {
        reads: b.reads - a.reads,
        writes: b.writes - a.writes,
        submissions: b.submissions - a.submissions,
        bytes_read: b.bytes_read - a.bytes_read,
        bytes_written: b.bytes_written - a.bytes_written,
        connects: b.connects - a.connects,
        fixed_buffer_ops: b.fixed_buffer_ops - a.fixed_buffer_ops,
        zero_copy_sends: b.zero_copy_sends - a.zero_copy_sends,
    }
}

/// Checks both phases' counters for one backend.
fn check(choice: BackendChoice, vhost: &str) {
    let Some((backend, w1, burst)) = run(choice, vhost) else {
        return;
    };
    eprintln!("{backend}: window 1 {w1:?}; burst {burst:?}");
    // Every publish on the wire once (a heartbeat, 8 bytes, may go too).
    let extra = w1.bytes_written - W1 * FRAMES;
    assert!(
        extra.is_multiple_of(8) && extra <= 24,
        "{backend}: {} bytes written for {W1} publishes of {FRAMES}",
        w1.bytes_written
    );
    // One write per round trip (the direct send), a few spare for a
    // heartbeat; the writer task would also have made one each, but as a
    // submission.
    assert!(
        w1.writes >= W1 && w1.writes <= W1 + 3,
        "{backend}: {} writes for {W1} publishes at window 1",
        w1.writes
    );
    if backend == Backend::Uring {
        // Only the reads are submitted to the ring: no write SQE per publish
        // (it was one read + one write SQE per round trip before).
        assert!(
            w1.submissions <= w1.reads + 3,
            "{backend}: {} submissions, {} reads: writes went through the ring",
            w1.submissions,
            w1.reads
        );
    }
    // The burst is not written one publish per syscall.
    let extra = burst.bytes_written - BURST * FRAMES;
    assert!(
        extra.is_multiple_of(8) && extra <= 24,
        "{backend}: burst bytes"
    );
    assert!(
        burst.writes < BURST / 4,
        "{backend}: {} writes for a burst of {BURST}: publishes were not batched",
        burst.writes
    );
}

#[test]
fn window_one_publishes_are_sent_from_the_caller_on_io_uring_and_bursts_still_batch() {
    check(BackendChoice::Uring, "w1_uring");
}

#[test]
fn window_one_publishes_are_sent_from_the_caller_on_epoll_and_bursts_still_batch() {
    check(BackendChoice::Epoll, "w1_epoll");
}
