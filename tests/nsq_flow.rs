//! Volume and flow control against real nsqd: 10k messages consumed
//! exactly once per channel, and max_in_flight never exceeded with one,
//! three, and more nsqd nodes than max_in_flight.

mod nsq_support;

use std::time::Duration;

use courier::nsq::{Config, Consumer, Producer, ServerNodes};
use courier_tests::Nsqd;
use nsq_support::{topic, wait_until, Behaviour, Recorder};

#[test]
fn ten_thousand_messages_consumed_exactly_once_on_each_of_two_channels() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("tenk");
    const N: usize = 10_000;
    courier::run(async {
        // Two consumers per channel share the channel's messages; each
        // channel gets every message.
        let mut consumers = Vec::new();
        for channel in ["alpha", "beta"] {
            for _ in 0..2 {
                consumers.push(
                    Consumer::builder(
                        [(topic.as_str(), channel)],
                        ServerNodes::new([nsqd.tcp_addr()]),
                        200,
                        Recorder::new(Behaviour {
                            count_only: true,
                            ..Default::default()
                        }),
                    )
                    .start()
                    .await
                    .unwrap(),
                );
            }
        }
        // Both channels exist before publishing (nsqd copies a message only
        // to the channels the topic has when it arrives).
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let bodies: Vec<Vec<u8>> = (0..N).map(|i| format!("msg-{i}").into_bytes()).collect();
        for batch in bodies.chunks(500) {
            producer.multi_publish(&topic, batch).await.unwrap();
        }
        let total = || {
            consumers
                .iter()
                .map(|c| c.handler().handled.get())
                .sum::<u64>()
        };
        assert!(
            wait_until(Duration::from_secs(60), || total() >= 2 * N as u64).await,
            "consumed {} of {}",
            total(),
            2 * N
        );
        // Settle: nothing more should arrive (no duplicates).
        tokio::time::sleep(Duration::from_millis(500)).await;
        for channel in ["alpha", "beta"] {
            let mut counts = std::collections::HashMap::<Vec<u8>, u32>::new();
            for c in &consumers {
                for ((ch, body), n) in c.handler().counts.borrow().iter() {
                    if ch == channel {
                        *counts.entry(body.clone()).or_default() += n;
                    }
                }
            }
            assert_eq!(counts.len(), N, "channel {channel}: distinct messages");
            assert!(
                counts.values().all(|&n| n == 1),
                "channel {channel}: some message delivered twice"
            );
        }
        for c in &consumers {
            c.stop().await;
        }
    });
}

/// Publishes `count` messages spread over `nodes`, consumes them with
/// `max_in_flight` and a handler that holds each message a while, and
/// returns the highest concurrency the handler observed.
fn max_in_flight_run(nodes: usize, max_in_flight: u32, count: usize) -> (u32, u32) {
    let nsqds: Vec<Nsqd> = (0..nodes).map(|_| nsq_support::nsqd(&[])).collect();
    let topic = topic("mif");
    courier::run(async {
        for (i, nsqd) in nsqds.iter().enumerate() {
            let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
            let bodies: Vec<Vec<u8>> = (0..count / nodes + 1)
                .map(|k| format!("{i}-{k}").into_bytes())
                .collect();
            producer.multi_publish(&topic, &bodies).await.unwrap();
            producer.stop().await;
        }
        let expected = (count / nodes + 1) * nodes;
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new(nsqds.iter().map(|n| n.tcp_addr())),
            max_in_flight,
            Recorder::new(Behaviour {
                hold: Duration::from_millis(5),
                count_only: true,
                ..Default::default()
            }),
        )
        .start()
        .await
        .unwrap();
        assert_eq!(consumer.connection_count(), nodes);
        let rec = consumer.handler();
        assert!(
            wait_until(Duration::from_secs(120), || rec.handled.get()
                >= expected as u64)
            .await,
            "handled {} of {expected}",
            rec.handled.get()
        );
        let observed = (rec.max_in_flight.get(), consumer.max_seen_in_flight());
        consumer.stop().await;
        observed
    })
}

#[test]
fn max_in_flight_holds_with_one_nsqd() {
    let (handler_max, controller_max) = max_in_flight_run(1, 8, 400);
    assert!(handler_max <= 8, "handler saw {handler_max} > 8 in flight");
    assert!(
        controller_max <= 8,
        "controller counted {controller_max} > 8"
    );
    assert!(handler_max >= 2, "concurrency was used ({handler_max})");
}

#[test]
fn max_in_flight_holds_with_three_nsqd() {
    let (handler_max, controller_max) = max_in_flight_run(3, 8, 600);
    assert!(handler_max <= 8, "handler saw {handler_max} > 8 in flight");
    assert!(
        controller_max <= 8,
        "controller counted {controller_max} > 8"
    );
}

#[test]
fn max_in_flight_holds_with_more_nsqd_than_max_in_flight() {
    // 5 nodes, max_in_flight 2: RDY rotates between connections; every
    // node's messages are consumed (no starvation) and at most 2 are ever
    // in flight.
    let (handler_max, controller_max) = max_in_flight_run(5, 2, 100);
    assert!(handler_max <= 2, "handler saw {handler_max} > 2 in flight");
    assert!(
        controller_max <= 2,
        "controller counted {controller_max} > 2"
    );
}
