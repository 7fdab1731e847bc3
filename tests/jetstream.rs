//! JetStream through the async client against a real `nats-server -js`
//! (store in the test's temp dir). The server's own view is checked with
//! `$JS.API.STREAM.INFO` / `CONSUMER.INFO`. Every wait is bounded.

use std::future::Future;
use std::time::{Duration, SystemTime};

use courier::nats::jetstream::{
    self, ApiErrorKind, ConsumerOptions, Context, Deliver, JetStreamError, PublishOptions,
    PullOptions, Retention, Storage, StreamOptions,
};
use courier::nats::{self, ConnectOptions};
use courier_tests::jetstream::JetStreamServer;

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing happened within 30 s"))
}

async fn js(server: &JetStreamServer) -> Context {
    let client = ConnectOptions::new()
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
        .max_reconnects(None)
        .connect([server.url()])
        .await
        .unwrap();
    jetstream::new(client)
}

async fn stream(js: &Context, name: &str, subjects: &[&str]) {
    js.create_stream(&StreamOptions::new(name).subjects(subjects.iter().copied()))
        .await
        .unwrap();
}

#[test]
fn stream_create_update_info_purge_delete() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        let opts = StreamOptions::new("ORDERS")
            .subjects(["orders.>"])
            .retention(Retention::Limits)
            .storage(Storage::Memory)
            .max_msgs(100)
            .max_bytes(1 << 20)
            .max_age(Duration::from_secs(3600))
            .duplicate_window(Duration::from_secs(60));
        let info = js.create_stream(&opts).await.unwrap();
        assert_eq!((info.name.as_str(), info.state.messages), ("ORDERS", 0));
        // Same config again: idempotent.
        js.create_stream(&opts).await.unwrap();
        // Another config under the same name: typed error.
        let err = js
            .create_stream(&StreamOptions::new("ORDERS").subjects(["other.>"]))
            .await
            .unwrap_err();
        assert_eq!(err.api_kind(), Some(ApiErrorKind::StreamNameInUse), "{err}");

        for i in 0..10 {
            js.publish(&format!("orders.{}", i % 2), format!("o{i}"))
                .await
                .unwrap();
        }
        let info = js.stream_info("ORDERS").await.unwrap();
        assert_eq!(
            (
                info.state.messages,
                info.state.first_seq,
                info.state.last_seq
            ),
            (10, 1, 10)
        );

        // Update: keep at most 4 messages; the server trims at once.
        let info = js.update_stream(&opts.clone().max_msgs(4)).await.unwrap();
        assert_eq!(info.state.messages, 4);
        assert_eq!(info.state.first_seq, 7);

        assert_eq!(
            js.purge_stream("ORDERS", Some("orders.0"), None)
                .await
                .unwrap(),
            2
        );
        assert_eq!(js.stream_info("ORDERS").await.unwrap().state.messages, 2);
        assert_eq!(js.purge_stream("ORDERS", None, None).await.unwrap(), 2);
        assert_eq!(js.stream_info("ORDERS").await.unwrap().state.messages, 0);

        js.delete_stream("ORDERS").await.unwrap();
        let err = js.stream_info("ORDERS").await.unwrap_err();
        assert_eq!(err.api_kind(), Some(ApiErrorKind::StreamNotFound));
        let err = js.consumer_info("ORDERS", "nope").await.unwrap_err();
        assert_eq!(err.api_kind(), Some(ApiErrorKind::StreamNotFound));

        // Work-queue and interest retention are accepted.
        js.create_stream(
            &StreamOptions::new("WQ")
                .subjects(["wq.>"])
                .retention(Retention::WorkQueue),
        )
        .await
        .unwrap();
        js.create_stream(
            &StreamOptions::new("INT")
                .subjects(["int.>"])
                .retention(Retention::Interest),
        )
        .await
        .unwrap();
        let err = js.consumer_info("WQ", "nope").await.unwrap_err();
        assert_eq!(err.api_kind(), Some(ApiErrorKind::ConsumerNotFound));
    });
}

#[test]
fn publish_acks_dedup_expectations_and_no_stream() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "P", &["p.>"]).await;
        let ack = js.publish("p.a", "one").await.unwrap();
        assert_eq!(
            (ack.stream.as_str(), ack.seq, ack.duplicate),
            ("P", 1, false)
        );

        let id = PublishOptions::with_msg_id("m-2");
        assert!(!js.publish_with("p.a", "two", &id).await.unwrap().duplicate);
        let again = js.publish_with("p.a", "two", &id).await.unwrap();
        assert_eq!((again.seq, again.duplicate), (2, true));

        let wrong = PublishOptions {
            expected_last_sequence: Some(1),
            ..Default::default()
        };
        let err = js.publish_with("p.a", "x", &wrong).await.unwrap_err();
        assert_eq!(
            err.api_kind(),
            Some(ApiErrorKind::WrongLastSequence),
            "{err}"
        );
        let right = PublishOptions {
            expected_last_sequence: Some(2),
            expected_last_subject_sequence: Some(2),
            expected_stream: Some("P".into()),
            ..Default::default()
        };
        assert_eq!(js.publish_with("p.a", "3", &right).await.unwrap().seq, 3);

        match js.publish("nowhere.x", "x").await {
            Err(JetStreamError::NoStream { subject }) => assert_eq!(subject, "nowhere.x"),
            other => panic!("expected NoStream, got {other:?}"),
        }
        assert_eq!(js.stream_info("P").await.unwrap().state.messages, 3);
    });
}

#[test]
fn handler_failing_twice_is_delivered_three_times_and_acked_once() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "H", &["h.>"]).await;
        js.publish("h.job", "work").await.unwrap();
        let consumer = js
            .create_consumer(
                "H",
                &ConsumerOptions::durable("worker").ack_wait(Duration::from_secs(5)),
            )
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        loop {
            let batch = within("fetch", consumer.fetch(1, Duration::from_secs(2)))
                .await
                .unwrap();
            let Some(msg) = batch.into_iter().next() else {
                continue;
            };
            deliveries.push(msg.metadata().delivered);
            if deliveries.len() < 3 {
                msg.nak(None).await.unwrap(); // the handler failed
            } else {
                msg.ack_sync(Duration::from_secs(5)).await.unwrap();
                break;
            }
        }
        assert_eq!(deliveries, vec![1, 2, 3]);
        let info = consumer.info().await.unwrap();
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(info.ack_floor.stream_seq, 1);
        // Nothing more comes.
        let rest = consumer.fetch(1, Duration::from_millis(500)).await.unwrap();
        assert!(rest.is_empty(), "acked message came back: {rest:?}");
    });
}

#[test]
fn nak_delay_term_and_ack_wait_expiry() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "N", &["n.>"]).await;
        js.publish("n.delay", "d").await.unwrap();
        let c = js
            .create_consumer(
                "N",
                &ConsumerOptions::durable("d")
                    .filter_subject("n.delay")
                    .ack_wait(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        let first = c.fetch(1, Duration::from_secs(2)).await.unwrap().remove(0);
        let naked_at = std::time::Instant::now();
        first.nak(Some(Duration::from_millis(1500))).await.unwrap();
        let early = c.fetch(1, Duration::from_millis(700)).await.unwrap();
        assert!(early.is_empty(), "redelivered before the nak delay");
        let again = within("redelivery after the nak delay", async {
            loop {
                if let Some(m) = c.fetch(1, Duration::from_secs(2)).await.unwrap().pop() {
                    return m;
                }
            }
        })
        .await;
        assert!(naked_at.elapsed() >= Duration::from_millis(1400));
        assert_eq!(again.metadata().delivered, 2);
        again.ack().await.unwrap();

        // term: never again, even with a short ack wait.
        js.publish("n.term", "t").await.unwrap();
        let t = js
            .create_consumer(
                "N",
                &ConsumerOptions::durable("t")
                    .filter_subject("n.term")
                    .ack_wait(Duration::from_millis(300)),
            )
            .await
            .unwrap();
        let m = t.fetch(1, Duration::from_secs(2)).await.unwrap().remove(0);
        m.term().await.unwrap();
        assert!(t
            .fetch(1, Duration::from_millis(1200))
            .await
            .unwrap()
            .is_empty());

        // ack wait expiry: not acked -> delivered again; in_progress holds it.
        js.publish("n.wait", "w").await.unwrap();
        let w = js
            .create_consumer(
                "N",
                &ConsumerOptions::durable("w")
                    .filter_subject("n.wait")
                    .ack_wait(Duration::from_millis(800)),
            )
            .await
            .unwrap();
        let m = w.fetch(1, Duration::from_secs(2)).await.unwrap().remove(0);
        assert_eq!(m.metadata().delivered, 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        m.in_progress().await.unwrap();
        let held = w.fetch(1, Duration::from_millis(500)).await.unwrap();
        assert!(held.is_empty(), "in-progress did not restart the ack wait");
        let m2 = within("redelivery after ack wait", async {
            loop {
                if let Some(m) = w.fetch(1, Duration::from_secs(2)).await.unwrap().pop() {
                    return m;
                }
            }
        })
        .await;
        assert_eq!(m2.metadata().delivered, 2);
        m2.ack_sync(Duration::from_secs(5)).await.unwrap();
        assert_eq!(w.info().await.unwrap().num_ack_pending, 0);
    });
}

#[test]
fn deliver_policies_filter_max_deliver_and_ephemeral() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "D", &["d.>"]).await;
        for i in 1..=5 {
            js.publish(
                &format!("d.{}", if i % 2 == 0 { "even" } else { "odd" }),
                format!("{i}"),
            )
            .await
            .unwrap();
        }
        let mid = SystemTime::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        js.publish("d.odd", "6").await.unwrap(); // seq 6
        let seqs = |v: Vec<jetstream::JsMessage>| -> Vec<u64> {
            v.iter().map(|m| m.metadata().stream_seq).collect()
        };
        let all = js
            .create_consumer("D", &ConsumerOptions::ephemeral())
            .await
            .unwrap();
        assert_eq!(
            seqs(all.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![1, 2, 3, 4, 5, 6]
        );
        let last = js
            .create_consumer("D", &ConsumerOptions::ephemeral().deliver(Deliver::Last))
            .await
            .unwrap();
        assert_eq!(
            seqs(last.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![6]
        );
        let by_seq = js
            .create_consumer(
                "D",
                &ConsumerOptions::ephemeral().deliver(Deliver::BySequence(4)),
            )
            .await
            .unwrap();
        assert_eq!(
            seqs(by_seq.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![4, 5, 6]
        );
        let by_time = js
            .create_consumer(
                "D",
                &ConsumerOptions::ephemeral().deliver(Deliver::ByTime(mid)),
            )
            .await
            .unwrap();
        assert_eq!(
            seqs(by_time.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![6]
        );
        let evens = js
            .create_consumer(
                "D",
                &ConsumerOptions::durable("evens").filter_subject("d.even"),
            )
            .await
            .unwrap();
        assert_eq!(
            seqs(evens.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![2, 4]
        );
        let new = js
            .create_consumer("D", &ConsumerOptions::ephemeral().deliver(Deliver::New))
            .await
            .unwrap();
        js.publish("d.odd", "7").await.unwrap();
        assert_eq!(
            seqs(new.fetch(10, Duration::from_millis(500)).await.unwrap()),
            vec![7]
        );

        // max_deliver 2: after two unacked deliveries it stops.
        let md = js
            .create_consumer(
                "D",
                &ConsumerOptions::durable("md")
                    .filter_subject("d.even")
                    .max_deliver(2)
                    .ack_wait(Duration::from_millis(300)),
            )
            .await
            .unwrap();
        let mut seen = 0;
        for _ in 0..4 {
            seen += md
                .fetch(10, Duration::from_millis(700))
                .await
                .unwrap()
                .len();
        }
        assert_eq!(seen, 4, "2 messages x max_deliver 2");
        assert_eq!(js.stream_info("D").await.unwrap().state.consumer_count, 7);
        js.delete_consumer("D", "md").await.unwrap();
        assert_eq!(
            js.consumer_info("D", "md").await.unwrap_err().api_kind(),
            Some(ApiErrorKind::ConsumerNotFound)
        );
        let err = js
            .create_consumer("D", &ConsumerOptions::durable("bad.name"))
            .await
            .unwrap_err();
        assert!(matches!(err, JetStreamError::Protocol(_)), "{err:?}");
    });
}

#[test]
fn empty_fetch_ends_with_the_request_and_reports_nothing() {
    let server = JetStreamServer::start();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "E", &["e.>"]).await;
        let c = js
            .create_consumer("E", &ConsumerOptions::durable("e"))
            .await
            .unwrap();
        let start = std::time::Instant::now();
        let got = within("empty fetch", c.fetch(5, Duration::from_millis(400)))
            .await
            .unwrap();
        assert!(got.is_empty());
        // It ended on the server's 408, not on the client's 5 s guard.
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn publish_window_accounts_exactly_across_a_server_restart() {
    let mut server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let client = ConnectOptions::new()
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .max_reconnects(None)
            .connect([url.as_str()])
            .await
            .unwrap();
        let js = jetstream::new(client).with_timeout(Duration::from_millis(1500));
        stream(&js, "W", &["w.>"]).await;
        let window = js.publish_window(64);
        const N: usize = 3000;
        let mut acks = Vec::with_capacity(N);
        for i in 0..N {
            if i == N / 2 {
                server.kill();
                server.restart();
            }
            let opts = PublishOptions::with_msg_id(format!("w-{i}"));
            acks.push((
                i,
                window.publish("w.n", format!("{i}"), &opts).await.unwrap(),
            ));
            let s = window.stats();
            assert!(s.in_flight <= 64, "window exceeded: {s:?}");
        }
        let stats = within("window drains", window.wait_all(Duration::from_secs(20)))
            .await
            .unwrap();
        assert_eq!(stats.in_flight, 0);
        assert_eq!(
            stats.published,
            stats.acked + stats.duplicates + stats.refused + stats.timed_out + stats.failed,
            "{stats:?}"
        );
        assert_eq!(stats.published, N as u64);
        // Retry what was not acknowledged, with the same ids.
        let mut retried = 0;
        for (i, ack) in acks {
            if ack.await.is_err() {
                retried += 1;
                let opts = PublishOptions {
                    msg_id: Some(format!("w-{i}")),
                    retries: 5,
                    ..Default::default()
                };
                js.publish_with("w.n", format!("{i}"), &opts).await.unwrap();
            }
        }
        let info = js.stream_info("W").await.unwrap();
        assert_eq!(
            info.state.messages, N as u64,
            "retried {retried}, stats {stats:?}"
        );
        eprintln!("window across restart: {stats:?}, retried {retried}");
    });
}

#[test]
fn messages_stream_resumes_after_a_server_restart() {
    let mut server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let client = ConnectOptions::new()
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .max_reconnects(None)
            .connect([url.as_str()])
            .await
            .unwrap();
        let js = jetstream::new(client);
        stream(&js, "M", &["m.>"]).await;
        for i in 0..200 {
            js.publish("m.x", format!("{i}")).await.unwrap();
        }
        let c = js
            .create_consumer(
                "M",
                &ConsumerOptions::durable("m").ack_wait(Duration::from_secs(2)),
            )
            .await
            .unwrap();
        let mut msgs = c
            .messages(PullOptions {
                batch: 20,
                max_bytes: Some(64 * 1024),
                expires: Duration::from_secs(5),
                idle_heartbeat: Duration::from_millis(300),
            })
            .await
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 100 {
            let m = within("message", msgs.next()).await.unwrap().unwrap();
            m.ack().await.unwrap();
            seen.insert(m.metadata().stream_seq);
        }
        js.client().flush().await.unwrap();
        server.kill();
        server.restart();
        for i in 200..250 {
            let opts = PublishOptions {
                retries: 20,
                ..Default::default()
            };
            within(
                "publish after restart",
                js.publish_with("m.x", format!("{i}"), &opts),
            )
            .await
            .unwrap();
        }
        while seen.len() < 250 {
            let m = within("message after restart", msgs.next())
                .await
                .unwrap()
                .unwrap();
            m.ack_sync(Duration::from_secs(5)).await.unwrap();
            seen.insert(m.metadata().stream_seq);
        }
        assert_eq!(seen.len(), 250);
        assert!(msgs.repulls() >= 1, "the pull was never re-issued");
        // A kill -9 may lose the consumer's latest acks (they are flushed
        // to disk periodically): those messages come again (at-least-once)
        // and prefetched ones wait in the stream. Ack until the server
        // has nothing outstanding.
        let mut redelivered = 0;
        within("every delivery acked", async {
            loop {
                let info = c.info().await.unwrap();
                if info.num_ack_pending == 0 && info.num_pending == 0 {
                    break;
                }
                if let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), msgs.next()).await
                {
                    let m = m.unwrap();
                    assert!(seen.contains(&m.metadata().stream_seq));
                    redelivered += 1;
                    m.ack_sync(Duration::from_secs(5)).await.unwrap();
                }
            }
        })
        .await;
        eprintln!(
            "redelivered after the restart: {redelivered}, repulls {}",
            msgs.repulls()
        );
    });
}

#[test]
fn missed_heartbeats_reissue_the_pull_without_a_reconnect() {
    // The server is frozen (SIGSTOP) longer than two heartbeats while the
    // connection stays up: the stream must notice and pull again, not
    // wait forever for a pull the server may have dropped (nats.go #1621).
    let server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "HB", &["hb.>"]).await;
        for i in 0..10 {
            js.publish("hb.x", format!("{i}")).await.unwrap();
        }
        let c = js
            .create_consumer("HB", &ConsumerOptions::durable("hb"))
            .await
            .unwrap();
        let mut msgs = c
            .messages(PullOptions {
                batch: 5,
                max_bytes: None,
                expires: Duration::from_secs(10),
                idle_heartbeat: Duration::from_millis(200),
            })
            .await
            .unwrap();
        for _ in 0..10 {
            within("message", msgs.next())
                .await
                .unwrap()
                .unwrap()
                .ack()
                .await
                .unwrap();
        }
        let before = msgs.repulls();
        let pid = server.pid().unwrap().to_string();
        let signal = |sig: &str| {
            let ok = std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap();
            assert!(ok.success());
        };
        signal("-STOP");
        // Wait on the stream while the server is frozen: no message can come.
        let frozen = tokio::time::timeout(Duration::from_millis(1000), msgs.next()).await;
        assert!(frozen.is_err(), "a message arrived from a frozen server");
        signal("-CONT");
        assert!(
            msgs.repulls() > before,
            "two missed heartbeats did not re-issue the pull"
        );
        let other = nats::connect([url.as_str()]).await.unwrap();
        let js2 = jetstream::new(other);
        for i in 10..15 {
            js2.publish("hb.x", format!("{i}")).await.unwrap();
        }
        for _ in 0..5 {
            let m = within("message after the freeze", msgs.next())
                .await
                .unwrap()
                .unwrap();
            assert!(m.metadata().stream_seq > 10);
            m.ack().await.unwrap();
        }
        // The connection never dropped: this was the heartbeat path.
        assert_eq!(js.client().statistics().reconnects, 0);
    });
}

const PY_JS: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    js = nc.jetstream()
    if sys.argv[2] == "publish":
        for i in range(20):
            ack = await js.publish("interop.py", f"py-{i}".encode(), headers={"Nats-Msg-Id": f"py-{i}"})
        print("PUBLISHED", ack.seq)
    else:
        sub = await js.pull_subscribe("interop.rs", durable="pyc", stream="INTEROP")
        got = []
        while len(got) < 20:
            for m in await sub.fetch(20 - len(got), timeout=10):
                got.append(m.data.decode())
                await m.ack()
        print(",".join(got))
    await nc.close()
asyncio.run(main())
"#;

fn python(url: &str, mode: &str) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", PY_JS, url, mode])
        .output()
        .expect("python3 with nats-py (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "nats-py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn interop_with_nats_py_jetstream_both_ways() {
    let server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let js = js(&server).await;
        stream(&js, "INTEROP", &["interop.>"]).await;
        // nats-py publishes with acks; courier pulls and acks.
        let u = url.clone();
        let out = tokio::task::spawn_blocking(move || python(&u, "publish"))
            .await
            .unwrap();
        assert_eq!(out, vec!["PUBLISHED 20".to_string()]);
        let c = js
            .create_consumer(
                "INTEROP",
                &ConsumerOptions::durable("rs").filter_subject("interop.py"),
            )
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 20 {
            for m in within("fetch", c.fetch(20, Duration::from_secs(2)))
                .await
                .unwrap()
            {
                assert_eq!(
                    m.headers()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(str::to_string),
                    Some(String::from_utf8_lossy(m.payload()).into_owned())
                );
                got.push(String::from_utf8(m.payload().to_vec()).unwrap());
                m.ack().await.unwrap();
            }
        }
        assert_eq!(got, (0..20).map(|i| format!("py-{i}")).collect::<Vec<_>>());
        // courier publishes with acks; nats-py pulls and acks.
        for i in 0..20 {
            js.publish("interop.rs", format!("rs-{i}")).await.unwrap();
        }
        let u = url.clone();
        let out = tokio::task::spawn_blocking(move || python(&u, "consume"))
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![(0..20)
                .map(|i| format!("rs-{i}"))
                .collect::<Vec<_>>()
                .join(",")]
        );
        let info = js.consumer_info("INTEROP", "pyc").await.unwrap();
        assert_eq!(info.num_ack_pending, 0);
        assert_eq!(js.stream_info("INTEROP").await.unwrap().state.messages, 40);
        let _ = nats::Error::Closed;
    });
}
