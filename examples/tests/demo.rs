//! The README's demo program, run against a real nats-server on both
//! transports: every reading of every device must reach the consumer, and
//! the mid-stream request/reply must be answered.

use std::process::Command;

use courier_tests::NatsServer;

fn run_demo(transport: &str) -> String {
    let server = NatsServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg(server.url())
        .arg("4")
        .env("COURIER_TRANSPORT", transport)
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_complete(stdout: &str) {
    assert!(stdout.contains("demo: all 12 readings arrived"), "{stdout}");
    assert!(
        stdout.contains("request/reply: telemetry.summary answered"),
        "{stdout}"
    );
    for device in ["edge-01", "edge-02", "edge-03"] {
        assert!(
            stdout.contains(&format!("{device}: 4 readings")),
            "{stdout}"
        );
    }
}

#[test]
fn demo_delivers_every_reading_on_the_default_transport() {
    assert_complete(&run_demo("auto"));
}

#[test]
fn demo_delivers_every_reading_on_the_epoll_fallback() {
    let stdout = run_demo("epoll");
    assert!(stdout.contains("via the Epoll backend"), "{stdout}");
    assert_complete(&stdout);
}
