//! NATS over TLS against a real nats-server configured by generated files,
//! with certificates generated at test time (rcgen). The server's view is
//! checked through its monitoring endpoint (`/connz`: TLS version).

use std::path::Path;
use std::time::Duration;

use courier::nats::{self, ConnectOptions, Event, Subscriber};
use courier_tests::certs::TestPki;
use courier_tests::nats_events::first_disconnect_reason;
use courier_tests::{free_port, http_request, NatsServer, ScriptedPeer};

/// Starts nats-server with the config file and a monitoring port.
fn tls_server(config: &Path) -> (NatsServer, u16) {
    let monitor = free_port();
    let server =
        NatsServer::start_with(&["-c", config.to_str().unwrap(), "-m", &monitor.to_string()]);
    (server, monitor)
}

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .connect_timeout(Duration::from_secs(3))
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
}

async fn next(sub: &mut Subscriber) -> nats::Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message within 10 s")
        .expect("subscription open")
}

/// Publishes `n` messages and receives them through the same client.
async fn round_trip(client: &nats::Client, subject: &str, n: usize) {
    let mut sub = client.subscribe(subject).await.unwrap();
    client.flush().await.unwrap();
    for i in 0..n {
        client.publish(subject, format!("m{i}")).await.unwrap();
    }
    client.flush().await.unwrap();
    for i in 0..n {
        assert_eq!(next(&mut sub).await.payload, format!("m{i}").as_bytes());
    }
}

/// Connect must fail; returns the error text.
fn refused(url: &str, options: ConnectOptions) -> String {
    let url = url.to_string();
    courier::run(async move {
        match options.max_reconnects(Some(0)).connect([url]).await {
            Ok(_) => panic!("the connection must be refused"),
            Err(e) => {
                eprintln!("refused as expected: {e}");
                e.to_string()
            }
        }
    })
}

fn connz(monitor: u16) -> serde_json::Value {
    let body = http_request(monitor, "GET", "/connz?auth=1", b"");
    let json = body
        .split_once("\r\n\r\n")
        .map_or(body.as_str(), |(_, b)| b);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("connz {e}: {body}"))
}

#[test]
fn trusted_ca_upgrades_after_info_and_the_server_sees_tls13() {
    let pki = TestPki::generate();
    let (server, monitor) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let url = server.url();
    courier::run(async move {
        let client = options()
            .name("tls-client")
            .tls_ca_file(&pki.ca_file)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        round_trip(&client, "tls.rt", 200).await;
        let conns = connz(monitor);
        let conn = &conns["connections"][0];
        assert_eq!(conn["name"], "tls-client", "{conns}");
        assert_eq!(conn["tls_version"], "1.3", "{conns}");
        assert_eq!(conn["in_msgs"], 200, "{conns}");
        client.close().await.unwrap();
    });
}

#[test]
fn tls_url_with_an_ip_host_verifies_against_the_ip() {
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let url = format!("tls://127.0.0.1:{}", server.port());
    courier::run(async move {
        let client = options()
            .tls_ca_file(&pki.ca_file)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        assert!(client.connected_url().unwrap().starts_with("tls://"));
        round_trip(&client, "tls.ip", 10).await;
        client.close().await.unwrap();
    });
}

#[test]
fn a_ca_that_did_not_sign_the_server_is_refused() {
    let pki = TestPki::generate();
    let (server, monitor) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let e = refused(
        &server.url(),
        options().tls_ca_file(&pki.other_ca_file).unwrap(),
    );
    assert!(e.contains("certificate was refused"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The server dropped the refused connection (after the client's alert).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while connz(monitor)["num_connections"] != 0 {
        assert!(std::time::Instant::now() < deadline, "{}", connz(monitor));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", true, ""));
    let e = refused(&server.url(), options().tls_ca_file(&pki.ca_file).unwrap());
    assert!(e.contains("certificate was refused"), "{e}");
    assert!(e.contains("NotValidForName"), "{e}");
}

#[test]
fn the_test_only_insecure_switch_accepts_a_wrong_certificate() {
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", true, ""));
    let url = server.url();
    courier::run(async move {
        let insecure = nats::TlsConfig::new().danger_accept_invalid_certs(true);
        let client = options()
            .tls(insecure)
            .connect([url.as_str()])
            .await
            .unwrap();
        round_trip(&client, "insecure", 5).await;
        client.close().await.unwrap();
    });
}

#[test]
fn server_requiring_tls_without_client_tls_names_the_option() {
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let e = refused(&server.url(), options().token("secret-token"));
    assert!(e.contains("requires TLS"), "{e}");
    assert!(e.contains("tls_ca_file") && e.contains("tls://"), "{e}");
}

#[test]
fn client_requiring_tls_never_falls_back_to_plaintext() {
    let server = NatsServer::start();
    let pki = TestPki::generate();
    let e = refused(&server.url(), options().tls_ca_file(&pki.ca_file).unwrap());
    assert!(e.contains("does not offer TLS"), "{e}");
    assert!(e.contains("refusing to continue in plaintext"), "{e}");
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let pki = TestPki::generate();
    let (server, monitor) = tls_server(&pki.nats_config("s.conf", "  verify: true", false, ""));
    let url = server.url();
    let (cert, key) = (pki.client_cert.clone(), pki.client_key.clone());
    let ca = pki.ca_file.clone();
    courier::run(async move {
        let client = options()
            .tls_ca_file(&ca)
            .unwrap()
            .tls_client_cert_files(&cert, &key)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        round_trip(&client, "mtls", 20).await;
        assert_eq!(connz(monitor)["connections"][0]["tls_version"], "1.3");
        client.close().await.unwrap();
    });
    // Without the client certificate the server refuses the handshake.
    let e = refused(&server.url(), options().tls_ca_file(&pki.ca_file).unwrap());
    assert!(e.contains("alert CertificateRequired"), "{e}");
}

#[test]
fn tls_first_handshakes_before_info() {
    let pki = TestPki::generate();
    let (server, monitor) =
        tls_server(&pki.nats_config("s.conf", "  handshake_first: true", false, ""));
    let url = server.url();
    let ca = pki.ca_file.clone();
    courier::run(async move {
        let client = options()
            .tls_ca_file(&ca)
            .unwrap()
            .tls_first(true)
            .connect([url.as_str()])
            .await
            .unwrap();
        round_trip(&client, "first", 20).await;
        assert_eq!(connz(monitor)["connections"][0]["tls_version"], "1.3");
        client.close().await.unwrap();
    });
}

#[test]
fn reconnect_over_tls_after_a_restart_delivers_buffered_publishes() {
    let pki = TestPki::generate();
    let (mut server, _) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let url = server.url();
    let ca = pki.ca_file.clone();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = events.clone();
    courier::run(async {
        let client = options()
            .max_reconnects(None)
            .tls_ca_file(&ca)
            .unwrap()
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("re.tls").await.unwrap();
        client.flush().await.unwrap();
        server.kill();
        tokio::time::timeout(Duration::from_secs(10), async {
            while client.connection_state() == nats::ConnectionState::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("disconnect noticed");
        for i in 0..10 {
            client
                .publish("re.tls", format!("during {i}"))
                .await
                .unwrap();
        }
        server.restart();
        tokio::time::timeout(Duration::from_secs(15), async {
            while client.flush().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("flushed after the reconnect");
        for i in 0..10 {
            assert_eq!(
                next(&mut sub).await.payload,
                format!("during {i}").as_bytes()
            );
        }
        client.close().await.unwrap();
    });
    assert!(
        events.borrow().iter().any(|e| matches!(
            e,
            Event::Reconnected {
                buffered_publishes_sent: 10,
                ..
            }
        )),
        "{:?}",
        events.borrow()
    );
}

/// Over TLS the session parses decrypted bytes (session_io::Inbound's
/// decoded buffer): a message larger than the receive buffer must still be
/// a typed error that ends the connection, and the next TLS connection
/// must receive normally (the receive side starts plaintext again, then
/// TLS after INFO).
#[test]
fn a_message_larger_than_the_receive_buffer_over_tls_is_an_error_then_it_recovers() {
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let url = server.url();
    let ca = pki.ca_file.clone();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = events.clone();
    courier::run(async {
        let small = options()
            .max_reconnects(None)
            .receive_buffer_size(4096)
            .tls_ca_file(&ca)
            .unwrap()
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        let sender = options()
            .tls_ca_file(&ca)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = small.subscribe("big.tls").await.unwrap();
        small.flush().await.unwrap();
        sender.publish("big.tls", vec![b'x'; 10_000]).await.unwrap();
        sender.flush().await.unwrap();
        let reason = first_disconnect_reason(
            &events,
            Duration::from_secs(10),
            "oversized message over TLS",
        )
        .await;
        assert!(reason.contains("4096"), "{reason}");
        tokio::time::timeout(Duration::from_secs(10), async {
            while small.flush().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("reconnected over TLS");
        sender.publish("big.tls", "small").await.unwrap();
        sender.flush().await.unwrap();
        assert_eq!(next(&mut sub).await.payload, &b"small"[..]);
        sender.close().await.unwrap();
        small.close().await.unwrap();
    });
}

#[test]
fn a_second_tls_server_learned_from_info_is_verified_and_used() {
    let pki = TestPki::generate();
    let cluster_a = free_port();
    let cluster_b = free_port();
    let cluster = |own: u16, other: u16| {
        format!(
            "cluster {{\n  name: c\n  listen: 127.0.0.1:{own}\n  routes: [nats-route://127.0.0.1:{other}]\n}}\n"
        )
    };
    let (mut a, _) =
        tls_server(&pki.nats_config("a.conf", "", false, &cluster(cluster_a, cluster_b)));
    let (b, _) = tls_server(&pki.nats_config("b.conf", "", false, &cluster(cluster_b, cluster_a)));
    let url = a.url();
    let ca = pki.ca_file.clone();
    let b_port = b.port();
    courier::run(async {
        let client = options()
            .max_reconnects(None)
            .tls_ca_file(&ca)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        // Wait until A's INFO lists B (the route is up).
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let urls = client
                    .server_info()
                    .map(|i| i.connect_urls.len())
                    .unwrap_or(0);
                if urls >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("INFO lists the second server");
        let mut sub = client.subscribe("cluster.tls").await.unwrap();
        client.flush().await.unwrap();
        a.kill();
        // Only B, learned from INFO, is left: the client must get there
        // over verified TLS (its certificate names 127.0.0.1).
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let on_b = client
                    .connected_url()
                    .is_some_and(|u| u.ends_with(&format!(":{b_port}")));
                if on_b && client.flush().await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("moved to the server learned from INFO");
        client.publish("cluster.tls", "via b").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"via b");
        client.close().await.unwrap();
    });
}

const PY_TLS_ECHO: &str = r#"
import asyncio, ssl, sys, nats
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    nc = await nats.connect(sys.argv[1], tls=ctx, name="nats-py-tls")
    async def echo(msg):
        await nc.publish("py.out", b"py:" + msg.data)
    await nc.subscribe("py.in", cb=echo)
    await nc.flush()
    print("READY", flush=True)
    await asyncio.sleep(20)
asyncio.run(main())
"#;

#[test]
fn nats_py_over_tls_exchanges_messages_with_courier() {
    use std::io::{BufRead, BufReader};
    let pki = TestPki::generate();
    let (server, _) = tls_server(&pki.nats_config("s.conf", "", false, ""));
    let url = format!("tls://127.0.0.1:{}", server.port());
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY_TLS_ECHO)
        .arg(&url)
        .arg(&pki.ca_file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with nats-py (scripts/setup.sh installs it)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let ca = pki.ca_file.clone();
    courier::run(async move {
        let client = options()
            .tls_ca_file(&ca)
            .unwrap()
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("py.out").await.unwrap();
        client.flush().await.unwrap();
        for i in 0..5 {
            client.publish("py.in", format!("m{i}")).await.unwrap();
        }
        client.flush().await.unwrap();
        for i in 0..5 {
            assert_eq!(next(&mut sub).await.payload, format!("py:m{i}").as_bytes());
        }
        client.close().await.unwrap();
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// A scripted server: sends `info`, then reports every line the client
/// writes in plaintext.
fn plaintext_witness(info: &'static str) -> (ScriptedPeer, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let peer = ScriptedPeer::start(move |mut conn| {
        conn.send(info.as_bytes());
        while let Some(line) = conn.read_line() {
            let _ = tx.lock().unwrap().send(line);
        }
    });
    (peer, rx)
}

#[test]
fn credentials_never_leave_in_plaintext_when_tls_is_missing_on_either_side() {
    // The server requires TLS, the client has none: refuse before CONNECT.
    let (peer, lines) = plaintext_witness(
        "INFO {\"server_id\":\"S\",\"tls_required\":true,\"max_payload\":1024}\r\n",
    );
    let e = refused(&peer.nats_url(), options().token("secret-token"));
    assert!(e.contains("requires TLS"), "{e}");
    // The client wants TLS, the server offers none: refuse before CONNECT.
    let (peer2, lines2) = plaintext_witness("INFO {\"server_id\":\"S\",\"max_payload\":1024}\r\n");
    let pki = TestPki::generate();
    let e = refused(
        &peer2.nats_url(),
        options()
            .token("secret-token")
            .tls_ca_file(&pki.ca_file)
            .unwrap(),
    );
    assert!(e.contains("does not offer TLS"), "{e}");
    std::thread::sleep(Duration::from_millis(200));
    let written: Vec<String> = lines.try_iter().chain(lines2.try_iter()).collect();
    assert!(
        written
            .iter()
            .all(|l| !l.contains("secret-token") && !l.starts_with("CONNECT")),
        "written in plaintext: {written:?}"
    );
}
