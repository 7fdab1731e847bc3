//! basic.get, exchange-to-exchange bindings, transactions and a
//! server-sent channel.flow against a real RabbitMQ, with the broker's view
//! checked through the management API. RabbitMQ never sends channel.flow
//! itself (since 3.3), so that test runs through a frame-aware proxy that
//! injects it into the live connection (`support/amqp_proxy.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::amqp::{Connection, DeclareOptions};
use courier_core::amqp::{FieldTable, Properties};
use courier_tests::amqp_proxy::{channel_flow, AmqpProxy};
use courier_tests::amqp_setup::confirmed_queue;
use courier_tests::RabbitMq;

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

#[test]
fn basic_get_takes_one_message_or_none_and_acks_it() {
    let vh = broker().vhost("get");
    courier::run(async {
        let (conn, ch) = confirmed_queue(&broker().url(&vh), "q").await;
        assert!(ch.get("q", false).await.unwrap().is_none(), "empty queue");
        for body in [&b"one"[..], b"two", b"three"] {
            ch.publish("", "q", &Properties::default(), body)
                .await
                .unwrap();
        }
        let first = ch.get("q", false).await.unwrap().expect("a message");
        assert_eq!(first.body, b"one");
        assert_eq!(first.routing_key, "q");
        // Two gets in flight on one channel get their own answers, in order.
        let (a, b) = tokio::join!(ch.get("q", false), ch.get("q", true));
        assert_eq!(a.unwrap().unwrap().body, b"two");
        assert_eq!(b.unwrap().unwrap().body, b"three");
        assert!(ch.get("q", false).await.unwrap().is_none());
        conn.flush().await.unwrap();
        // "one" and "two" are unacked (no_ack false), "three" went with no_ack.
        let (ready, unacked, _) = broker().wait_queue(&vh, "q", |(r, u, _)| r == 0 && u == 2);
        assert_eq!((ready, unacked), (0, 2));
        first.ack().unwrap();
        conn.flush().await.unwrap();
        let (ready, unacked, _) = broker().wait_queue(&vh, "q", |(r, u, _)| r == 0 && u == 1);
        assert_eq!((ready, unacked), (0, 1));
        conn.close().await.unwrap();
    });
}

#[test]
fn a_basic_get_on_a_missing_queue_closes_only_that_channel() {
    let vh = broker().vhost("get404");
    courier::run(async {
        let conn = Connection::connect(&broker().url(&vh)).await.unwrap();
        let ch = conn.channel().await.unwrap();
        let err = ch.get("nope", false).await.unwrap_err();
        assert!(
            matches!(err, courier::amqp::Error::ChannelClosed(ref r) if r.code.as_u16() == 404),
            "{err:?}"
        );
        let other = conn.channel().await.unwrap();
        assert!(other
            .queue_declare("", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .is_ok());
        conn.close().await.unwrap();
    });
}

#[test]
fn an_exchange_to_exchange_binding_routes_and_unbinding_stops_it() {
    let vh = broker().vhost("e2e");
    courier::run(async {
        let conn = Connection::connect(&broker().url(&vh)).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        let o = DeclareOptions::default();
        ch.exchange_declare("front", "topic", o).await.unwrap();
        ch.exchange_declare("back", "fanout", o).await.unwrap();
        ch.queue_declare("q", o, FieldTable::EMPTY).await.unwrap();
        ch.queue_bind("q", "back", "", FieldTable::EMPTY)
            .await
            .unwrap();
        ch.exchange_bind("back", "front", "orders.*", FieldTable::EMPTY)
            .await
            .unwrap();
        let p = Properties::default();
        ch.publish("front", "orders.new", &p, b"routed")
            .await
            .unwrap();
        ch.publish("front", "invoices.new", &p, b"not routed")
            .await
            .unwrap();
        let (ready, _, _) = broker().wait_queue(&vh, "q", |(r, _, _)| r == 1);
        assert_eq!(ready, 1, "only the key matching the e2e binding arrives");
        // The broker lists the binding with an exchange destination.
        let bindings = broker().api(&format!("/api/exchanges/{vh}/front/bindings/source"));
        let e2e = bindings.as_array().unwrap().iter().any(|b| {
            b["destination"] == "back"
                && b["destination_type"] == "exchange"
                && b["routing_key"] == "orders.*"
        });
        assert!(e2e, "{bindings}");
        ch.exchange_unbind("back", "front", "orders.*")
            .await
            .unwrap();
        ch.publish("front", "orders.new", &p, b"after unbind")
            .await
            .unwrap();
        let m = ch.get("q", true).await.unwrap().unwrap();
        assert_eq!(m.body, b"routed");
        assert!(
            ch.get("q", true).await.unwrap().is_none(),
            "unbound: nothing more"
        );
        conn.close().await.unwrap();
    });
}

#[test]
fn a_transaction_publishes_and_acks_only_on_commit_and_rollback_drops_them() {
    let vh = broker().vhost("tx");
    courier::run(async {
        let conn = Connection::connect(&broker().url(&vh)).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ch.tx_select().await.unwrap();
        let p = Properties::default();
        for i in 0..5u8 {
            ch.publish("", "q", &p, &[i]).await.unwrap();
        }
        conn.flush().await.unwrap();
        // Written, but not committed: the queue is still empty.
        std::thread::sleep(Duration::from_millis(1_200));
        assert_eq!(
            broker().queue_counts(&vh, "q").0,
            0,
            "nothing before commit"
        );
        ch.tx_commit().await.unwrap();
        let (ready, _, _) = broker().wait_queue(&vh, "q", |(r, _, _)| r == 5);
        assert_eq!(ready, 5);
        ch.publish("", "q", &p, b"rolled back").await.unwrap();
        ch.tx_rollback().await.unwrap();
        ch.tx_commit().await.unwrap(); // an empty transaction
        std::thread::sleep(Duration::from_millis(1_200));
        assert_eq!(
            broker().queue_counts(&vh, "q").0,
            5,
            "the rollback dropped it"
        );
        // Acks inside a transaction: only a commit settles them.
        let m = ch.get("q", false).await.unwrap().unwrap();
        assert_eq!(m.body, [0]);
        m.ack().unwrap();
        ch.tx_rollback().await.unwrap();
        conn.flush().await.unwrap();
        let (ready, unacked, _) = broker().wait_queue(&vh, "q", |(r, u, _)| r == 4 && u == 1);
        assert_eq!(
            (ready, unacked),
            (4, 1),
            "a rolled-back ack leaves it unacked"
        );
        m.ack().unwrap();
        ch.tx_commit().await.unwrap();
        let (ready, unacked, _) = broker().wait_queue(&vh, "q", |(r, u, _)| r == 4 && u == 0);
        assert_eq!((ready, unacked), (4, 0));
        conn.close().await.unwrap();
    });
}

#[test]
fn a_server_channel_flow_pause_holds_publishes_until_it_resumes() {
    let vh = broker().vhost("flow");
    let proxy = AmqpProxy::start(broker().amqp_port());
    courier::run(async {
        let url = format!("amqp://guest:guest@127.0.0.1:{}/{vh}", proxy.port());
        let (conn, ch) = confirmed_queue(&url, "q").await;
        let p = Properties::default();
        ch.publish("", "q", &p, b"before").await.unwrap();
        let (ready, _, _) = broker().wait_queue(&vh, "q", |(r, _, _)| r == 1);
        assert_eq!(ready, 1);

        proxy.inject(channel_flow(ch.id(), false));
        let deadline = Instant::now() + Duration::from_secs(10);
        while ch.flow_active() {
            assert!(Instant::now() < deadline, "the pause never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let confirmed = Rc::new(Cell::new(0u32));
        let (ch2, done) = (ch.clone(), confirmed.clone());
        let publisher = courier::spawn(async move {
            for i in 0..10u8 {
                ch2.publish("", "q", &Properties::default(), &[i])
                    .await
                    .unwrap();
                done.set(done.get() + 1);
            }
        });
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(confirmed.get(), 0, "no publish completes while paused");
        conn.flush().await.unwrap();
        assert_eq!(
            broker().queue_counts(&vh, "q").0,
            1,
            "nothing reached the broker"
        );

        proxy.inject(channel_flow(ch.id(), true));
        tokio::time::timeout(Duration::from_secs(20), publisher)
            .await
            .expect("publishes resume")
            .unwrap();
        assert_eq!(confirmed.get(), 10);
        assert_eq!(
            proxy.flow_oks(),
            2,
            "both flow changes answered with flow-ok"
        );
        let (ready, _, _) = broker().wait_queue(&vh, "q", |(r, _, _)| r == 11);
        assert_eq!(ready, 11, "nothing lost, nothing duplicated");
        conn.close().await.unwrap();
    });
}
