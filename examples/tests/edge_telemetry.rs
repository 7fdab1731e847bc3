//! Runs the edge_telemetry program against a real nats-server and checks,
//! with a plain-TCP subscriber that shares no code with courier, that every
//! reading arrived on `telemetry.edge-01.temperature` as JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use courier_tests::NatsServer;

/// Subscribes to `subject` by writing the protocol by hand; returns the
/// reader once the server confirmed the SUB (PONG).
fn raw_subscriber(server: &NatsServer, subject: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    write!(
        stream,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {subject} 1\r\nPING\r\n"
    )
    .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("PONG") {
            return reader;
        }
    }
}

/// Reads the next `MSG` frame: (subject, payload).
fn next_msg(reader: &mut BufReader<TcpStream>) -> (String, String) {
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "server closed");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&"MSG") => {
                let size: usize = words.last().unwrap().parse().unwrap();
                let mut payload = vec![0; size + 2];
                reader.read_exact(&mut payload).unwrap();
                payload.truncate(size);
                return (words[1].to_string(), String::from_utf8(payload).unwrap());
            }
            Some(&"PING") => reader.get_mut().write_all(b"PONG\r\n").unwrap(),
            _ => {}
        }
    }
}

#[test]
fn edge_telemetry_publishes_every_reading() {
    let server = NatsServer::start();
    let mut subscriber = raw_subscriber(&server, "telemetry.>");

    const READINGS: usize = 5;
    let output = Command::new(env!("CARGO_BIN_EXE_edge_telemetry"))
        .arg(server.url())
        .arg(READINGS.to_string())
        .output()
        .expect("run edge_telemetry");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "edge_telemetry failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.matches("sent telemetry.edge-01.temperature").count(),
        READINGS
    );
    assert!(
        stdout.contains("5 readings confirmed by the server"),
        "{stdout}"
    );

    for seq in 0..READINGS {
        let (subject, payload) = next_msg(&mut subscriber);
        assert_eq!(subject, "telemetry.edge-01.temperature");
        assert!(
            payload.starts_with(&format!(
                "{{\"device\":\"edge-01\",\"seq\":{seq},\"celsius\":"
            )),
            "{payload}"
        );
        // What the program printed is what went on the wire.
        assert!(stdout.contains(&payload), "{payload} not in {stdout}");
    }
}

#[test]
fn edge_telemetry_reports_an_unreachable_server() {
    // A port nothing listens on: a clear message and a failure status.
    let port = courier_tests::free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_edge_telemetry"))
        .arg(format!("nats://127.0.0.1:{port}"))
        .output()
        .expect("run edge_telemetry");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
