//! courier's AMQP client when the broker misbehaves: a resource alarm
//! blocks publishing (and a block that lasts too long), an idle connection
//! kept alive by heartbeats. These tests change the whole node, so this
//! binary has its own RabbitMQ and runs its tests one at a time.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use courier::amqp::{ConnectOptions, Connection, DeclareOptions, Error};
use courier_core::amqp::{ConsumeFlags, FieldTable, Properties, PublishFlags};
use courier_tests::amqp_setup::{confirmed_queue, publish_numbers};
use courier_tests::RabbitMq;

/// One test at a time: they alarm or kill the node.
static SERIAL: Mutex<()> = Mutex::new(());

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

/// Runs rabbitmqctl on a thread (it blocks for a second or two) while the
/// runtime keeps serving the connection.
async fn ctl(args: &'static [&'static str]) {
    let handle = std::thread::spawn(move || broker().ctl(args));
    while !handle.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = handle.join().unwrap();
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_memory_alarm_blocks_publishing_without_losing_anything_and_resumes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vh = broker().vhost("alarm");
    courier::run(async {
        let (conn, ch) = confirmed_queue(&broker().url(&vh), "q").await;
        publish_numbers(&ch, "q", 0..50).await;
        ctl(&["set_vm_memory_high_watermark", "0.0000001"]).await;
        // Publishing goes on from the application's side; the broker blocks.
        let mut pending = Vec::new();
        for i in 50..100u32 {
            pending.push(
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
            if conn.is_blocked() {
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !conn.is_blocked() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(conn.is_blocked(), "connection.blocked received");
        let sent = 50 + pending.len() as u32;
        // A publish now waits (it neither fails nor pretends to be sent).
        let (props, body) = (Properties::default(), sent.to_be_bytes());
        let more = ch.publish("", "q", &props, &body);
        tokio::pin!(more);
        assert!(tokio::time::timeout(Duration::from_millis(500), &mut more)
            .await
            .is_err());
        ctl(&["set_vm_memory_high_watermark", "0.4"]).await;
        tokio::time::timeout(Duration::from_secs(20), more)
            .await
            .expect("resumes")
            .unwrap();
        for p in pending {
            p.await.unwrap();
        }
        assert!(!conn.is_blocked());
        conn.flush().await.unwrap();
        let n = u64::from(sent) + 1;
        assert_eq!(
            broker().wait_queue(&vh, "q", |c| c.0 == n).0,
            n,
            "nothing lost"
        );
        conn.close().await.unwrap();
    });
}

#[test]
fn a_block_longer_than_the_deadline_is_a_typed_error() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vh = broker().vhost("alarm-deadline");
    courier::run(async {
        let mut o = ConnectOptions::new(&broker().url(&vh));
        o.blocked_timeout = Some(Duration::from_secs(2));
        // Without reconnecting, the error stays visible on the connection.
        o.reconnect = false;
        let conn = Connection::connect_with(o).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        ctl(&["set_vm_memory_high_watermark", "0.0000001"]).await;
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            ch.publish("", "q", &Properties::default(), b"x"),
        )
        .await
        .expect("does not hang");
        ctl(&["set_vm_memory_high_watermark", "0.4"]).await;
        let err = result.unwrap_err();
        assert!(
            matches!(
                conn.error(),
                Some(Error::Protocol(
                    courier_core::amqp::Error::BlockedTimeout { .. }
                ))
            ),
            "{err:?} / {:?}",
            conn.error()
        );
        assert!(err.to_string().contains("blocked publishing"), "{err}");
    });
}

#[test]
fn heartbeats_keep_an_idle_connection_open() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vh = broker().vhost("idle");
    courier::run(async {
        let mut o = ConnectOptions::new(&broker().url(&vh));
        // 1 s heartbeats: 8 s idle is four times the broker's dead-peer
        // limit (two missed intervals), the 60 s of the issue scaled down.
        o.heartbeat = 1;
        o.connection_name = "idle-test".into();
        let conn = Connection::connect_with(o).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.queue_declare("q", DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(conn.error().is_none(), "{:?}", conn.error());
        ch.publish("", "q", &Properties::default(), b"still here")
            .await
            .unwrap();
        conn.flush().await.unwrap();
        assert_eq!(broker().wait_queue(&vh, "q", |c| c.0 == 1).0, 1);
        // The broker enforces what tune-ok said: 1 s, so it would have
        // dropped a silent client after 2 s.
        assert_eq!(conn.tune().heartbeat, 1);
        conn.close().await.unwrap();
    });
}

#[test]
fn the_broker_killed_and_restarted_mid_stream_the_client_recovers_and_nothing_confirmed_is_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vh = broker().vhost("restart");
    courier::run(async {
        let mut o = ConnectOptions::new(&broker().url(&vh));
        o.heartbeat = 2;
        o.max_backoff = Duration::from_secs(1);
        let conn = Connection::connect_with(o).await.unwrap();
        let publisher = conn.channel().await.unwrap();
        publisher.confirm_select().await.unwrap();
        let durable = DeclareOptions {
            durable: true,
            ..Default::default()
        };
        publisher
            .exchange_declare("orders", "direct", durable)
            .await
            .unwrap();
        publisher
            .queue_declare("orders-q", durable, FieldTable::EMPTY)
            .await
            .unwrap();
        publisher
            .queue_bind("orders-q", "orders", "new", FieldTable::EMPTY)
            .await
            .unwrap();
        let sub = conn.channel().await.unwrap();
        sub.qos(100).await.unwrap();
        let mut consumer = sub
            .consume("orders-q", ConsumeFlags::default())
            .await
            .unwrap();
        let received = Rc::new(RefCell::new(HashSet::new()));
        let stale_acks = Rc::new(RefCell::new(0u32));
        let (r, stale) = (received.clone(), stale_acks.clone());
        courier::spawn(async move {
            while let Some(item) = consumer.next().await {
                let Ok(m) = item else { continue };
                r.borrow_mut()
                    .insert(u32::from_be_bytes(m.body[..4].try_into().unwrap()));
                // An ack for a message of the dead connection is refused
                // (the broker redelivers it), never sent with a stale tag.
                if m.ack().is_err() {
                    *stale.borrow_mut() += 1;
                }
            }
        });
        const N: u32 = 2000;
        let mut confirmed = HashSet::new();
        let mut unconfirmed_at_cut = 0u32;
        let mut restart = None;
        let props = Properties::default().persistent();
        for i in 0..N {
            if i == 500 {
                restart = Some(std::thread::spawn(|| broker().restart()));
            }
            loop {
                match publisher
                    .publish("orders", "new", &props, &i.to_be_bytes())
                    .await
                {
                    Ok(()) => {
                        confirmed.insert(i);
                        break;
                    }
                    // Not confirmed: it may or may not be stored; send it again.
                    Err(Error::Disconnected(_)) => unconfirmed_at_cut += 1,
                    Err(e) => panic!("publish {i}: {e}"),
                }
            }
        }
        let restart = restart.unwrap();
        while !restart.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        restart.join().unwrap();
        assert_eq!(confirmed.len(), N as usize);
        assert!(unconfirmed_at_cut >= 1, "the cut happened mid-stream");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while received.borrow().len() < N as usize && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = received.borrow().clone();
        let missing: Vec<_> = confirmed.difference(&got).take(10).collect();
        assert!(
            missing.is_empty(),
            "confirmed but never consumed: {missing:?}"
        );
        conn.flush().await.unwrap();
        // The broker's view: the re-declared topology, nothing left behind.
        let counts = broker().wait_queue(&vh, "orders-q", |c| c == (0, 0, 1));
        assert_eq!(counts, (0, 0, 1), "all acked, the consumer re-established");
        let bindings = broker().api(&format!("/api/exchanges/{vh}/orders/bindings/source"));
        assert_eq!(
            bindings.as_array().map(Vec::len),
            Some(1),
            "binding re-declared: {bindings}"
        );
        eprintln!(
            "unconfirmed at the cut: {unconfirmed_at_cut}; stale acks refused: {}",
            stale_acks.borrow()
        );
        conn.close().await.unwrap();
    });
}

#[test]
fn an_amqps_connection_reconnects_over_tls_after_a_broker_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let vh = broker().vhost("tls-restart");
    courier::run(async {
        let mut o = ConnectOptions::new(&broker().tls_url(&vh))
            .with_ca_file(broker().pki_file("ca.pem"))
            .unwrap();
        o.heartbeat = 2;
        o.max_backoff = Duration::from_secs(1);
        let conn = Connection::connect_with(o).await.unwrap();
        let ch = conn.channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        let durable = DeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare("tls-q", durable, FieldTable::EMPTY)
            .await
            .unwrap();
        let props = Properties::default().persistent();
        for i in 0..100u32 {
            ch.publish("", "tls-q", &props, &i.to_be_bytes())
                .await
                .unwrap();
        }
        let restart = std::thread::spawn(|| broker().restart());
        while !restart.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        restart.join().unwrap();
        // After the restart: publishes wait for the TLS reconnect, then go
        // through (a Disconnected one was not confirmed: sent again).
        let mut retried = 0;
        let after = async {
            for i in 100..200u32 {
                loop {
                    match ch.publish("", "tls-q", &props, &i.to_be_bytes()).await {
                        Ok(()) => break,
                        Err(Error::Disconnected(_)) => retried += 1,
                        Err(e) => panic!("publish {i} after the restart: {e}"),
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), after)
            .await
            .expect("the client reconnected over TLS within 60 s");
        assert!(retried <= 100, "{retried}");
        conn.flush().await.unwrap();
        let (ready, _, _) = broker().wait_queue(&vh, "tls-q", |(r, _, _)| r >= 200);
        assert!(
            ready >= 200,
            "every confirmed publish is in the queue: {ready}"
        );
        conn.close().await.unwrap();
    });
}
