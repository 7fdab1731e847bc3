//! Runs the edge_tls program (blocking embedded-io driver over embedded-tls,
//! TLS 1.3, no allocator) against a real nats-server with a test CA, and
//! checks with courier's TLS client that every reading arrived; a server
//! with a certificate the pinned CA did not issue for that name is refused.

use std::process::Command;
use std::time::Duration;

use courier_tests::certs::TestPki;
use courier_tests::NatsServer;

fn tls13_server(pki: &TestPki, wrong_name: bool) -> NatsServer {
    tls13_server_with(pki, wrong_name, "  handshake_first: true\n")
}

fn tls13_server_with(pki: &TestPki, wrong_name: bool, extra: &str) -> NatsServer {
    let config = pki.nats_config(
        "device.conf",
        &format!("{extra}  min_version: \"1.3\""),
        wrong_name,
        "",
    );
    NatsServer::start_with(&["-c", config.to_str().unwrap()])
}

fn run_device(port: u16, ca: &std::path::Path, readings: u32) -> std::process::Output {
    run_device_with(port, ca, readings, &[])
}

fn run_device_with(
    port: u16,
    ca: &std::path::Path,
    readings: u32,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edge_tls"))
        .arg(format!("localhost:{port}"))
        .arg(ca)
        .arg(readings.to_string())
        .args(extra)
        .output()
        .expect("run edge_tls")
}

#[test]
fn device_publishes_over_tls13_without_allocating() {
    let pki = TestPki::generate();
    let server = tls13_server(&pki, false);
    let port = server.port();
    let ca = pki.ca_file.clone();
    courier::run(async move {
        let client = courier::nats::ConnectOptions::new()
            .tls_ca_file(&ca)
            .unwrap()
            .tls_first(true)
            .connect([format!("tls://localhost:{port}")])
            .await
            .unwrap();
        let mut sub = client.subscribe("telemetry.>").await.unwrap();
        client.flush().await.unwrap();
        let device = std::thread::spawn(move || run_device(port, &ca, 5));
        for seq in 0..5 {
            let msg = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("a reading within 20 s")
                .expect("subscription open");
            assert_eq!(msg.subject(), "telemetry.edge-tls-01.temperature");
            let text = String::from_utf8(msg.payload.to_vec()).unwrap();
            assert!(
                text.starts_with(&format!("{{\"device\":\"edge-tls-01\",\"seq\":{seq},")),
                "{text}"
            );
        }
        let output = device.join().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("5 readings confirmed by the server"),
            "{stdout}"
        );
        assert!(
            stdout.contains("heap allocations during the TLS handshake and NATS session: 0"),
            "{stdout}"
        );
        client.close().await.unwrap();
    });
}

#[test]
fn device_refuses_a_server_the_pinned_ca_does_not_vouch_for() {
    let pki = TestPki::generate();
    // Signed by the CA, but for another host name.
    let server = tls13_server(&pki, true);
    let output = run_device(server.port(), &pki.ca_file, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("InvalidCertificate"), "{stderr}");
    // The right server, but another CA pinned.
    let server = tls13_server(&pki, false);
    let output = run_device(server.port(), &pki.other_ca_file, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("TLS handshake"), "{stderr}");
}

#[test]
fn device_upgrades_after_a_plaintext_info_like_nats_go() {
    let pki = TestPki::generate();
    // A default TLS server: INFO in plaintext, then the TLS handshake.
    let server = tls13_server_with(&pki, false, "");
    let output = run_device_with(server.port(), &pki.ca_file, 3, &["--after-info"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("3 readings confirmed by the server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("heap allocations during the TLS handshake and NATS session: 0"),
        "{stdout}"
    );
    // A plaintext server: the device refuses to go on without TLS.
    let plain = NatsServer::start();
    let output = run_device_with(plain.port(), &pki.ca_file, 1, &["--after-info"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("TlsNotOffered"), "{stderr}");
}
