//! What a real nats-server will not do, played by a scripted TCP peer:
//! garbage, an oversized MSG, a stall mid-frame. Each ends the connection
//! with a typed, explained error (reported as a `Disconnected` event), and
//! nothing panics.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use courier::nats::{ConnectOptions, Event};
use courier_tests::nats_events::first_disconnect_reason;
use courier_tests::{nats_info_line, PeerConn, ScriptedPeer};

/// Greets like a server and completes the client's handshake.
fn handshake(conn: &mut PeerConn) {
    conn.send(&nats_info_line(1024));
    conn.read_until_line_starting("CONNECT").expect("CONNECT");
    conn.read_until_line_starting("PING").expect("PING");
    conn.send(b"PONG\r\n");
}

/// Connects, waits for the first `Disconnected`, returns its reason.
fn disconnect_reason(peer: &ScriptedPeer, options: ConnectOptions) -> String {
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let log = events.clone();
    let url = peer.nats_url();
    courier::run(async move {
        let client = options
            .max_reconnects(Some(1))
            .reconnect_delay(Duration::from_millis(10), Duration::from_millis(10))
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url])
            .await
            .expect("the scripted handshake succeeds");
        let reason =
            first_disconnect_reason(&events, Duration::from_secs(20), "scripted peer").await;
        let _ = client.close().await;
        reason
    })
}

#[test]
fn garbage_from_the_server_is_a_protocol_error() {
    let peer = ScriptedPeer::start(|mut conn| {
        handshake(&mut conn);
        conn.send(b"HELLO this is not NATS\r\n");
        conn.hold_open(Duration::from_secs(2));
    });
    let reason = disconnect_reason(&peer, ConnectOptions::new());
    assert!(reason.contains("protocol error"), "{reason}");
    assert!(reason.contains("HELLO"), "{reason}");
}

#[test]
fn an_oversized_msg_is_frame_too_large_before_its_payload_arrives() {
    let peer = ScriptedPeer::start(|mut conn| {
        handshake(&mut conn);
        conn.send(b"MSG big 1 100000\r\nonly the start");
        conn.hold_open(Duration::from_secs(2));
    });
    let reason = disconnect_reason(&peer, ConnectOptions::new().receive_buffer_size(4096));
    assert!(reason.contains("100"), "{reason}");
    assert!(reason.contains("4096"), "{reason}");
}

#[test]
fn a_stall_mid_frame_is_detected_by_unanswered_pings() {
    let peer = ScriptedPeer::start(|mut conn| {
        handshake(&mut conn);
        conn.send(b"MSG a 1 10\r\nabc");
        // Read (and ignore) the client's PINGs without ever answering.
        conn.hold_open(Duration::from_secs(5));
    });
    let reason = disconnect_reason(
        &peer,
        ConnectOptions::new().ping_interval(Duration::from_millis(100), 2),
    );
    assert!(reason.contains("stale"), "{reason}");
}

#[test]
fn server_pings_are_answered_even_when_the_transmit_buffer_is_full() {
    // The peer PINGs after every line the client sends, so PONGs must be
    // queued while publishes fill a tiny transmit buffer.
    let pubs = Arc::new(AtomicUsize::new(0));
    let seen = pubs.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        handshake(&mut conn);
        while let Some(line) = conn.read_line() {
            if line.starts_with("PING") {
                conn.send(b"PONG\r\n");
            } else {
                if line.starts_with("PUB ") {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                conn.send(b"PING\r\n");
            }
        }
    });
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let log = events.clone();
    let url = peer.nats_url();
    courier::run(async move {
        let client = ConnectOptions::new()
            .transmit_buffer_size(512)
            .reconnect_buffer_size(0)
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url])
            .await
            .unwrap();
        for _ in 0..2000 {
            client.publish("p", [b'x'; 100]).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(20), client.flush())
            .await
            .expect("flush within 20 s")
            .unwrap();
        let _ = client.close().await;
    });
    assert_eq!(pubs.load(Ordering::SeqCst), 2000);
    assert!(
        !events
            .borrow()
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "{:?}",
        events.borrow()
    );
}
