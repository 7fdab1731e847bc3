//! `courier pub|sub` with facade URIs against a real nats-server: the CLI
//! writes and reads the facade's envelope, and a bad facade URI is a
//! usage error naming the wrong part.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use courier_tests::NatsServer;

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.stdin(Stdio::null());
    cmd
}

#[test]
fn pub_and_sub_speak_facade_uris() {
    let nats = NatsServer::start();
    let uri = format!("nats-pt2pt://127.0.0.1:{}?queue=cli", nats.port());
    let mut sub = courier()
        .args(["sub", &uri, "orders.*", "--count", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("subscribed"), "{line}");
    for payload in [r#"{"id":1}"#, "plain text"] {
        let out = courier()
            .args(["pub", &uri, "orders.new", payload])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sub.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    sub.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["name"], "orders.new");
    assert_eq!(lines[0]["payload"], r#"{"id":1}"#);
    assert_eq!(lines[0]["content_type"], "application/json");
    assert_eq!(lines[1]["payload"], "plain text");
    assert_eq!(lines[1]["content_type"], "application/data");
    assert_eq!(lines[1]["message_id"].as_str().unwrap().len(), 32);
}

#[test]
fn a_bad_facade_uri_is_a_usage_error_naming_the_part() {
    let out = courier()
        .args(["pub", "nats-fanout://127.0.0.1:4222", "x", "y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"bad data type "fanout" in facade URI: the data type is pubsub or pt2pt"#),
        "{err}"
    );
}
