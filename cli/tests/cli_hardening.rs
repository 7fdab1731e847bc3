//! The `courier` binary against broken servers (issue 7): no reconnect
//! storm, no stderr line per attempt, exit codes and messages that say what
//! to do in the CLI's terms.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_tests::{nats_info_line, PeerConn, ScriptedPeer};

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Greets like a NATS server and answers the handshake's PING.
fn handshake(conn: &mut PeerConn) -> bool {
    conn.send(&nats_info_line(1024));
    if conn.read_until_line_starting("CONNECT").is_none()
        || conn.read_until_line_starting("PING").is_none()
    {
        return false;
    }
    conn.send(b"PONG\r\n");
    true
}

/// `courier sub` against a server that shakes hands and then sends
/// garbage: a few connections and a few stderr lines in 4 s, not thousands.
#[test]
fn sub_against_a_server_that_breaks_after_the_handshake_does_not_storm() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if !handshake(&mut conn) {
            return;
        }
        if n == 0 {
            // The first connection also confirms the SUB's flush, so the
            // command gets to "subscribed".
            if conn.read_until_line_starting("PING").is_none() {
                return;
            }
            conn.send(b"PONG\r\n");
        }
        std::thread::sleep(Duration::from_millis(30));
        conn.send(b"HELLO this is not NATS\r\n");
    });
    let mut child = courier()
        .args(["sub", &peer.nats_url(), "storm.test"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    let pipe = child.stderr.take().expect("stderr piped");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let collected = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    std::thread::sleep(Duration::from_secs(4));
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let lines = lines.lock().unwrap().clone();
    let accepted = accepted.load(Ordering::SeqCst);
    eprintln!(
        "{accepted} connections, {} stderr lines: {lines:#?}",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.starts_with("subscribed to")),
        "{lines:#?}"
    );
    assert!(accepted >= 2, "it must keep reconnecting: {accepted}");
    assert!(accepted <= 20, "{accepted} connections in 4 s: a storm");
    let disconnected = lines
        .iter()
        .filter(|l| l.contains("disconnected from"))
        .count();
    assert_eq!(disconnected, 1, "the same error said once: {lines:#?}");
    assert!(lines.len() <= 4, "{} stderr lines: {lines:#?}", lines.len());
}

/// Runs `courier args` to completion (bounded by `guard`), returns
/// (exit code, stderr).
fn run_bounded(args: &[&str], guard: Duration) -> (Option<i32>, String) {
    let mut child = courier()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    let pipe = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(pipe), &mut s);
        s
    });
    let deadline = std::time::Instant::now() + guard;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "courier {args:?} still running after {guard:?}; stderr: {}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap_or_default())
}

/// Asserts one stderr line starting `courier: `, containing every needle,
/// not ending with an empty cause, and the exit code.
fn assert_failure(got: &(Option<i32>, String), code: i32, needles: &[&str]) {
    let (status, stderr) = got;
    assert_eq!(*status, Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    let line = lines[0];
    assert!(line.starts_with("courier: "), "{line:?}");
    assert!(!line.trim_end().ends_with(':'), "empty cause: {line:?}");
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
}

/// An NSQ frame: size, type, data.
fn frame(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut f = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(data);
    f
}

const IDENTIFY_OK: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;

/// Plays nsqd up to the consumer's SUB, answers it OK and sends `after`
/// in the same write (so the session breaks right after subscribing), then
/// closes (`hold`: after half a second).
fn nsq_peer(after: &'static [u8], hold: bool) -> ScriptedPeer {
    ScriptedPeer::start(move |mut conn| {
        if conn.read_exact(4).as_deref() != Some(b"  V2") {
            return;
        }
        if conn.read_until_line_starting("IDENTIFY").is_none() {
            return;
        }
        let Some(len) = conn.read_exact(4) else {
            return;
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if conn.read_exact(len).is_none() {
            return;
        }
        conn.send(&frame(0, IDENTIFY_OK));
        if conn.read_until_line_starting("SUB").is_none() {
            return;
        }
        let mut bytes = frame(0, b"OK");
        bytes.extend_from_slice(after);
        conn.send(&bytes);
        if hold {
            conn.hold_open(Duration::from_millis(500));
        }
    })
}

/// `courier tail` against an nsqd that breaks right after SUB: one line
/// that names the cause (it used to end with an empty one).
#[test]
fn tail_says_what_broke_the_session() {
    let mut too_big_31 = 0x8000_0000u32.to_be_bytes().to_vec();
    too_big_31.extend_from_slice(&2u32.to_be_bytes());
    let too_big_31: &'static [u8] = Box::leak(too_big_31.into_boxed_slice());
    let mut too_big_30 = 0x4000_0000u32.to_be_bytes().to_vec();
    too_big_30.extend_from_slice(&2u32.to_be_bytes());
    let too_big_30: &'static [u8] = Box::leak(too_big_30.into_boxed_slice());
    let short_message: &'static [u8] = Box::leak(frame(2, &[0u8; 10]).into_boxed_slice());
    let unknown_type: &'static [u8] = Box::leak(frame(7, b"xx").into_boxed_slice());
    let mut cut = frame(2, &[b'a'; 100]);
    cut.truncate(30);
    let cut: &'static [u8] = Box::leak(cut.into_boxed_slice());
    for (name, after, hold) in [
        ("unknown frame type", unknown_type, true),
        ("10-byte message frame", short_message, true),
        ("2^31 frame size", too_big_31, true),
        ("2^30 frame size", too_big_30, true),
        ("close mid-message", cut, false),
    ] {
        let peer = nsq_peer(after, hold);
        let url = format!("nsq://{}/t", peer.addr());
        let got = run_bounded(&["tail", &url], Duration::from_secs(30));
        eprintln!("{name}: {got:?}");
        assert_failure(&got, 1, &["the NSQ session failed: 127.0.0.1:"]);
    }
}

/// nsqd accepts the TCP connection and never answers IDENTIFY: `pub` and
/// `tail` both give up after the same 5 s handshake limit, exit 3.
#[test]
fn identify_never_answered_is_the_same_error_for_pub_and_tail() {
    let peer = ScriptedPeer::start(|mut conn| conn.hold_open(Duration::from_secs(20)));
    let url = format!("nsq://{}", peer.addr());
    let needles = [
        "did not finish the NSQ handshake within 5s",
        "is it an nsqd TCP port",
    ];
    let got = run_bounded(&["pub", &url, "t", "p"], Duration::from_secs(20));
    assert_failure(&got, 3, &needles);
    let got = run_bounded(&["tail", &format!("{url}/t")], Duration::from_secs(20));
    assert_failure(&got, 3, &needles);
}

/// `nsq://` pointed at nsqd's HTTP port: exit 3, "is it an nsqd TCP port?"
/// (it used to say "a 1213486164-byte frame ... use --max-msg-size", exit 1).
#[test]
fn nsq_url_on_the_http_port_asks_for_the_tcp_port() {
    let nsqd = courier_tests::Nsqd::start();
    let url = format!("nsq://127.0.0.1:{}", nsqd.http_port);
    let needles = ["it answered with HTTP", "is it an nsqd TCP port?"];
    let got = run_bounded(&["pub", &url, "t", "p"], Duration::from_secs(20));
    assert_failure(&got, 3, &needles);
    let got = run_bounded(&["tail", &format!("{url}/t")], Duration::from_secs(20));
    assert_failure(&got, 3, &needles);
}

/// A tiny nsqd auth server (`--auth-http-address`): the secret `good` gets
/// publish and subscribe on everything, any other is refused (403).
fn auth_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind auth server");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&head);
            let reply = if request.contains("secret=good") {
                let body = r#"{"ttl":3600,"identity":"tester","identity_url":"","authorizations":[{"permissions":["subscribe","publish"],"topic":".*","channels":[".*"]}]}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// NSQ credential failures exit 4 and name `--token` (they used to exit 1
/// and name `Config::auth_secret`).
#[test]
fn nsq_auth_failures_exit_4_and_name_the_token_flag() {
    let auth = auth_server();
    let nsqd = courier_tests::Nsqd::start_with(&[&format!("--auth-http-address=127.0.0.1:{auth}")]);
    let url = format!("nsq://{}", nsqd.tcp_addr());
    let guard = Duration::from_secs(20);
    let got = run_bounded(&["pub", &url, "t", "p"], guard);
    assert_failure(&got, 4, &["requires AUTH", "--token"]);
    assert!(!got.1.contains("Config::"), "{}", got.1);
    let got = run_bounded(&["pub", &url, "t", "p", "--token", "wrong"], guard);
    assert_failure(&got, 4, &["refused the credentials", "--token"]);
    let got = run_bounded(&["tail", &format!("{url}/t")], guard);
    assert_failure(&got, 4, &["requires AUTH", "--token"]);
    let got = run_bounded(&["tail", &format!("{url}/t"), "--token", "wrong"], guard);
    assert_failure(&got, 4, &["refused the credentials", "--token"]);
    let (status, stderr) = run_bounded(&["pub", &url, "t", "p", "--token", "good"], guard);
    assert_eq!(status, Some(0), "{stderr}");
}

/// What a scripted NATS peer received per connection: PUB payloads.
type Received = Arc<Mutex<Vec<usize>>>;

/// The first connection takes 10 publishes and closes without confirming
/// them; later ones answer PINGs and take everything.
fn crashing_nats_peer() -> (ScriptedPeer, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let conns = Arc::new(AtomicUsize::new(0));
    let peer = ScriptedPeer::start(move |mut conn| {
        let n = conns.fetch_add(1, Ordering::SeqCst);
        let slot = {
            let mut r = log.lock().unwrap();
            r.push(0);
            r.len() - 1
        };
        if !handshake(&mut conn) {
            return;
        }
        while let Some(line) = conn.read_line() {
            if line.starts_with("PING") {
                if n > 0 {
                    conn.send(b"PONG\r\n");
                }
            } else if line.starts_with("PUB ") {
                if conn.read_line().is_none() {
                    return;
                }
                log.lock().unwrap()[slot] += 1;
                if n == 0 && log.lock().unwrap()[slot] == 10 {
                    return; // "killed": the rest written to it is lost
                }
            }
        }
    });
    (peer, received)
}

/// `courier pub nats://` whose server dies mid-stream: the publishes it
/// wrote and the server never confirmed are reported, not counted as
/// published, and the exit code says so (issue 7, defect 2).
#[test]
fn pub_reports_publishes_lost_with_a_dead_server() {
    let args = |url: &str, extra: &[&str]| {
        let mut a = vec!["pub", url, "s", "p", "--count", "40", "--rate", "200"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let guard = Duration::from_secs(30);

    // Default: warning, exit 1, "published" counts only the confirmed.
    let (peer, received) = crashing_nats_peer();
    let a = args(&peer.nats_url(), &[]);
    let (status, stderr) = run_bounded(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), guard);
    let r = received.lock().unwrap().clone();
    eprintln!("default: {status:?} {stderr} {r:?}");
    // The 40 are either confirmed by a later connection or reported in
    // doubt (a publish caught in mid-write is kept and sent again whole).
    let later: usize = r[1..].iter().sum();
    let lost = 40 - later;
    assert!(lost >= 1 && lost <= r[0], "{r:?}");
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("published {later} messages")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "courier: {lost} of 40 publishes were written to a server"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--resend-unconfirmed"), "{stderr}");

    // Opted out: the same warning, exit 0.
    let (peer, _) = crashing_nats_peer();
    let a = args(&peer.nats_url(), &["--allow-unconfirmed"]);
    let (status, stderr) = run_bounded(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), guard);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.contains("courier: warning: "), "{stderr}");

    // Resend: the later connection gets all 40, the duplicates are said.
    let (peer, received) = crashing_nats_peer();
    let a = args(&peer.nats_url(), &["--resend-unconfirmed"]);
    let (status, stderr) = run_bounded(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), guard);
    let r = received.lock().unwrap().clone();
    eprintln!("resend: {status:?} {stderr} {r:?}");
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(r[1..].iter().sum::<usize>(), 40, "{r:?}");
    assert!(stderr.contains("publishes were sent again"), "{stderr}");
}

/// `courier pub nsq://` whose nsqd dies for good mid-stream: it retries for
/// its budget (about 10 s), then exits 3 saying how many nsqd confirmed.
#[test]
fn nsq_pub_exits_3_after_the_retry_budget_with_the_confirmed_count() {
    let mut nsqd = courier_tests::Nsqd::start();
    let url = format!("nsq://{}", nsqd.tcp_addr());
    let mut child = courier()
        .args([
            "pub", &url, "t", "p", "--count", "1000000", "--rate", "2000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    std::thread::sleep(Duration::from_millis(700));
    nsqd.kill();
    let pipe = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(pipe), &mut s);
        s
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("courier pub still running 60 s after nsqd died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap_or_default();
    let waited = started.elapsed();
    eprintln!("after {waited:?}: {status:?} {stderr}");
    assert_failure(
        &(status.code(), stderr.clone()),
        3,
        &["cannot reach nsq://", "confirmed by nsqd before this"],
    );
    assert!(
        waited >= Duration::from_secs(3),
        "it must retry first: {waited:?}"
    );
}
