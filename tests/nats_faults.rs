//! The runtime client facing what a real server will not do, through a
//! scripted TCP peer: garbage on the wire, a MSG larger than the receive
//! buffer, a peer that stalls mid-frame. Each must surface as a typed,
//! explained disconnect, never a panic or a hang. Verbose mode runs against
//! the real nats-server.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use courier::nats::{ConnectOptions, Event};
use courier_tests::{nats_info_line, NatsServer, PeerConn, ScriptedPeer};

/// Greets like a server, completes the handshake, waits for the client's
/// SUB (reporting its sid), then sends `after`.
fn scripted(after: &'static [u8], max_payload: usize) -> (ScriptedPeer, mpsc::Receiver<String>) {
    let (sids, sid_rx) = mpsc::channel();
    let peer = ScriptedPeer::start(move |mut conn: PeerConn| {
        conn.send(&nats_info_line(max_payload));
        if conn.read_until_line_starting("PING").is_none() {
            return;
        }
        conn.send(b"PONG\r\n");
        let Some(sub) = conn.read_until_line_starting("SUB ") else {
            return;
        };
        let sid = sub.split_whitespace().last().unwrap_or("1").to_string();
        let _ = sids.send(sid.clone());
        let after = String::from_utf8_lossy(after).replace("{sid}", &sid);
        conn.send(after.as_bytes());
        conn.hold_open(Duration::from_secs(5));
    });
    (peer, sid_rx)
}

/// Connects to the peer (no reconnects), subscribes, and returns the reason
/// of the first disconnect.
fn first_disconnect(url: String, options: ConnectOptions) -> String {
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let seen = events.clone();
    let options = options
        .max_reconnects(Some(0))
        .event_callback(move |e| seen.borrow_mut().push(e.clone()));
    courier::run(async move {
        let client = options.connect([url.as_str()]).await.expect("handshake");
        let _sub = client.subscribe("faults.>").await.expect("subscribe");
        for _ in 0..200 {
            if let Some(reason) = events.borrow().iter().find_map(|e| match e {
                Event::Disconnected { reason, .. } => Some(reason.clone()),
                _ => None,
            }) {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no disconnect reported within 10 s: {:?}", events.borrow());
    })
}

#[test]
fn garbage_from_the_server_is_a_protocol_error_disconnect() {
    let (peer, sid) = scripted(
        b"MSG faults.a {sid} 2\r\nok\r\n\x00\x01BOGUS garbage\r\n",
        1 << 20,
    );
    let reason = first_disconnect(peer.nats_url(), ConnectOptions::new());
    assert!(sid.recv_timeout(Duration::from_secs(5)).is_ok());
    let lower = reason.to_lowercase();
    assert!(
        lower.contains("protocol") || lower.contains("unknown"),
        "reason names the protocol violation: {reason}"
    );
}

#[test]
fn oversized_msg_is_frame_too_large_before_its_payload_arrives() {
    // 100 000 bytes announced, none sent: the client must not wait for them.
    let (peer, _sid) = scripted(b"MSG faults.big {sid} 100000\r\n", 1 << 20);
    let reason = first_disconnect(
        peer.nats_url(),
        ConnectOptions::new().receive_buffer_size(4096),
    );
    // The needed size counts the whole frame: control line, payload, CRLF.
    let needed: u64 = reason
        .split(|c: char| !c.is_ascii_digit())
        .find_map(|n| n.parse().ok().filter(|&n: &u64| n >= 100_000))
        .unwrap_or_else(|| panic!("reason gives the frame size: {reason}"));
    assert!(needed < 100_100, "{reason}");
    assert!(
        reason.contains("4096"),
        "reason gives the buffer capacity: {reason}"
    );
}

#[test]
fn peer_stalling_mid_frame_is_detected_by_keepalive() {
    // Half a message, then silence; PINGs go unanswered.
    let (peer, _sid) = scripted(b"MSG faults.slow {sid} 10\r\nabc", 1 << 20);
    let reason = first_disconnect(
        peer.nats_url(),
        ConnectOptions::new().ping_interval(Duration::from_millis(200), 2),
    );
    let lower = reason.to_lowercase();
    assert!(
        lower.contains("stale") || lower.contains("ping") || lower.contains("stall"),
        "reason says the server stopped answering: {reason}"
    );
}

#[test]
fn verbose_mode_acknowledges_every_command_and_still_delivers() {
    let server = NatsServer::start();
    let url = server.url();
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let seen = events.clone();
    courier::run(async move {
        let client = ConnectOptions::new()
            .verbose(true)
            .event_callback(move |e| seen.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("verbose.x").await.unwrap();
        for i in 0..5 {
            client.publish("verbose.x", format!("v{i}")).await.unwrap();
        }
        client.flush().await.unwrap();
        for i in 0..5 {
            let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .expect("message in verbose mode")
                .unwrap();
            assert_eq!(msg.payload, format!("v{i}").as_bytes());
        }
        // Every +OK was consumed as an acknowledgement, not mistaken for an error.
        assert!(
            !events
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::Error { .. } | Event::Disconnected { .. })),
            "{:?}",
            events.borrow()
        );
        client.close().await.unwrap();
    });
}
