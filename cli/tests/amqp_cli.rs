//! `courier pub/sub/info amqp://...` against a real RabbitMQ, with the exit
//! codes scripts rely on: 0 done, 1 refused by the broker (unroutable),
//! 2 usage, 3 unreachable, 4 login refused.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use courier_tests::{free_port, RabbitMq};

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

#[test]
fn pub_sub_and_info_over_amqp_with_exit_codes() {
    let broker = RabbitMq::shared();
    let vh = broker.vhost("cli");
    let url = broker.url(&vh);

    let info = courier().args(["info", &url]).output().unwrap();
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(String::from_utf8_lossy(&info.stdout).contains("frame_max 131072"));

    let sub = courier()
        .args([
            "sub",
            &url,
            "orders.new",
            "--exchange",
            "amq.topic",
            "--count",
            "3",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribed once the broker lists its consumer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker
        .api(&format!("/api/consumers/{vh}"))
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        assert!(Instant::now() < deadline, "sub never consumed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let publish = courier()
        .args([
            "pub",
            &url,
            "orders.new",
            "hello",
            "--exchange",
            "amq.topic",
            "--count",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let out = sub.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(l["exchange"], "amq.topic");
        assert_eq!(l["routing_key"], "orders.new");
        assert_eq!(l["payload"], "hello");
    }

    // Unroutable (mandatory): the broker returned it; not counted as sent.
    let lost = courier()
        .args(["pub", &url, "nobody", "x", "--exchange", "amq.direct"])
        .output()
        .unwrap();
    assert_eq!(
        lost.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&lost.stderr)
    );
    assert!(String::from_utf8_lossy(&lost.stderr).contains("returned"));

    let wrong = format!("amqp://guest:nope@127.0.0.1:{}/{vh}", broker.amqp_port());
    let refused = courier().args(["info", &wrong]).output().unwrap();
    assert_eq!(
        refused.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let nowhere = format!("amqp://127.0.0.1:{}/", free_port());
    let down = courier().args(["info", &nowhere]).output().unwrap();
    assert_eq!(
        down.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    let bad = courier()
        .args(["info", "amqp://h:notaport/"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn pub_over_amqps_verifies_the_broker_with_tls_ca() {
    let broker = RabbitMq::shared();
    let vh = broker.vhost("cli-tls");
    let url = broker.tls_url(&vh);
    let ca = broker.pki_file("ca.pem");
    // Verified with the test CA: the publish reaches the broker over TLS and
    // comes back as unroutable (no queue), which only a live session sees.
    let out = courier()
        .args(["pub", &url, "nobody", "x", "--tls-ca"])
        .arg(&ca)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("returned"), "{stderr}");
    // Without the CA: the certificate is refused, exit 3 (unreachable).
    let out = courier()
        .args(["pub", &url, "nobody", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
}

#[test]
fn info_over_amqps_verifies_the_broker_with_tls_ca_and_other_urls_refuse_tls_flags() {
    let broker = RabbitMq::shared();
    let vh = broker.vhost("cli-info-tls");
    let url = broker.tls_url(&vh);
    let ca = broker.pki_file("ca.pem");
    let out = courier()
        .args(["info", &url, "--tls-ca"])
        .arg(&ca)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("logged in") && stdout.contains("frame_max"),
        "{stdout}"
    );
    // Without the CA: refused (Mozilla roots only), exit 3 naming TLS.
    let out = courier().args(["info", &url]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    // TLS flags with a NATS URL are a usage error, not silently ignored.
    let out = courier()
        .args(["info", "nats://127.0.0.1:1", "--tls-ca"])
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
