//! The `courier` binary against real servers (nats-server, nsqd,
//! nsqlookupd on free loopback ports): what it prints, and how it fails.
//!
//! Long-running commands (`sub`, `reply`, `tail`) announce on stderr once
//! they are subscribed; the tests wait for that line, then publish. Waits
//! are bounded only to turn a hang into a failure, never to judge speed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier_tests::{free_port, NatsServer, Nsqd, Nsqlookupd};

/// Longest wait for a child to get ready or finish (a hang guard).
const HANG_GUARD: Duration = Duration::from_secs(60);

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    courier().args(args).output().expect("run courier")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `courier` whose stderr is collected in the background.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `courier args` and waits until a stderr line contains `ready`.
    fn start(args: &[&str], ready: &str) -> Running {
        let mut child = courier()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn courier");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr piped");
        let collected = stderr.clone();
        let marker = ready.to_string();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let is_ready = line.contains(&marker);
                collected.lock().unwrap().push_str(&line);
                collected.lock().unwrap().push('\n');
                if is_ready {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        if rx.recv_timeout(HANG_GUARD).is_err() {
            let _ = child.kill();
            panic!(
                "courier {args:?} never printed {ready:?}; stderr: {}",
                stderr.lock().unwrap()
            );
        }
        Running { child, stderr }
    }

    /// Waits for the exit; returns (success, stdout, stderr).
    fn finish(mut self) -> (bool, String, String) {
        let deadline = Instant::now() + HANG_GUARD;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "courier did not exit; stderr: {}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout piped")
            .read_to_string(&mut stdout)
            .expect("read stdout");
        // The reader thread may still be appending the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        (status.success(), stdout, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a failure: exit code `code`, and exactly one stderr line that
/// starts with `courier: ` and contains `needle`.
fn assert_one_line_failure(out: &Output, code: i32, needle: &str) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    assert!(lines[0].starts_with("courier: "), "{stderr:?}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn pub_then_sub_sees_the_message_with_its_headers() {
    let server = NatsServer::start();
    let url = server.url();
    let sub = Running::start(&["sub", &url, "greet.*", "--count", "1"], "subscribed");
    let out = run(&["pub", &url, "greet.en", "hello", "--header", "Trace-Id:42"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (ok, stdout, stderr) = sub.finish();
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout, "[#1] received on \"greet.en\"\nTrace-Id: 42\nhello\n\n",
        "stderr: {stderr}"
    );
}

#[test]
fn sub_json_lines_parse_and_binary_payloads_are_base64() {
    let server = NatsServer::start();
    let url = server.url();
    let sub = Running::start(
        &["sub", &url, "data", "--json", "--count", "3"],
        "subscribed",
    );
    let out = run(&[
        "pub", &url, "data", "text", "--count", "2", "--header", "K:a", "--header", "K:b",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.bin");
    std::fs::write(&file, [0xffu8, 0x00, 0x01]).unwrap();
    let out = run(&["pub", &url, "data", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (ok, stdout, stderr) = sub.finish();
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for text in &lines[..2] {
        assert_eq!(text["subject"], "data");
        assert_eq!(text["reply"], serde_json::Value::Null);
        assert_eq!(text["headers"], serde_json::json!({"K": ["a", "b"]}));
        assert_eq!(text["payload"], "text");
    }
    assert_eq!(lines[2]["payload_base64"], "/wAB");
    assert!(lines[2].get("payload").is_none());
}

#[test]
fn pub_reads_stdin_line_by_line() {
    let server = NatsServer::start();
    let url = server.url();
    let sub = Running::start(
        &["sub", &url, "lines", "--raw", "--count", "3"],
        "subscribed",
    );
    // The publisher runs on the epoll fallback, the subscriber on the default.
    let mut publisher = courier()
        .args(["pub", &url, "lines"])
        .env("COURIER_TRANSPORT", "epoll")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\r\nthree")
        .unwrap();
    let out = publisher.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (ok, stdout, stderr) = sub.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "one\ntwo\nthree\n");
}

/// `tail -f log | courier pub ...`: a line goes out while stdin is still
/// open, not when it closes.
#[test]
fn pub_sends_each_stdin_line_as_it_arrives() {
    let server = NatsServer::start();
    let url = server.url();
    let sub = Running::start(
        &["sub", &url, "live", "--raw", "--count", "1"],
        "subscribed",
    );
    let mut publisher = courier()
        .args(["pub", &url, "live"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    // The subscriber gets it and exits while the publisher's stdin is open.
    let (ok, stdout, stderr) = sub.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "first\n");
    assert!(publisher.try_wait().unwrap().is_none(), "pub ended early");
    drop(stdin);
    let out = publisher.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn request_reply_pair_with_respond_and_echo() {
    let server = NatsServer::start();
    let url = server.url();
    let responder = Running::start(
        &[
            "reply",
            &url,
            "svc.time",
            "--respond",
            "noon",
            "--count",
            "1",
        ],
        "replying",
    );
    let out = run(&["req", &url, "svc.time", "what time?"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "noon\n");
    let (ok, _, stderr) = responder.finish();
    assert!(ok, "{stderr}");

    let echo = Running::start(
        &["reply", &url, "svc.echo", "--count", "1", "--queue", "q"],
        "replying",
    );
    let out = run(&[
        "req",
        &url,
        "svc.echo",
        "ping",
        "--json",
        "--timeout",
        "10s",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["payload"], "ping");
    assert!(reply["subject"].as_str().unwrap().starts_with("_INBOX."));
    let (ok, _, stderr) = echo.finish();
    assert!(ok, "{stderr}");
}

#[test]
fn request_without_responder_says_so() {
    let server = NatsServer::start();
    let out = run(&["req", &server.url(), "nobody.home", "x"]);
    assert_one_line_failure(&out, 1, "no responders on \"nobody.home\"");
}

#[test]
fn bad_subjects_and_oversized_payloads_are_refused_before_sending() {
    let server = NatsServer::start();
    let url = server.url();
    let out = run(&["pub", &url, "bad subject", "x"]);
    assert_one_line_failure(&out, 2, "invalid subject");
    let out = run(&["sub", &url, "orders", "--queue", "bad group"]);
    assert_one_line_failure(&out, 2, "invalid queue group");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, vec![0u8; 2 * 1024 * 1024]).unwrap();
    let out = run(&["pub", &url, "big", "--file", file.to_str().unwrap()]);
    assert_one_line_failure(&out, 1, "exceeds the server's max_payload");
}

#[test]
fn bad_urls_are_usage_errors() {
    let out = run(&["pub", "http://127.0.0.1:4222", "s", "p"]);
    assert_one_line_failure(&out, 2, "bad URL \"http://127.0.0.1:4222\": unknown scheme");
    let out = run(&["sub", "127.0.0.1:4222", "s"]);
    assert_one_line_failure(&out, 2, "no scheme");
    let out = run(&["pub", "nats://127.0.0.1:99999", "s", "p"]);
    assert_one_line_failure(&out, 2, "the port must be a number");
    let out = run(&["sub", "tls://127.0.0.1:0", "s"]);
    assert_one_line_failure(&out, 2, "the port must be a number");
    let out = run(&["tail", "nsq://127.0.0.1:4150"]);
    assert_one_line_failure(&out, 2, "name the topic in the URL path");
    let out = run(&["sub", "nsq://127.0.0.1:4150", "t"]);
    assert_one_line_failure(&out, 2, "courier tail");
    let out = courier()
        .args(["pub", "nats://127.0.0.1:4222", "s", "p"])
        .env("COURIER_TRANSPORT", "bogus")
        .output()
        .unwrap();
    assert_one_line_failure(&out, 2, "unknown transport backend \"bogus\"");
    // clap's own usage errors use the same code.
    let out = run(&["pub"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn refused_credentials_exit_4() {
    let server = NatsServer::start_with(&["--user", "u", "--pass", "p"]);
    let port = server.port();
    let wrong = format!("nats://u:wrong@127.0.0.1:{port}");
    let out = run(&["pub", &wrong, "s", "p"]);
    assert_one_line_failure(&out, 4, "refused the credentials");
    assert!(!stderr_of(&out).contains("wrong"), "password shown");
    let out = run(&["sub", &server.url(), "s"]);
    assert_one_line_failure(&out, 4, "refused the credentials");
    let right = format!("nats://u:p@127.0.0.1:{port}");
    let out = run(&["pub", &right, "s", "p"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Flags and the environment work too (and override the URL).
    let out = run(&[
        "pub",
        &server.url(),
        "s",
        "p",
        "--user",
        "u",
        "--password",
        "p",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = courier()
        .args(["pub", &wrong, "s", "p"])
        .env("COURIER_USER", "u")
        .env("COURIER_PASSWORD", "p")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&[
        "pub",
        &server.url(),
        "s",
        "p",
        "--user",
        "u",
        "--password",
        "nope",
    ]);
    assert_one_line_failure(&out, 4, "refused the credentials");
}

#[test]
fn unreachable_servers_exit_3_with_the_cause() {
    let port = free_port();
    let out = run(&["pub", &format!("nats://127.0.0.1:{port}"), "s", "p"]);
    assert_one_line_failure(
        &out,
        3,
        &format!(
            "cannot reach nats://127.0.0.1:{port}: connection refused; is the server running?"
        ),
    );
    let out = run(&["info", &format!("nats://127.0.0.1:{port}")]);
    assert_one_line_failure(&out, 3, "connection refused");
    let out = run(&["pub", &format!("nsq://127.0.0.1:{port}"), "t", "p"]);
    assert_one_line_failure(
        &out,
        3,
        &format!("cannot reach nsq://127.0.0.1:{port}: connection refused"),
    );
    let out = run(&["tail", &format!("nsqlookupd://127.0.0.1:{port}/t")]);
    assert_one_line_failure(&out, 3, "connection refused");
}

#[test]
fn info_prints_the_nats_server_info_as_json() {
    let server = NatsServer::start();
    let out = run(&["info", &server.url()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["port"], server.port());
    assert!(info["server_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(info["headers"], true);
}

#[test]
fn nsq_pub_and_mpub_then_tail_sees_them() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr();
    let tail = Running::start(
        &[
            "tail",
            &format!("nsq://{addr}/events"),
            "--json",
            "--count",
            "6",
        ],
        "tailing",
    );
    let url = format!("nsq://{addr}");
    let out = run(&["pub", &url, "events", "single"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&[
        "pub", &url, "events", "batched", "--count", "4", "--batch", "3",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&["pub", &url, "events", "deferred", "--defer", "50ms"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (ok, stdout, stderr) = tail.finish();
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    let mut payloads: Vec<&str> = lines
        .iter()
        .map(|l| l["payload"].as_str().unwrap())
        .collect();
    payloads.sort();
    assert_eq!(
        payloads,
        ["batched", "batched", "batched", "batched", "deferred", "single"]
    );
    for l in &lines {
        assert_eq!(l["topic"], "events");
        assert!(
            l["channel"].as_str().unwrap().ends_with("#ephemeral"),
            "{l}"
        );
        assert_eq!(l["attempts"], 1);
    }
    // The ephemeral channel is gone once the tail left.
    let stats = nsqd.http_get("/stats?format=json&topic=events");
    assert!(!stats.contains("#ephemeral"), "{stats}");
}

/// A CA and an nsqd certificate for 127.0.0.1 signed by it, as PEM files.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn generate() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
        // A second CA that signed nothing nsqd has: verification must fail.
        let other_key = KeyPair::generate().unwrap();
        let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = other_params.self_signed(&other_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("server.pem", server.pem()),
            ("server.key", server_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn nsq_over_tls_with_snappy_and_a_wrong_ca_refused() {
    let certs = Certs::generate();
    let nsqd = Nsqd::start_with(&[
        &format!("--tls-cert={}", certs.path("server.pem")),
        &format!("--tls-key={}", certs.path("server.key")),
        "--tls-required=true",
    ]);
    let addr = nsqd.tcp_addr();
    let ca = certs.path("ca.pem");
    let tail = Running::start(
        &[
            "tail",
            &format!("nsq://{addr}/secure"),
            "--raw",
            "--count",
            "2",
            "--tls-ca",
            &ca,
            "--compression",
            "snappy",
        ],
        "tailing",
    );
    let url = format!("nsq://{addr}");
    let out = run(&[
        "pub",
        &url,
        "secure",
        "sealed",
        "--count",
        "2",
        "--batch",
        "2",
        "--tls-ca",
        &ca,
        "--compression",
        "deflate:3",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (ok, stdout, stderr) = tail.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "sealed\nsealed\n");

    // Without TLS nsqd refuses; with a CA that did not sign it, we refuse.
    let out = run(&["pub", &url, "secure", "plain"]);
    assert_one_line_failure(&out, 1, "requires TLS: pass --tls-ca FILE");
    let out = run(&[
        "pub",
        &url,
        "secure",
        "x",
        "--tls-ca",
        &certs.path("other-ca.pem"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // The CLI flag that fixes it, not the Rust API (issue 7).
    assert!(stderr.contains("--tls-ca FILE"), "{stderr}");
    assert!(!stderr.contains("TlsConfig::"), "{stderr}");
}

#[test]
fn tail_through_nsqlookupd_finds_the_nsqd() {
    let lookupd = Nsqlookupd::start();
    let nsqd = Nsqd::start_with(&[&format!("--lookupd-tcp-address={}", lookupd.tcp_addr())]);
    // Publishing creates the topic, which nsqd registers with nsqlookupd;
    // with no channel yet, nsqd keeps the message for the first one.
    let out = run(&[
        "pub",
        &format!("nsq://{}", nsqd.tcp_addr()),
        "found",
        "via-lookupd",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lookupd_url = lookupd.http_url();
    let lookupd_hostport = lookupd_url.trim_start_matches("http://");
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let out = run(&["info", &format!("nsqlookupd://{lookupd_hostport}/found")]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("tcp_port") {
            break;
        }
        assert!(Instant::now() < deadline, "nsqd never registered the topic");
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = Running::start(
        &[
            "tail",
            &format!("nsqlookupd://{lookupd_hostport}/found"),
            "--raw",
            "--count",
            "1",
        ],
        "tailing",
    );
    let (ok, stdout, stderr) = tail.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "via-lookupd\n");
}

#[test]
fn info_prints_nsqd_stats() {
    let nsqd = Nsqd::start();
    let out = run(&[
        "info",
        &format!("nsq://{}", nsqd.tcp_addr()),
        "--http-address",
        &format!("127.0.0.1:{}", nsqd.http_port),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["version"].is_string(), "{stats}");
    assert!(stats["topics"].is_array(), "{stats}");
}

#[test]
fn help_has_examples() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("Exit codes:"),
        "{help}"
    );
}

#[cfg(feature = "bench")]
#[test]
fn bench_forwards_to_the_benchmark() {
    let out = run(&["bench", "--help"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--quick"));
}

/// `courier bench` spawns its workers as `<this executable> worker ...`:
/// a courier worker run through the `courier` binary reports a result, with
/// allocations counted by the binary's counting allocator.
#[cfg(feature = "bench")]
#[test]
fn bench_workers_run_inside_the_courier_binary() {
    let server = NatsServer::start();
    let out = run(&[
        "worker",
        "--client",
        "courier",
        "--scenario",
        "publish",
        "--url",
        &server.url(),
        "--subject",
        "bench.cli",
        "--size",
        "16",
        "--msgs",
        "500",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a result line");
    let result: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(result["messages"], 500, "{result}");
    assert!(result["allocations"].is_u64(), "{result}");
}
