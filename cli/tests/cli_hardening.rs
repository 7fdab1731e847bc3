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
