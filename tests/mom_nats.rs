//! The facade over NATS (core subscriptions / queue groups) and JetStream
//! (ack=1), against a real `nats-server -js`: pubsub and pt2pt counts,
//! typed JSON, every compression, receive timeout, callbacks, cancel by
//! name, redelivery until acked, a corrupted envelope reported, and
//! nats-py reading and writing the same envelope.

mod mom_support;

use std::time::Duration;

use courier::mom::{header, Error};
use courier::nats::HeaderMap;
use courier_tests::jetstream::JetStreamServer;
use mom_support::*;

fn server() -> JetStreamServer {
    JetStreamServer::start()
}

fn uri_for(port: u16) -> impl Fn(&str, &str) -> String {
    move |dtype, query| {
        if query.contains("ack=1") {
            // A stream per test: its subjects are that test's key.
            let h = query
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            format!("nats-{dtype}://127.0.0.1:{port}?{query}&stream=S{h:x}")
        } else {
            format!("nats-{dtype}://127.0.0.1:{port}?{query}")
        }
    }
}

#[test]
fn pubsub_and_pt2pt_counts() {
    let s = server();
    let uri = uri_for(s.port());
    courier::run(async {
        Box::pin(pubsub_counts(&uri, "", 3000)).await;
        Box::pin(pt2pt_counts(&uri, "", 3000)).await;
        // JetStream pt2pt: a shared durable, each message once.
        Box::pin(pt2pt_counts(&uri, "ack=1", 3000)).await;
    });
}

#[test]
fn json_compressions_timeout_callback_cancel() {
    let s = server();
    let uri = uri_for(s.port());
    courier::run(async {
        Box::pin(json_and_compressions(&uri, "")).await;
        Box::pin(timeout_and_callback(&uri, "")).await;
        Box::pin(cancel_by_name_and_all(&uri, "")).await;
    });
}

#[test]
fn ack_mode_redelivers_until_acked_through_jetstream() {
    let s = server();
    let uri = uri_for(s.port());
    courier::run(async {
        let attempts = ack_fails_twice(&uri, "ack=1").await;
        // JetStream's own delivery count.
        assert_eq!(attempts, vec![1, 2, 3]);
    });
}

#[test]
fn corrupted_envelope_is_reported_not_delivered() {
    let s = server();
    let uri = uri_for(s.port())("pubsub", "");
    courier::run(async {
        let key = unique("bad");
        let mut r = receiver("r", &uri, &key).await;
        let native = courier::nats::connect([s.url()]).await.unwrap();
        let h = HeaderMap::new()
            .with(header::NAME, &key)
            .unwrap()
            .with(header::ID, "feedfeedfeedfeedfeedfeedfeedfeed")
            .unwrap()
            .with(header::CRC32C, &format!("{:08x}", crc32c::crc32c(b"good")))
            .unwrap();
        native.publish_with_headers(&key, &h, "evil").await.unwrap();
        native.publish(&key, "no envelope at all").await.unwrap();
        native.flush().await.unwrap();
        match r.receive(Some(Duration::from_secs(10))).await {
            Err(Error::Corrupted {
                name,
                message_id,
                expected,
                actual,
            }) => {
                assert_eq!(name, key);
                assert_eq!(message_id, "feedfeedfeedfeedfeedfeedfeedfeed");
                assert_eq!(expected, crc32c::crc32c(b"good"));
                assert_eq!(actual, crc32c::crc32c(b"evil"));
            }
            other => panic!("expected Corrupted, got {other:?}"),
        }
        let e = r.receive(Some(Duration::from_secs(10))).await.unwrap_err();
        assert!(matches!(e, Error::NotAnEnvelope { .. }), "{e}");
        assert!(e.to_string().contains("Mom-Crc32c"), "{e}");
        assert_eq!(r.corrupted(), 2);
        // A good one after them is delivered.
        let snd = sender(&uri, &key).await;
        snd.send(&"fine", None).await.unwrap();
        let d = r
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<String>().unwrap(), "fine");
        assert!(r
            .receive(Some(Duration::from_millis(200)))
            .await
            .unwrap()
            .is_none());
    });
}

#[test]
fn native_client_sees_the_envelope_headers() {
    let s = server();
    let uri = uri_for(s.port())("pubsub", "");
    courier::run(async {
        let key = unique("native");
        let native = courier::nats::connect([s.url()]).await.unwrap();
        let mut sub = native.subscribe(&key).await.unwrap();
        native.flush().await.unwrap();
        let snd = sender(&uri, &key).await;
        let o = courier::mom::SendOptions {
            compression: Some(courier::mom::Compression::Zlib),
            ..Default::default()
        };
        snd.send_with(&vec![1, 2, 3], None, &o).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        let h = m.headers().expect("headers");
        assert_eq!(h.get("Content-Type"), Some("application/json"));
        assert_eq!(h.get("Content-Encoding"), Some("utf-8"));
        assert_eq!(h.get("Mom-Compression"), Some("zlib"));
        assert_eq!(h.get("Mom-Name"), Some(key.as_str()));
        assert_eq!(
            h.get("Mom-Crc32c"),
            Some(format!("{:08x}", crc32c::crc32c(&m.payload)).as_str())
        );
        let plain = miniz_oxide::inflate::decompress_to_vec_zlib(&m.payload).unwrap();
        assert_eq!(plain, b"[1,2,3]");
    });
}

#[test]
fn nats_py_writes_and_reads_the_same_envelope() {
    let s = server();
    let uri = uri_for(s.port())("pubsub", "");
    let url = s.url();
    let key = unique("py");
    courier::run(async {
        let mut r = receiver("r", &uri, &key).await;
        let mut w = python(&["nats-write", &url, &key, "10"]);
        Box::pin(receive_python_written(&mut r, 10)).await;
        assert!(w.wait().unwrap().success());
    });
    let key = unique("py");
    let mut child = python(&["nats-read", &url, &key, "9"]);
    let out = wait_ready(&mut child);
    courier::run(async {
        let s = sender(&uri, &key).await;
        send_for_python(&s, 9).await;
        s.stop(Duration::from_secs(5)).await.unwrap();
    });
    check_python_read(&python_lines(child, out), &key, 9);
}

/// The stream's subjects as the server has them (native request).
async fn stream_subjects(nc: &courier::nats::Client, stream: &str) -> Vec<String> {
    let reply = nc
        .request_with(
            &format!("$JS.API.STREAM.INFO.{stream}"),
            None,
            b"",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    v["config"]["subjects"]
        .as_array()
        .unwrap_or_else(|| panic!("no subjects in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_second_subject_is_added_to_the_existing_stream() {
    let s = server();
    courier::run(async {
        let stream = unique("SUBJ");
        let uri = format!("nats-pubsub://127.0.0.1:{}?ack=1&stream={stream}", s.port());
        let nc = courier::nats::connect([s.url()]).await.unwrap();
        let (a, b, w) = (unique("a"), unique("b"), unique("w"));
        let sa = sender(&uri, &a).await;
        assert_eq!(stream_subjects(&nc, &stream).await, vec![a.clone()]);
        // A second sender on another subject: added, not bound silently.
        let sb = sender(&uri, &b).await;
        assert_eq!(
            stream_subjects(&nc, &stream).await,
            vec![a.clone(), b.clone()]
        );
        let mut rb = receiver("rb", &uri, &b).await;
        sb.send(&"to b", None).await.unwrap();
        sa.send(&"to a", None).await.unwrap();
        let d = rb
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<String>().unwrap(), "to b");
        d.ack().await.unwrap();
        // A sender's subject a wildcard binding covers: the wildcard
        // replaces it, the stream keeps one set of non-overlapping subjects.
        let wx = format!("{w}.x");
        let sw = sender(&uri, &wx).await;
        let mut rw = receiver("rw", &uri, &format!("{w}.*")).await;
        assert_eq!(
            stream_subjects(&nc, &stream).await,
            vec![a.clone(), b.clone(), format!("{w}.*")]
        );
        // Already covered: no change.
        let _sw2 = sender(&uri, &format!("{w}.y")).await;
        assert_eq!(stream_subjects(&nc, &stream).await.len(), 3);
        sw.send(&"to w.x", None).await.unwrap();
        let d = rw
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<String>().unwrap(), "to w.x");
        d.ack().await.unwrap();
        // A send to a key outside the stream adds it too (not an error).
        let c = unique("c");
        sa.send(&"to c", Some(&c)).await.unwrap();
        assert_eq!(
            stream_subjects(&nc, &stream).await,
            vec![a.clone(), b.clone(), format!("{w}.*"), c.clone()]
        );
        // JetStream stored exactly what was sent: 4 messages.
        let js = courier::nats::jetstream::new(nc.clone());
        assert_eq!(js.stream_info(&stream).await.unwrap().state.messages, 4);

        // A subject another stream holds cannot be added: a clear error.
        let other = unique("OTHER");
        let taken = unique("taken");
        let uri2 = format!("nats-pubsub://127.0.0.1:{}?ack=1&stream={other}", s.port());
        let _holder = sender(&uri2, &taken).await;
        let e = courier::mom::Sender::connect(
            "s",
            &uri,
            courier::mom::SenderOptions {
                routing_key: Some(taken.clone()),
                ..Default::default()
            },
        )
        .await
        .expect_err("a subject held by another stream must not be accepted");
        let text = e.to_string();
        assert!(
            text.contains(&format!("{stream:?} does not store {taken:?}")),
            "{text}"
        );
        assert!(text.contains("its own `stream=`"), "{text}");
        assert_eq!(stream_subjects(&nc, &stream).await.len(), 4);
    });
}

/// The child side of the kill -9 test: see `mom_support::child_sender_main`.
#[test]
#[ignore]
fn outbox_child_sender() {
    child_sender_main();
}

/// `outbox=DIR` on a NATS ack=1 sender: sends during a broker outage are
/// spooled and confirmed after the broker returns; `stop` reports what is
/// unconfirmed; a sender process killed with SIGKILL leaves its spool to
/// the next sender, which delivers it. JetStream stores every number
/// exactly once (the spooled header block carries the Nats-Msg-Id).
#[test]
fn outbox_survives_a_broker_outage_a_stop_and_a_sender_kill() {
    let mut js = server();
    let port = js.port();
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().display().to_string();
    let key = unique("ob");
    let stream = format!("OB{}", std::process::id());
    let plain = format!("nats-pt2pt://127.0.0.1:{port}?ack=1&stream={stream}");
    let uri = format!("{plain}&outbox={dir}");
    courier::run(async {
        // 1. Outage: 20 confirmed, broker killed, 20 spooled, broker back.
        let s = sender(&uri, &key).await;
        for i in 0..20u32 {
            s.send(&i, None).await.unwrap();
        }
        js.kill();
        for i in 20..40u32 {
            s.send(&i, None)
                .await
                .expect("spooled while the broker is down");
        }
        assert_eq!(s.sent(), 40);
        js.restart();
        s.stop(Duration::from_secs(20))
            .await
            .expect("everything confirmed after the broker returned");

        // 2. stop with the broker gone: what is left is reported.
        let s = sender(&uri, &key).await;
        js.kill();
        for i in 40..45u32 {
            s.send(&i, None).await.unwrap();
        }
        expect_unconfirmed(&s, 5, &dir).await;
        js.restart();

        // 3. A sender process killed (SIGKILL) with 20 spooled messages.
        let mut child = ChildSender::spawn(&uri, &key, 45..65);
        js.kill();
        assert_eq!(child.send_all(), 20);
        child.kill();
        js.restart();
        // The next sender on the spool replays the 5 + 20 left behind.
        replay_spool(&uri, &key).await;
        let got = drain_numbers(&plain, &key, 65).await;
        assert_eq!(got, (0..65).collect::<Vec<_>>(), "each number exactly once");
    });
}

/// `nats+tls://` with the URI's TLS options against a nats-server that
/// requires a client certificate (certificates generated by rcgen): the
/// CA and client certificate carry messages both ways; no client
/// certificate, or an unrelated CA, is refused with a TLS error;
/// `tls_insecure=1` accepts the unknown server; `tls_*` on a plain
/// `nats://` URI is a URI error.
#[test]
fn tls_options_from_the_uri() {
    use courier_tests::certs::TestPki;
    let pki = TestPki::generate();
    let conf = pki.nats_config("s.conf", "  verify: true", false, "");
    let server = courier_tests::NatsServer::start_with(&["-c", conf.to_str().unwrap()]);
    let port = server.port();
    let enc = |p: &std::path::Path| p.display().to_string().replace('/', "%2F");
    let client = format!(
        "tls_cert={}&tls_key={}",
        enc(&pki.client_cert),
        enc(&pki.client_key)
    );
    let good = format!(
        "nats+tls-pubsub://127.0.0.1:{port}?tls_ca={}&{client}",
        enc(&pki.ca_file)
    );
    courier::run(async {
        let key = unique("tls");
        let mut r = receiver("r", &good, &key).await;
        let s = sender(&good, &key).await;
        for i in 0..10u32 {
            s.send(&i, None).await.unwrap();
        }
        for i in 0..10u32 {
            let d = r
                .receive(Some(Duration::from_secs(5)))
                .await
                .unwrap()
                .expect("a message over TLS");
            assert_eq!(d.decode::<u32>().unwrap(), i);
        }
        s.stop(Duration::from_secs(5)).await.unwrap();
        r.stop().await;

        let refused = |uri: String| async move {
            courier::mom::Sender::connect("s", &uri, Default::default())
                .await
                .map(drop)
                .expect_err("refused")
                .to_string()
        };
        // No client certificate: the server's verify refuses the handshake.
        let e = refused(format!(
            "tls://127.0.0.1:{port}?tls_ca={}",
            enc(&pki.ca_file)
        ))
        .await;
        assert!(e.to_lowercase().contains("tls"), "{e}");
        // A CA that did not sign the server's certificate.
        let e = refused(format!(
            "tls://127.0.0.1:{port}?tls_ca={}&{client}",
            enc(&pki.other_ca_file)
        ))
        .await;
        assert!(e.to_lowercase().contains("certificate"), "{e}");
        // The test switch accepts it (client certificate still presented).
        let s = sender(
            &format!(
                "tls://127.0.0.1:{port}?tls_ca={}&{client}&tls_insecure=1",
                enc(&pki.other_ca_file)
            ),
            &key,
        )
        .await;
        s.send(&1u32, None).await.unwrap();
        s.stop(Duration::from_secs(5)).await.unwrap();
        // A missing file names the option and the path.
        let e = refused(format!("tls://127.0.0.1:{port}?tls_ca=%2Fnonexistent.pem")).await;
        assert!(
            e.contains("tls_ca=/nonexistent.pem") && e.contains("cannot read"),
            "{e}"
        );
        // TLS options on a plaintext URI are refused before connecting.
        let e = refused(format!("nats://127.0.0.1:{port}?tls_insecure=1")).await;
        assert!(e.contains("need a TLS protocol"), "{e}");
    });
}
