//! The request/reply and NSQ pipeline example programs, run against real
//! nats-server and nsqd: their output must show every step working.

use std::process::Command;

use courier_tests::{NatsServer, Nsqd};

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{bin} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn request_reply_answers_every_request_and_reports_no_responders() {
    let server = NatsServer::start();
    let stdout = run(env!("CARGO_BIN_EXE_request_reply"), &[&server.url(), "4"]);
    for i in 0..4 {
        assert!(stdout.contains(&format!("client: room-{i}: ")), "{stdout}");
    }
    assert!(
        stdout.contains("no responders on svc.nobody-home"),
        "{stdout}"
    );
}

#[test]
fn nsq_pipeline_dispatches_by_class_and_redelivers_failures() {
    let nsqd = Nsqd::start();
    let stdout = run(env!("CARGO_BIN_EXE_nsq_pipeline"), &[&nsqd.tcp_addr(), "3"]);
    assert!(
        stdout.contains("7 events published with one MPUB"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 created, 3 paid (3 retried once), 1 unclassified"),
        "{stdout}"
    );
    for id in 0..3 {
        assert!(
            stdout.contains(&format!("order {id} paid (attempt 2)")),
            "{stdout}"
        );
    }
}
