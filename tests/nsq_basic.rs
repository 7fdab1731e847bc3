//! courier's NSQ producer and consumer against a real nsqd: PUB/MPUB/DPUB,
//! REQ redelivery, msg_timeout redelivery, max_attempts give-up, producer
//! failover, graceful stop and callbacks.

mod nsq_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::nsq::{Callbacks, Config, ConnInfo, Consumer, Error, Producer, ServerNodes};
use courier_tests::Nsqd;
use nsq_support::{topic, wait_until, Behaviour, Recorder};

fn channel_stats(nsqd: &Nsqd, topic: &str, channel: &str) -> serde_json::Value {
    let body = nsqd.http_get(&format!(
        "/stats?format=json&topic={topic}&channel={channel}"
    ));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .and_then(|t| t["channels"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["channel_name"] == channel))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

fn topic_depth(nsqd: &Nsqd, topic: &str) -> u64 {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .map(|t| t["message_count"].as_u64().unwrap_or(0))
        .unwrap_or(0)
}

#[test]
fn pub_mpub_and_dpub_are_delivered_and_dpub_not_before_its_delay() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("basic");
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            10,
            Recorder::default(),
        )
        .start()
        .await
        .expect("consumer starts");
        assert!(consumer.is_alive());

        producer.publish(&topic, b"one").await.unwrap();
        producer
            .multi_publish(&topic, &[b"two".as_slice(), b"three", b"four"])
            .await
            .unwrap();
        let deferred_at = Instant::now();
        let delay = Duration::from_millis(1500);
        producer
            .deferred_publish(&topic, delay, b"deferred")
            .await
            .unwrap();

        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() >= 5).await);
        let seen = rec.seen.borrow().clone();
        let mut bodies: Vec<&[u8]> = seen.iter().map(|s| s.body.as_slice()).collect();
        bodies.sort();
        assert_eq!(
            bodies,
            vec![&b"deferred"[..], b"four", b"one", b"three", b"two"]
        );
        let d = seen.iter().find(|s| s.body == b"deferred").unwrap();
        assert!(
            d.at.duration_since(deferred_at) >= delay,
            "DPUB delivered after {:?}, before its {delay:?} delay",
            d.at.duration_since(deferred_at)
        );
        assert!(seen.iter().all(|s| s.attempts == 1));
        consumer.stop().await;
        producer.stop().await;
    });
}

#[test]
fn publish_errors_are_typed() {
    let nsqd = nsq_support::nsqd(&["--max-msg-size=100"]);
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        // A bad topic name is refused before anything is sent.
        let e = producer.publish("bad topic!", b"x").await.unwrap_err();
        assert!(matches!(e, Error::Session(_)), "{e:?}");
        // An empty body is refused before anything is sent.
        let e = producer.publish("ok_topic", b"").await.unwrap_err();
        assert!(matches!(e, Error::Session(_)), "{e:?}");
        // A body over nsqd's --max-msg-size is refused by nsqd: E_BAD_MESSAGE.
        let e = producer
            .publish("ok_topic", &[b'x'; 200])
            .await
            .unwrap_err();
        match e {
            Error::Server(s) => assert_eq!(s.code, courier::nsq::ErrorCode::BadMessage, "{s}"),
            e => panic!("expected a server error, got {e:?}"),
        }
        // nsqd closes the connection after a fatal error; the next publish
        // reconnects.
        producer.publish("ok_topic", b"fine").await.unwrap();
        // Nothing listens here.
        let nowhere = format!("127.0.0.1:{}", courier_tests::free_port());
        let p = Producer::new([nowhere], Config::default()).unwrap();
        let e = p.publish("t", b"x").await.unwrap_err();
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("no nsqd could be reached"), "{e}");
    });
}

#[test]
fn req_redelivers_with_attempts_plus_one() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("req");
    courier::run(async {
        let config = Config {
            backoff: Duration::from_millis(100),
            ..Config::default()
        };
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            Recorder::new(Behaviour {
                fail_until_attempt: 3,
                ..Default::default()
            }),
        )
        .config(config)
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"retry me");
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(15), || rec.seen.borrow().len() >= 3).await);
        let attempts: Vec<u16> = rec.seen.borrow().iter().map(|s| s.attempts).collect();
        assert_eq!(attempts, vec![1, 2, 3]);
        // The third attempt succeeded and was FIN'd: nothing left in flight.
        assert!(
            wait_until(Duration::from_secs(5), || {
                let ch = channel_stats(&nsqd, &topic, "ch");
                ch["in_flight_count"] == 0 && ch["depth"] == 0 && ch["requeue_count"] == 2
            })
            .await,
            "{}",
            channel_stats(&nsqd, &topic, "ch")
        );
        consumer.stop().await;
    });
}

#[test]
fn a_message_not_finished_before_msg_timeout_is_redelivered() {
    let nsqd = nsq_support::nsqd(&["--msg-timeout=1s"]);
    let topic = topic("timeout");
    courier::run(async {
        let config = Config {
            auto_finish: false,
            ..Config::default()
        };
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            5,
            Recorder::default(),
        )
        .config(config)
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"forget me");
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() >= 2).await);
        let seen = rec.seen.borrow().clone();
        assert_eq!(seen[0].attempts, 1);
        assert_eq!(seen[1].attempts, 2);
        assert_eq!(seen[1].body, b"forget me");
        let ch = channel_stats(&nsqd, &topic, "ch");
        assert!(ch["timeout_count"].as_u64().unwrap_or(0) >= 1, "{ch}");
        consumer.stop().await;
    });
}

#[test]
fn max_attempts_gives_up_and_finishes() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("giveup");
    courier::run(async {
        let config = Config {
            max_attempts: 2,
            backoff: Duration::from_millis(50),
            ..Config::default()
        };
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            Recorder::new(Behaviour {
                fail_until_attempt: u16::MAX,
                ..Default::default()
            }),
        )
        .config(config)
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"poison");
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(15), || !rec.gave_up.borrow().is_empty()).await);
        assert_eq!(rec.gave_up.borrow().clone(), vec![(b"poison".to_vec(), 3)]);
        let attempts: Vec<u16> = rec.seen.borrow().iter().map(|s| s.attempts).collect();
        assert_eq!(
            attempts,
            vec![1, 2],
            "the handler does not see the given-up delivery"
        );
        assert!(
            wait_until(Duration::from_secs(5), || {
                let ch = channel_stats(&nsqd, &topic, "ch");
                ch["in_flight_count"] == 0 && ch["depth"] == 0
            })
            .await,
            "given-up message FIN'd"
        );
        consumer.stop().await;
    });
}

#[test]
fn producer_fails_over_to_the_next_nsqd() {
    let mut first = nsq_support::nsqd(&[]);
    let second = nsq_support::nsqd(&[]);
    let topic = topic("failover");
    courier::run(async {
        let producer =
            Producer::new([first.tcp_addr(), second.tcp_addr()], Config::default()).unwrap();
        producer.publish(&topic, b"to first").await.unwrap();
        assert_eq!(producer.connected_node(), Some(first.tcp_addr()));
        first.kill();
        // The publish racing the failure may report Disconnected (nsqd may
        // or may not have it); the next one goes to the second node.
        let mut delivered = false;
        for _ in 0..5 {
            match producer.publish(&topic, b"to second").await {
                Ok(()) => {
                    delivered = true;
                    break;
                }
                Err(Error::Disconnected) => continue,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(delivered);
        assert_eq!(producer.connected_node(), Some(second.tcp_addr()));
        assert_eq!(topic_depth(&second, &topic), 1);

        // A producer whose first node is down starts on the second.
        let p2 = Producer::new([first.tcp_addr(), second.tcp_addr()], Config::default()).unwrap();
        p2.publish(&topic, b"again").await.unwrap();
        assert_eq!(p2.connected_node(), Some(second.tcp_addr()));
        assert_eq!(topic_depth(&second, &topic), 2);
    });
}

#[derive(Default)]
struct CountingCallbacks {
    connects: Cell<u32>,
    identifies: Cell<u32>,
    broken: Cell<u32>,
    received: Cell<u32>,
    replenish: Cell<u32>,
}

impl Callbacks for CountingCallbacks {
    fn connect(&self, _: &ConnInfo) {
        self.connects.set(self.connects.get() + 1);
    }
    fn identify(&self, _: &ConnInfo, n: Option<&courier_core::nsq::IdentifyResponse>) {
        assert!(n.is_some_and(|n| n.max_rdy_count > 0));
        self.identifies.set(self.identifies.get() + 1);
    }
    fn broken(&self, _: &ConnInfo, _: &Error) {
        self.broken.set(self.broken.get() + 1);
    }
    fn message_received(&self, _: &ConnInfo, _: &courier_core::nsq::Message<'_>) {
        self.received.set(self.received.get() + 1);
    }
    fn rdy_replenish(&self, _: courier::nsq::ConnId, _: u32, original: u32) -> u32 {
        self.replenish.set(self.replenish.get() + 1);
        original
    }
}

#[test]
fn graceful_stop_finishes_in_flight_messages_and_callbacks_fire() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("stop");
    courier::run(async {
        let callbacks = Rc::new(CountingCallbacks::default());
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            4,
            Recorder::new(Behaviour {
                hold: Duration::from_millis(400),
                ..Default::default()
            }),
        )
        .callbacks(callbacks.clone())
        .start()
        .await
        .unwrap();
        for i in 0..20 {
            nsqd.http_publish(&topic, format!("m{i}").as_bytes());
        }
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.in_flight.get() >= 2).await);
        consumer.stop().await;
        assert!(!consumer.is_alive());
        let started = rec.seen.borrow().len() as u64;
        assert_eq!(
            rec.handled.get(),
            started,
            "every handler that started before stop finished"
        );
        assert_eq!(rec.in_flight.get(), 0);
        // Every message that was handled got its FIN (nsqd may take a moment
        // to process the last ones; a lost FIN would stay in flight for
        // nsqd's 60 s msg_timeout); the rest wait in nsqd.
        assert!(
            wait_until(Duration::from_secs(5), || {
                channel_stats(&nsqd, &topic, "ch")["in_flight_count"] == 0
            })
            .await,
            "{}",
            channel_stats(&nsqd, &topic, "ch")
        );
        let ch = channel_stats(&nsqd, &topic, "ch");
        assert_eq!(ch["requeue_count"], 0, "{ch}");
        assert_eq!(ch["depth"].as_u64().unwrap(), 20 - started, "{ch}");
        assert_eq!(callbacks.connects.get(), 1);
        assert_eq!(callbacks.identifies.get(), 1);
        assert_eq!(callbacks.broken.get(), 1, "the stop closes the connection");
        assert_eq!(callbacks.received.get() as u64, started);
        assert!(
            callbacks.replenish.get() > 0,
            "rdy_replenish was consulted when the window filled"
        );
    });
}

/// Holds each message longer than nsqd's msg_timeout, TOUCHing it.
#[derive(Default)]
struct SlowToucher {
    attempts: std::cell::RefCell<Vec<u16>>,
    touches: Cell<u32>,
}

impl courier::nsq::Handler for SlowToucher {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &courier::nsq::Message) -> Option<((), ())> {
        Some(((), ()))
    }
    async fn handle(
        &self,
        _: (),
        _: (),
        m: &courier::nsq::Message,
    ) -> Result<(), courier::nsq::HandlerError> {
        self.attempts.borrow_mut().push(m.attempts());
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            m.touch().expect("TOUCH queued");
            self.touches.set(self.touches.get() + 1);
        }
        Ok(())
    }
}

#[test]
fn long_handlers_touch_to_keep_their_message() {
    // 2.4 s of handling against a 1 s msg_timeout: without TOUCH nsqd would
    // redeliver it twice.
    let nsqd = nsq_support::nsqd(&["--msg-timeout=1s"]);
    let topic = topic("touch");
    courier::run(async {
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            SlowToucher::default(),
        )
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"slow");
        let h = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || h.touches.get() == 6).await);
        assert!(
            wait_until(Duration::from_secs(5), || {
                let ch = channel_stats(&nsqd, &topic, "ch");
                ch["in_flight_count"] == 0 && ch["depth"] == 0
            })
            .await
        );
        let ch = channel_stats(&nsqd, &topic, "ch");
        assert_eq!(ch["timeout_count"], 0, "{ch}");
        assert_eq!(h.attempts.borrow().clone(), vec![1], "delivered once");
        consumer.stop().await;
    });
}

#[test]
fn one_consumer_subscribes_several_couplets_on_every_node() {
    let a = nsq_support::nsqd(&[]);
    let b = nsq_support::nsqd(&[]);
    let (t1, t2) = (topic("couplet"), topic("couplet"));
    courier::run(async {
        let consumer = Consumer::builder(
            [(t1.as_str(), "x"), (t2.as_str(), "y")],
            ServerNodes::new([a.tcp_addr(), b.tcp_addr()]),
            10,
            Recorder::default(),
        )
        .start()
        .await
        .unwrap();
        assert_eq!(consumer.connection_count(), 4, "2 nodes x 2 couplets");
        for (n, nsqd) in [&a, &b].iter().enumerate() {
            nsqd.http_publish(&t1, format!("t1-{n}").as_bytes());
            nsqd.http_publish(&t2, format!("t2-{n}").as_bytes());
        }
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() == 4).await);
        let mut got: Vec<(String, Vec<u8>)> = rec
            .seen
            .borrow()
            .iter()
            .map(|s| (s.channel.clone(), s.body.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("x".to_string(), b"t1-0".to_vec()),
                ("x".to_string(), b"t1-1".to_vec()),
                ("y".to_string(), b"t2-0".to_vec()),
                ("y".to_string(), b"t2-1".to_vec()),
            ]
        );
        consumer.stop().await;
    });
}

#[test]
fn auth_secret_is_sent_when_nsqd_requires_it() {
    let auth = nsq_support::auth_server();
    let nsqd = nsq_support::nsqd(&[&format!("--auth-http-address={auth}")]);
    let topic = topic("auth");
    courier::run(async {
        // Without a secret: a clear error.
        let p = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let e = p.publish(&topic, b"x").await.unwrap_err();
        assert!(e.to_string().contains("auth_secret"), "{e}");
        // A refused secret: nsqd's E_AUTH_FAILED.
        let bad = Config {
            auth_secret: Some(b"bad".to_vec()),
            ..Config::default()
        };
        let p = Producer::new([nsqd.tcp_addr()], bad).unwrap();
        let e = p.publish(&topic, b"x").await.unwrap_err();
        assert!(e.to_string().contains("E_AUTH_FAILED"), "{e}");
        // The right one publishes and consumes.
        let good = Config {
            auth_secret: Some(b"good".to_vec()),
            ..Config::default()
        };
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            Recorder::default(),
        )
        .config(good.clone())
        .start()
        .await
        .unwrap();
        let p = Producer::new([nsqd.tcp_addr()], good).unwrap();
        p.publish(&topic, b"authorized").await.unwrap();
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() == 1).await);
        consumer.stop().await;
    });
}

#[test]
fn consumer_reconnects_after_nsqd_restarts() {
    let mut nsqd = nsq_support::nsqd(&[]);
    let topic = topic("restart");
    courier::run(async {
        let config = Config {
            reconnect_delay: Duration::from_millis(100),
            ..Config::default()
        };
        let callbacks = Rc::new(CountingCallbacks::default());
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            5,
            Recorder::default(),
        )
        .config(config)
        .callbacks(callbacks.clone())
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"before");
        let rec = consumer.handler();
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() == 1).await);
        nsqd.kill();
        assert!(wait_until(Duration::from_secs(10), || !consumer.is_alive()).await);
        assert_eq!(callbacks.broken.get(), 1);
        nsqd.restart();
        assert!(wait_until(Duration::from_secs(15), || consumer.is_alive()).await);
        nsqd.http_publish(&topic, b"after");
        assert!(wait_until(Duration::from_secs(10), || rec.seen.borrow().len() == 2).await);
        assert_eq!(rec.seen.borrow()[1].body, b"after");
        assert!(callbacks.connects.get() >= 2);
        consumer.stop().await;
    });
}

#[test]
fn concurrent_publishes_are_all_answered_and_stop_waits_for_them() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("concurrent");
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        producer.connect().await.unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (p, t) = (producer.clone(), topic.clone());
                courier::spawn(async move { p.publish(&t, format!("c{i}").as_bytes()).await })
            })
            .collect();
        // Let every task queue its PUB, then stop while answers are due.
        tokio::task::yield_now().await;
        producer.stop().await;
        for t in tasks {
            t.await
                .unwrap()
                .expect("answered before the connection closed");
        }
        assert!(matches!(
            producer.publish(&topic, b"late").await,
            Err(Error::Closed)
        ));
    });
    assert_eq!(topic_depth(&nsqd, &topic), 200);
}

/// Panics on the first delivery of each message.
#[derive(Default)]
struct PanicsOnce {
    attempts: std::cell::RefCell<Vec<u16>>,
}

impl courier::nsq::Handler for PanicsOnce {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &courier::nsq::Message) -> Option<((), ())> {
        Some(((), ()))
    }
    async fn handle(
        &self,
        _: (),
        _: (),
        m: &courier::nsq::Message,
    ) -> Result<(), courier::nsq::HandlerError> {
        self.attempts.borrow_mut().push(m.attempts());
        if m.attempts() == 1 {
            panic!("handler bug on first delivery");
        }
        Ok(())
    }
}

#[test]
fn a_panicking_handler_requeues_its_message_and_the_consumer_goes_on() {
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("panic");
    courier::run(async {
        let config = Config {
            backoff: Duration::from_millis(50),
            requeue_delay: Duration::from_millis(10),
            ..Config::default()
        };
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            PanicsOnce::default(),
        )
        .config(config)
        .start()
        .await
        .unwrap();
        nsqd.http_publish(&topic, b"a");
        nsqd.http_publish(&topic, b"b");
        let h = consumer.handler();
        assert!(wait_until(Duration::from_secs(15), || h.attempts.borrow().len() == 4).await);
        let mut attempts = h.attempts.borrow().clone();
        attempts.sort();
        assert_eq!(attempts, vec![1, 1, 2, 2]);
        assert!(
            wait_until(Duration::from_secs(5), || {
                let ch = channel_stats(&nsqd, &topic, "ch");
                ch["in_flight_count"] == 0 && ch["depth"] == 0
            })
            .await
        );
        consumer.stop().await;
    });
}
