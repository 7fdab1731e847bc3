//! Reconnect storms (issue 7, defect 1): a server that completes the
//! handshake and then sends something invalid or closes must not be
//! reconnected to in a tight loop. A connection that dies within its first
//! seconds counts as a failed attempt, so the backoff keeps growing.
//!
//! Before the shared `reconnect` policy, the NATS client reconnected at once
//! after every handshake that had succeeded: thousands of connections in a
//! few seconds against each of these peers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use courier::nats::{ConnectOptions, Event};
use courier_tests::{nats_info_line, PeerConn, ScriptedPeer};

/// How long each peer is watched.
const WATCH: Duration = Duration::from_secs(3);

/// Greets like a server and completes the client's handshake.
fn handshake(conn: &mut PeerConn) -> bool {
    conn.send(&nats_info_line(1024));
    conn.read_until_line_starting("CONNECT").is_some()
        && conn.read_until_line_starting("PING").is_some()
        && {
            conn.send(b"PONG\r\n");
            true
        }
}

/// Runs a client against a peer that shakes hands, then sends `after`
/// and closes; returns (connections accepted, Disconnected events) in
/// [`WATCH`].
fn storm(after: &'static [u8]) -> (usize, usize) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        if handshake(&mut conn) {
            // Let the client see the handshake complete first, so this
            // is a connection that was up and then died.
            std::thread::sleep(Duration::from_millis(30));
            conn.send(after);
        }
        // Dropping the connection closes it (also "close mid-frame").
    });
    let url = peer.nats_url();
    let disconnects = Arc::new(AtomicUsize::new(0));
    let seen = disconnects.clone();
    courier::run(async move {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .event_callback(move |e| {
                if matches!(e, Event::Disconnected { .. }) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            })
            .connect([url])
            .await
            .expect("the scripted handshake succeeds");
        tokio::time::sleep(WATCH).await;
        let _ = client.close().await;
    });
    (
        accepted.load(Ordering::SeqCst),
        disconnects.load(Ordering::SeqCst),
    )
}

/// With the default policy (50 ms doubling to 2 s, jittered between half
/// and all of each step) a client can make at most about 8 attempts in 3 s;
/// 20 leaves room for scheduling noise and is far below the thousands a
/// tight loop makes.
const MAX_CONNECTIONS: usize = 20;

fn assert_backs_off(name: &str, after: &'static [u8]) {
    let (accepted, disconnects) = storm(after);
    eprintln!("{name}: {accepted} connections, {disconnects} Disconnected events in {WATCH:?}");
    assert!(
        accepted >= 2,
        "{name}: the client must still reconnect ({accepted} connections)"
    );
    assert!(
        accepted <= MAX_CONNECTIONS,
        "{name}: {accepted} connections in {WATCH:?}: a reconnect storm"
    );
    assert!(
        disconnects <= accepted,
        "{name}: {disconnects} Disconnected events for {accepted} connections"
    );
}

#[test]
fn garbage_after_the_handshake_backs_off() {
    assert_backs_off("garbage line", b"HELLO this is not NATS\r\n");
}

#[test]
fn oversized_msg_after_the_handshake_backs_off() {
    assert_backs_off("MSG over max_payload", b"MSG a 1 99999999999999999999\r\n");
}

#[test]
fn close_mid_frame_after_the_handshake_backs_off() {
    assert_backs_off("close mid-frame", b"MSG a 1 10\r\nabc");
}

#[test]
fn negative_size_after_the_handshake_backs_off() {
    assert_backs_off("MSG size -5", b"MSG a 1 -5\r\n");
}

#[test]
fn malformed_hmsg_after_the_handshake_backs_off() {
    assert_backs_off("malformed HMSG", b"HMSG a 1 10 5\r\nNATS/1.0\r\n\r\n\r\n");
}

#[test]
fn payload_without_its_crlf_after_the_handshake_backs_off() {
    assert_backs_off("payload without CRLF", b"MSG a 1 3\r\nabcXY");
}

#[test]
fn eight_mb_line_after_the_handshake_backs_off() {
    let line: &'static [u8] = Box::leak(vec![b'A'; 8 * 1024 * 1024].into_boxed_slice());
    assert_backs_off("8 MB line", line);
}

#[test]
fn err_then_close_after_the_handshake_backs_off() {
    assert_backs_off("-ERR then close", b"-ERR 'Unknown Protocol Operation'\r\n");
}

/// An NSQ frame: size, type, data.
fn nsq_frame(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut f = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// An nsqd that completes IDENTIFY and SUB, then sends an unknown frame
/// type 50 ms later: the consumer's subscription dies young every time.
/// Before the shared policy a subscription reset the delay to
/// `reconnect_delay`, so it reconnected every 100 ms forever.
#[test]
fn nsq_consumer_backs_off_after_a_subscription_that_died_young() {
    use courier::nsq::{Config, Consumer, Handler, HandlerError, Message, ServerNodes};

    struct Ignore;
    impl Handler for Ignore {
        type Class = ();
        type Context = ();
        fn classify(&self, _: &Message) -> Option<((), ())> {
            Some(((), ()))
        }
        async fn handle(&self, _: (), _: (), _: &Message) -> Result<(), HandlerError> {
            Ok(())
        }
    }

    const IDENTIFY_OK: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        counter.fetch_add(1, Ordering::SeqCst);
        if conn.read_exact(4).is_none() || conn.read_until_line_starting("IDENTIFY").is_none() {
            return;
        }
        let Some(len) = conn.read_exact(4) else {
            return;
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if conn.read_exact(len).is_none() {
            return;
        }
        conn.send(&nsq_frame(0, IDENTIFY_OK));
        if conn.read_until_line_starting("SUB").is_none() {
            return;
        }
        conn.send(&nsq_frame(0, b"OK"));
        std::thread::sleep(Duration::from_millis(50));
        conn.send(&nsq_frame(7, b"xx"));
    });
    let addr = peer.addr().to_string();
    courier::run(async move {
        let config = Config {
            reconnect_delay: Duration::from_millis(100),
            ..Config::default()
        };
        let consumer = Consumer::builder([("storm", "c")], ServerNodes::new([addr]), 10, Ignore)
            .config(config)
            .start()
            .await
            .expect("the first subscription succeeds");
        tokio::time::sleep(Duration::from_secs(4)).await;
        consumer.stop().await;
    });
    let accepted = accepted.load(Ordering::SeqCst);
    eprintln!("nsq: {accepted} connections in 4 s");
    // 100 ms doubling (jittered between half and all of each step): about
    // 6 attempts in 4 s; a fixed 100 ms delay makes about 25.
    assert!(accepted >= 2, "it must keep reconnecting: {accepted}");
    assert!(accepted <= 12, "{accepted} connections in 4 s: no backoff");
}
