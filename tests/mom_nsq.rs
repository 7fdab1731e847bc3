//! The facade over NSQ against a real nsqd (and nsqlookupd): pubsub (an
//! ephemeral channel per receiver) and pt2pt (one shared channel) counts,
//! typed JSON, every compression, receive timeout, callbacks, cancel by
//! name, FIN/REQ ack mode, a corrupted envelope reported, discovery.

mod mom_support;
mod nsq_support;

use std::time::Duration;

use courier::mom::Error;
use mom_support::*;

fn uri_for(addr: String) -> impl Fn(&str, &str) -> String {
    move |dtype, query| format!("nsq-{dtype}://{addr}?{query}")
}

#[test]
fn pubsub_and_pt2pt_counts() {
    let nsqd = nsq_support::nsqd(&[]);
    let uri = uri_for(nsqd.tcp_addr());
    courier::run(async {
        Box::pin(pubsub_counts(&uri, "", 3000)).await;
        Box::pin(pt2pt_counts(&uri, "ack=1", 3000)).await;
    });
}

#[test]
fn json_compressions_timeout_callback_cancel() {
    let nsqd = nsq_support::nsqd(&[]);
    let uri = uri_for(nsqd.tcp_addr());
    courier::run(async {
        Box::pin(json_and_compressions(&uri, "")).await;
        Box::pin(timeout_and_callback(&uri, "")).await;
        Box::pin(cancel_by_name_and_all(&uri, "")).await;
    });
}

#[test]
fn ack_mode_fins_once_after_two_reqs() {
    let nsqd = nsq_support::nsqd(&[]);
    let uri = uri_for(nsqd.tcp_addr());
    courier::run(async {
        let attempts = Box::pin(ack_fails_twice(&uri, "ack=1")).await;
        // nsqd's attempt counter: REQ'd twice, FIN'd on the third.
        assert_eq!(attempts, vec![1, 2, 3]);
    });
    let stats = nsqd.http_get("/stats?format=json");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let topics = v["topics"].as_array().unwrap();
    let t = topics
        .iter()
        .find(|t| t["topic_name"].as_str().unwrap().starts_with("ack_"))
        .expect("the ack topic");
    let ch = &t["channels"][0];
    assert_eq!(ch["requeue_count"], 2, "{ch}");
    assert_eq!(ch["depth"], 0, "{ch}");
    assert_eq!(ch["in_flight_count"], 0, "{ch}");
}

#[test]
fn corrupted_envelope_is_reported_and_finished() {
    let nsqd = nsq_support::nsqd(&[]);
    let uri = uri_for(nsqd.tcp_addr())("pubsub", "");
    courier::run(async {
        let key = unique("bad");
        let mut r = receiver("r", &uri, &key).await;
        // A good envelope from the facade, captured by a native consumer
        // would be work; build one with a sender and flip a byte through
        // nsqd's HTTP API instead: "MOM1" + bad CRC.
        let mut bytes = b"MOM1\0\0\0\0".to_vec();
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.push(0);
        for f in [
            key.as_bytes(),
            b"0123456789abcdef0123456789abcdef",
            b"",
            b"",
        ] {
            bytes.push(f.len() as u8);
            bytes.extend_from_slice(f);
        }
        bytes.extend_from_slice(b"payload");
        let crc = crc32c::crc32c(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let native = courier::nsq::Producer::new([nsqd.tcp_addr()], Default::default()).unwrap();
        native.publish(&key, &bytes).await.unwrap();
        native.publish(&key, b"not an envelope").await.unwrap();
        match r.receive(Some(Duration::from_secs(10))).await {
            Err(Error::Corrupted {
                name,
                message_id,
                expected,
                ..
            }) => {
                assert_eq!(name, key);
                assert_eq!(message_id, "0123456789abcdef0123456789abcdef");
                assert_eq!(expected, crc);
            }
            other => panic!("expected Corrupted, got {other:?}"),
        }
        let e = r.receive(Some(Duration::from_secs(10))).await.unwrap_err();
        assert!(matches!(e, Error::NotAnEnvelope { .. }), "{e}");
        let s = sender(&uri, &key).await;
        s.send(&"fine", None).await.unwrap();
        let d = r
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<String>().unwrap(), "fine");
        assert_eq!(r.corrupted(), 2);
        native.stop().await;
    });
}

#[test]
fn nsqlookupd_uris_discover_nsqd() {
    let lookupd = courier_tests::Nsqlookupd::start();
    let arg = format!("--lookupd-tcp-address={}", lookupd.tcp_addr());
    let nsqd = nsq_support::nsqd(&[arg.as_str(), "--broadcast-address=127.0.0.1"]);
    let uri = format!("nsqlookupd-pt2pt://127.0.0.1:{}?queue=w", lookupd.http_port);
    courier::run(async {
        let key = unique("disc");
        // The topic exists once something is published; the sender finds
        // nsqd through lookupd's /nodes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let s = loop {
            match courier::mom::Sender::connect(
                "s",
                &uri,
                courier::mom::SenderOptions {
                    routing_key: Some(key.clone()),
                    ..Default::default()
                },
            )
            .await
            {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        s.send(&1u32, None).await.unwrap();
        let mut r = receiver("w", &uri, &key).await;
        let d = r
            .receive(Some(Duration::from_secs(15)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<u32>().unwrap(), 1);
        r.stop().await;
    });
    drop(nsqd);
}

#[test]
fn pynsq_writes_and_reads_the_same_envelope() {
    let nsqd = nsq_support::nsqd(&[]);
    let addr = nsqd.tcp_addr();
    let uri = uri_for(addr.clone())("pt2pt", "queue=rs&ack=1");
    let key = unique("py");
    courier::run(async {
        let mut r = receiver("r", &uri, &key).await;
        let mut w = python(&["nsq-write", &addr, &key, "10"]);
        Box::pin(receive_python_written(&mut r, 10)).await;
        assert!(w.wait().unwrap().success());
        r.stop().await;
    });
    let key = unique("py");
    let mut child = python(&["nsq-read", &addr, &key, "9"]);
    let out = wait_ready(&mut child);
    courier::run(async {
        let s = sender(&uri, &key).await;
        send_for_python(&s, 9).await;
        s.stop(Duration::from_secs(5)).await.unwrap();
    });
    check_python_read(&python_lines(child, out), &key, 9);
}

/// `outbox=DIR`: sends are spooled on disk first; `stop()` waits for
/// nsqd's confirmations, and reports (typed, with the spool) what nsqd
/// never confirmed; those are replayed by the next sender on the spool.
#[test]
fn outbox_stop_waits_for_confirmations_and_reports_the_rest() {
    let mut nsqd = nsq_support::nsqd(&[]);
    let addr = nsqd.tcp_addr();
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().display().to_string();
    courier::run(async {
        let key = unique("outbox");
        let uri = format!("nsq-pt2pt://{addr}?ack=1&outbox={dir}");
        let mut r = receiver("r", &format!("nsq-pt2pt://{addr}?ack=1"), &key).await;
        let s = sender(&uri, &key).await;
        for i in 0..50u32 {
            s.send(&i, None).await.unwrap();
        }
        assert_eq!(s.sent(), 50);
        s.stop(Duration::from_secs(10)).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 50 {
            let d = r
                .receive(Some(Duration::from_secs(10)))
                .await
                .unwrap()
                .expect("every spooled message reaches nsqd");
            got.push(d.decode::<u32>().unwrap());
            d.ack().await.unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        r.stop().await;

        // nsqd gone: sends still succeed (spooled), stop reports them.
        nsqd.kill();
        let s = sender(&uri, &key).await;
        for i in 0..5u32 {
            s.send(&i, None).await.unwrap();
        }
        let e = s.stop(Duration::from_millis(500)).await.unwrap_err();
        let text = e.to_string();
        match e {
            Error::Unconfirmed {
                remaining, spool, ..
            } => {
                assert_eq!(remaining, 5);
                assert_eq!(spool, dir);
                assert!(text.contains("sent when a sender opens it again"), "{text}");
            }
            other => panic!("expected Unconfirmed, got {other:?}"),
        }

        // The next sender on the spool (another nsqd) replays those 5.
        let nsqd2 = nsq_support::nsqd(&[]);
        let addr2 = nsqd2.tcp_addr();
        let mut r = receiver("r", &format!("nsq-pt2pt://{addr2}?ack=1"), &key).await;
        let s = sender(&format!("nsq-pt2pt://{addr2}?ack=1&outbox={dir}"), &key).await;
        let mut got = Vec::new();
        while got.len() < 5 {
            let d = r
                .receive(Some(Duration::from_secs(10)))
                .await
                .unwrap()
                .expect("the spooled messages are replayed");
            got.push(d.decode::<u32>().unwrap());
            d.ack().await.unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert_eq!(s.sent(), 0, "replays are not this sender's sends");
        s.stop(Duration::from_secs(10)).await.unwrap();
        assert!(r
            .receive(Some(Duration::from_millis(300)))
            .await
            .unwrap()
            .is_none());
        r.stop().await;
    });
}

#[test]
fn outbox_is_refused_on_amqp_and_on_nats_without_ack() {
    courier::run(async {
        for (uri, says) in [
            (
                "amqp://127.0.0.1:1?outbox=/tmp/x",
                "outbox=DIR on AMQP waits for the broker's publisher confirm: add ack=1",
            ),
            (
                "nats://127.0.0.1:1?outbox=/tmp/x",
                "outbox=DIR on NATS publishes through JetStream",
            ),
        ] {
            let e = courier::mom::Sender::connect("s", uri, Default::default())
                .await
                .expect_err("refused before connecting");
            assert!(e.to_string().contains(says), "{uri}: {e}");
        }
    });
}

/// NSQ with the URI's TLS options (nsqd's TLS upgrade after IDENTIFY)
/// against an nsqd that requires TLS and a verified client certificate
/// (rcgen certificates): messages go both ways; an unrelated CA is refused.
#[test]
fn tls_options_from_the_uri() {
    use courier_tests::certs::TestPki;
    let pki = TestPki::generate();
    let d = |p: &std::path::Path| p.display().to_string();
    let nsqd = nsq_support::nsqd(&[
        &format!("--tls-cert={}", d(&pki.server_cert)),
        &format!("--tls-key={}", d(&pki.server_key)),
        &format!("--tls-root-ca-file={}", d(&pki.ca_file)),
        "--tls-required=true",
        "--tls-client-auth-policy=require-verify",
        &format!("--https-address=127.0.0.1:{}", courier_tests::free_port()),
    ]);
    let addr = nsqd.tcp_addr();
    let enc = |p: &std::path::Path| d(p).replace('/', "%2F");
    let tls = |ca: &std::path::Path| {
        format!(
            "nsq-pubsub://{addr}?tls_ca={}&tls_cert={}&tls_key={}",
            enc(ca),
            enc(&pki.client_cert),
            enc(&pki.client_key)
        )
    };
    courier::run(async {
        let key = unique("tls");
        let uri = tls(&pki.ca_file);
        let mut r = receiver("r", &uri, &key).await;
        let s = sender(&uri, &key).await;
        for i in 0..10u32 {
            s.send(&i, None).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 10 {
            let m = r
                .receive(Some(Duration::from_secs(10)))
                .await
                .unwrap()
                .expect("a message over TLS");
            got.push(m.decode::<u32>().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        s.stop(Duration::from_secs(5)).await.unwrap();
        r.stop().await;
        let e = courier::mom::Sender::connect("s", &tls(&pki.other_ca_file), Default::default())
            .await
            .map(drop)
            .expect_err("an unrelated CA refuses nsqd's certificate")
            .to_string();
        assert!(e.to_lowercase().contains("certificate"), "{e}");
    });
}
