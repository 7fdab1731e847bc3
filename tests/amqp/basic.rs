//! courier's AMQP client against a real RabbitMQ (one node for this test
//! binary, a vhost per test), with the broker's own view checked through
//! the management API: exchanges of every type, pub/sub and point-to-point,
//! QoS, nack/reject, dead-lettering, publisher confirms, returns, server
//! cancels, large messages, refused logins, channel-only errors.
//!
//! The broker checks block the thread (they poll the management API), and
//! the runtime is single-threaded: `conn.flush().await` first, so what the
//! test queued (acks, rejects) is on the wire before the thread blocks.

use std::collections::HashSet;
use std::time::Duration;

use courier::amqp::{Channel, ConnectOptions, Connection, DeclareOptions, Error};
use courier_core::amqp::{
    ConsumeFlags, FieldTable, FieldValue, Properties, PublishFlags, ReplyCode, TableBuilder,
};
use courier_tests::RabbitMq;

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

async fn open(vhost: &str) -> (Connection, Channel) {
    let conn = Connection::connect(&broker().url(vhost))
        .await
        .expect("connect");
    let ch = conn.channel().await.expect("channel");
    (conn, ch)
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    courier::run(f)
}

async fn next_msg(c: &mut courier::amqp::Consumer) -> courier::amqp::Message {
    tokio::time::timeout(Duration::from_secs(20), c.next())
        .await
        .expect("a message within 20 s")
        .expect("stream open")
        .expect("a message, not an error")
}

#[test]
fn publish_and_consume_keep_properties_and_body() {
    let vh = broker().vhost("props");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.exchange_declare("ex", "direct", DeclareOptions::default())
            .await
            .unwrap();
        let q = ch
            .queue_declare(
                "",
                DeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::EMPTY,
            )
            .await
            .unwrap();
        assert!(q.name.starts_with("amq.gen-"), "{}", q.name);
        ch.queue_bind(&q.name, "ex", "k", FieldTable::EMPTY)
            .await
            .unwrap();
        let mut hb = [0u8; 64];
        let mut h = TableBuilder::new(&mut hb);
        h.insert_str("trace", "abc")
            .insert("n", FieldValue::I64(-7));
        let headers = h.finish().unwrap();
        let props = Properties::default()
            .content_type("application/json")
            .correlation_id("corr-1")
            .headers(headers)
            .persistent();
        ch.publish("ex", "k", &props, br#"{"a":1}"#).await.unwrap();
        let mut c = ch.consume(&q.name, ConsumeFlags::default()).await.unwrap();
        let m = next_msg(&mut c).await;
        assert_eq!(m.body, br#"{"a":1}"#);
        assert_eq!((m.exchange.as_str(), m.routing_key.as_str()), ("ex", "k"));
        assert_eq!(
            m.properties.content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(m.properties.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(m.properties.delivery_mode, Some(2));
        assert_eq!(
            m.properties.header("trace").and_then(|v| v.as_str()),
            Some("abc")
        );
        assert_eq!(m.properties.header("n"), Some(FieldValue::I64(-7)));
        assert!(!m.redelivered);
        m.ack().unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn pubsub_each_of_three_consumers_gets_every_message() {
    let vh = broker().vhost("pubsub");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.exchange_declare("events", "fanout", DeclareOptions::default())
            .await
            .unwrap();
        let mut consumers = Vec::new();
        for _ in 0..3 {
            let sub = conn.channel().await.unwrap();
            let q = sub
                .queue_declare(
                    "",
                    DeclareOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::EMPTY,
                )
                .await
                .unwrap();
            sub.queue_bind(&q.name, "events", "", FieldTable::EMPTY)
                .await
                .unwrap();
            consumers.push(
                sub.consume(
                    &q.name,
                    ConsumeFlags {
                        no_ack: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap(),
            );
        }
        for i in 0..300u32 {
            ch.publish("events", "", &Properties::default(), &i.to_be_bytes())
                .await
                .unwrap();
        }
        for c in &mut consumers {
            let mut got = Vec::new();
            for _ in 0..300 {
                got.push(u32::from_be_bytes(
                    next_msg(c).await.body[..4].try_into().unwrap(),
                ));
            }
            assert_eq!(got, (0..300).collect::<Vec<_>>(), "every message, in order");
        }
        conn.close().await.unwrap();
    });
}

#[test]
fn point_to_point_three_consumers_share_3000_messages_exactly_once() {
    let vh = broker().vhost("p2p");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.queue_declare("work", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let mut pending = Vec::new();
        for i in 0..3000u32 {
            pending.push(
                ch.publish_with(
                    "",
                    "work",
                    PublishFlags::default(),
                    &Properties::default(),
                    &i.to_be_bytes(),
                )
                .await
                .unwrap(),
            );
        }
        for p in pending {
            p.await.unwrap();
        }
        assert_eq!(broker().wait_queue(&vh, "work", |c| c.0 == 3000).0, 3000);
        let mut consumers = Vec::new();
        for _ in 0..3 {
            let c = conn.channel().await.unwrap();
            c.qos(50).await.unwrap();
            consumers.push(c.consume("work", ConsumeFlags::default()).await.unwrap());
        }
        let mut seen = HashSet::new();
        let mut per = [0usize; 3];
        while seen.len() < 3000 {
            for (i, c) in consumers.iter_mut().enumerate() {
                if let Ok(Some(Ok(m))) =
                    tokio::time::timeout(Duration::from_millis(5), c.next()).await
                {
                    assert!(
                        seen.insert(u32::from_be_bytes(m.body[..4].try_into().unwrap())),
                        "delivered twice"
                    );
                    m.ack().unwrap();
                    per[i] += 1;
                }
            }
        }
        conn.flush().await.unwrap();
        assert_eq!(seen.len(), 3000);
        assert!(
            per.iter().all(|n| *n > 0),
            "every consumer got work: {per:?}"
        );
        let counts = broker().wait_queue(&vh, "work", |c| c == (0, 0, 3));
        assert_eq!(
            counts,
            (0, 0, 3),
            "broker: nothing ready or unacked, 3 consumers"
        );
        conn.close().await.unwrap();
    });
}

#[test]
fn topic_direct_and_headers_exchanges_route_as_rabbitmq_does() {
    let vh = broker().vhost("routing");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.exchange_declare("t", "topic", DeclareOptions::default())
            .await
            .unwrap();
        ch.exchange_declare("h", "headers", DeclareOptions::default())
            .await
            .unwrap();
        for q in ["eu", "all", "hq"] {
            ch.queue_declare(q, DeclareOptions::default(), FieldTable::EMPTY)
                .await
                .unwrap();
        }
        ch.queue_bind("eu", "t", "eu.*.temp", FieldTable::EMPTY)
            .await
            .unwrap();
        ch.queue_bind("all", "t", "#", FieldTable::EMPTY)
            .await
            .unwrap();
        let mut ab = [0u8; 64];
        let mut args = TableBuilder::new(&mut ab);
        args.insert_str("x-match", "all")
            .insert_str("site", "paris");
        ch.queue_bind("hq", "h", "", args.finish().unwrap())
            .await
            .unwrap();
        ch.publish("t", "eu.fr.temp", &Properties::default(), b"1")
            .await
            .unwrap();
        ch.publish("t", "us.ny.temp", &Properties::default(), b"2")
            .await
            .unwrap();
        ch.publish("t", "eu.fr.hum", &Properties::default(), b"3")
            .await
            .unwrap();
        let mut hb = [0u8; 64];
        let mut h = TableBuilder::new(&mut hb);
        h.insert_str("site", "paris");
        ch.publish(
            "h",
            "",
            &Properties::default().headers(h.finish().unwrap()),
            b"4",
        )
        .await
        .unwrap();
        let mut h2 = [0u8; 64];
        let mut h = TableBuilder::new(&mut h2);
        h.insert_str("site", "lyon");
        ch.publish(
            "h",
            "",
            &Properties::default().headers(h.finish().unwrap()),
            b"5",
        )
        .await
        .unwrap();
        // The default (direct) exchange routes by queue name.
        ch.publish("", "hq", &Properties::default(), b"6")
            .await
            .unwrap();
        assert_eq!(broker().wait_queue(&vh, "eu", |c| c.0 == 1).0, 1);
        assert_eq!(broker().wait_queue(&vh, "all", |c| c.0 == 3).0, 3);
        assert_eq!(broker().wait_queue(&vh, "hq", |c| c.0 == 2).0, 2);
        conn.close().await.unwrap();
    });
}

#[test]
fn prefetch_10_is_never_exceeded() {
    let vh = broker().vhost("qos");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        for i in 0..100u32 {
            ch.publish("", "q", &Properties::default(), &i.to_be_bytes())
                .await
                .unwrap();
        }
        let sub = conn.channel().await.unwrap();
        sub.qos(10).await.unwrap();
        let mut c = sub.consume("q", ConsumeFlags::default()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(next_msg(&mut c).await);
        }
        // Nothing more comes while 10 are unacked.
        assert!(tokio::time::timeout(Duration::from_millis(700), c.next())
            .await
            .is_err());
        assert_eq!(
            broker().wait_queue(&vh, "q", |c| c == (90, 10, 1)),
            (90, 10, 1)
        );
        let mut total = 10;
        let mut max_unacked = held.len();
        while total < 100 {
            held.remove(0).ack().unwrap();
            held.push(next_msg(&mut c).await);
            total += 1;
            max_unacked = max_unacked.max(held.len());
        }
        assert_eq!(max_unacked, 10);
        for m in held.drain(..) {
            m.ack().unwrap();
        }
        conn.flush().await.unwrap();
        assert_eq!(broker().wait_queue(&vh, "q", |c| c == (0, 0, 1)), (0, 0, 1));
        conn.close().await.unwrap();
    });
}

#[test]
fn nack_with_requeue_redelivers_with_redelivered_set() {
    let vh = broker().vhost("nack");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.publish("", "q", &Properties::default(), b"again")
            .await
            .unwrap();
        let mut c = ch.consume("q", ConsumeFlags::default()).await.unwrap();
        let first = next_msg(&mut c).await;
        assert!(!first.redelivered);
        first.nack(true).unwrap();
        let second = next_msg(&mut c).await;
        assert!(second.redelivered);
        assert_eq!(second.body, b"again");
        second.ack().unwrap();
        conn.flush().await.unwrap();
        assert_eq!(broker().wait_queue(&vh, "q", |c| c == (0, 0, 1)), (0, 0, 1));
        conn.close().await.unwrap();
    });
}

#[test]
fn reject_without_requeue_goes_to_the_dead_letter_exchange() {
    let vh = broker().vhost("dlx");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.exchange_declare("dlx", "fanout", DeclareOptions::default())
            .await
            .unwrap();
        ch.queue_declare("dead", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.queue_bind("dead", "dlx", "", FieldTable::EMPTY)
            .await
            .unwrap();
        let mut ab = [0u8; 64];
        let mut args = TableBuilder::new(&mut ab);
        args.insert_str("x-dead-letter-exchange", "dlx");
        ch.queue_declare("live", DeclareOptions::default(), args.finish().unwrap())
            .await
            .unwrap();
        ch.publish(
            "",
            "live",
            &Properties::default().message_id("m1"),
            b"poison",
        )
        .await
        .unwrap();
        let mut c = ch.consume("live", ConsumeFlags::default()).await.unwrap();
        next_msg(&mut c).await.reject(false).unwrap();
        conn.flush().await.unwrap();
        assert_eq!(broker().wait_queue(&vh, "dead", |c| c.0 == 1).0, 1);
        assert_eq!(
            broker().wait_queue(&vh, "live", |c| c == (0, 0, 1)),
            (0, 0, 1)
        );
        let dead = conn.channel().await.unwrap();
        let mut d = dead
            .consume(
                "dead",
                ConsumeFlags {
                    no_ack: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let m = next_msg(&mut d).await;
        assert_eq!(m.body, b"poison");
        assert_eq!(m.properties.message_id.as_deref(), Some("m1"));
        assert!(
            m.properties.header("x-death").is_some(),
            "RabbitMQ adds x-death"
        );
        conn.close().await.unwrap();
    });
}

#[test]
fn publisher_confirms_for_100000_messages_all_confirmed_none_lost() {
    let vh = broker().vhost("confirms");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let mut window = std::collections::VecDeque::new();
        let mut confirmed = 0u32;
        for i in 0..100_000u32 {
            window.push_back(
                ch.publish_with(
                    "",
                    "q",
                    PublishFlags::default(),
                    &Properties::default(),
                    &i.to_be_bytes(),
                )
                .await
                .unwrap(),
            );
            if window.len() >= 1000 {
                window.pop_front().unwrap().await.unwrap();
                confirmed += 1;
            }
        }
        for p in window {
            p.await.unwrap();
            confirmed += 1;
        }
        assert_eq!(confirmed, 100_000);
        assert_eq!(broker().wait_queue(&vh, "q", |c| c.0 == 100_000).0, 100_000);
        conn.close().await.unwrap();
    });
}

#[test]
fn a_mandatory_publish_to_an_unroutable_key_is_returned() {
    let vh = broker().vhost("mandatory");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        let mandatory = PublishFlags { mandatory: true };
        let err = ch
            .publish_with(
                "amq.direct",
                "nobody-listens",
                mandatory,
                &Properties::default(),
                b"x",
            )
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Returned {
                    code: ReplyCode::NoRoute,
                    ..
                }
            ),
            "{err:?}"
        );
        // A routable mandatory publish is confirmed normally afterwards.
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.publish_with("", "q", mandatory, &Properties::default(), b"y")
            .await
            .unwrap()
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn a_queue_deleted_under_a_consumer_gives_a_server_cancel_not_a_hang() {
    let vh = broker().vhost("cancel");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.queue_declare("doomed", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let sub = conn.channel().await.unwrap();
        let mut c = sub
            .consume("doomed", ConsumeFlags::default())
            .await
            .unwrap();
        ch.queue_delete("doomed").await.unwrap();
        let item = tokio::time::timeout(Duration::from_secs(10), c.next())
            .await
            .expect("no hang");
        assert!(
            matches!(item, Some(Err(Error::ConsumerCancelled { .. }))),
            "{item:?}"
        );
        assert!(c.next().await.is_none(), "the stream ends");
        // The channel is still usable.
        sub.queue_declare("after", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn a_10_mib_message_is_split_across_frames_and_arrives_whole() {
    let vh = broker().vhost("big");
    run(async {
        let mut o = ConnectOptions::new(&broker().url(&vh));
        o.rx_capacity = 12 << 20;
        o.tx_capacity = 12 << 20;
        let conn = Connection::connect_with(o).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("big", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let body: Vec<u8> = (0..10 << 20).map(|i: u32| (i % 253) as u8).collect();
        ch.publish("", "big", &Properties::default(), &body)
            .await
            .unwrap();
        let mut c = ch.consume("big", ConsumeFlags::default()).await.unwrap();
        let m = next_msg(&mut c).await;
        assert_eq!(m.body.len(), 10 << 20);
        assert!(m.body == body, "body intact");
        m.ack().unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn a_message_larger_than_the_receive_buffer_is_a_typed_error() {
    let vh = broker().vhost("toolarge");
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.publish("", "q", &Properties::default(), &vec![1u8; 300_000])
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut o = ConnectOptions::new(&broker().url(&vh));
        o.rx_capacity = 256 << 10;
        let small = Connection::connect_with(o).await.unwrap();
        let ch = small.channel().await.unwrap();
        let mut c = ch.consume("q", ConsumeFlags::default()).await.unwrap();
        let item = tokio::time::timeout(Duration::from_secs(10), c.next())
            .await
            .unwrap();
        match item {
            Some(Err(Error::Disconnected(why))) => assert!(why.contains("receive buffer"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            small.error(),
            Some(Error::Protocol(courier_core::amqp::Error::FrameTooLarge {
                capacity: 262_144,
                ..
            }))
        ));
    });
}

#[test]
fn a_wrong_password_is_refused_with_a_typed_error() {
    let vh = broker().vhost("auth");
    run(async {
        let url = format!("amqp://guest:wrong@127.0.0.1:{}/{vh}", broker().amqp_port());
        let err = Connection::connect(&url).await.err().expect("refused");
        match &err {
            Error::Protocol(courier_core::amqp::Error::AccessRefused(r)) => {
                assert_eq!(r.code, ReplyCode::AccessRefused);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string().contains("check the user, password"),
            "{err}"
        );
    });
}

#[test]
fn a_passive_declare_of_a_missing_queue_closes_only_that_channel() {
    let vh = broker().vhost("passive");
    run(async {
        let (conn, ch) = open(&vh).await;
        let other = conn.channel().await.unwrap();
        let err = ch
            .queue_declare(
                "missing",
                DeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::EMPTY,
            )
            .await
            .unwrap_err();
        match &err {
            Error::ChannelClosed(r) => assert_eq!(r.code, ReplyCode::NotFound),
            other => panic!("{other:?}"),
        }
        // Later calls on that channel say why it is gone.
        assert!(matches!(ch.qos(1).await, Err(Error::ChannelClosed(_))));
        // The connection and the other channel live on.
        assert!(conn.error().is_none());
        other
            .queue_declare("present", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let again = conn.channel().await.unwrap();
        again
            .queue_declare(
                "present",
                DeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::EMPTY,
            )
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    let vh = broker().vhost("drop");
    let listed = |vh: &str| {
        broker()
            .api(&format!("/api/vhosts/{vh}/connections"))
            .as_array()
            .map_or(0, Vec::len)
    };
    run(async {
        let (conn, ch) = open(&vh).await;
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while listed(&vh) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the broker never listed the connection"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(ch);
        drop(conn);
        // Let the writer send connection.close and shut the socket.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while listed(&vh) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the connection stayed open"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
