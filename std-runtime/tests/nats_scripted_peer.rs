//! What a real nats-server will not do, played by a scripted TCP peer:
//! garbage, an oversized MSG, a stall mid-frame. Each ends the connection
//! with a typed, explained error (reported as a `Disconnected` event), and
//! nothing panics.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    // The peer PINGs after every line of a publish (control line and
    // payload), so PONGs must be queued while publishes fill a tiny
    // transmit buffer. It does not PING after the client's PONGs: that
    // would start an endless PING/PONG exchange per line (thousands at
    // once) whose PONGs keep the buffer full and starve the publisher (the
    // test then hung now and then on main).
    let pubs = Arc::new(AtomicUsize::new(0));
    let seen = pubs.clone();
    // (PINGs sent, PONGs received) when each client PING arrived.
    let at_client_pings = Arc::new(Mutex::new(Vec::<(usize, usize)>::new()));
    let snapshots = at_client_pings.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        handshake(&mut conn);
        let (mut pings, mut pongs) = (0, 0);
        while let Some(line) = conn.read_line() {
            if line.starts_with("PING") {
                snapshots.lock().unwrap().push((pings, pongs));
                conn.send(b"PONG\r\n");
            } else if line.starts_with("PONG") {
                pongs += 1;
            } else {
                if line.starts_with("PUB ") {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                pings += 1;
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
        // The first flush's PONG comes after every peer PING, so once it
        // returns every PONG is queued; the second flush's PING follows
        // them on the wire.
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(20), client.flush())
                .await
                .expect("flush within 20 s")
                .unwrap();
        }
        let _ = client.close().await;
    });
    assert_eq!(pubs.load(Ordering::SeqCst), 2000);
    let last = at_client_pings.lock().unwrap().last().copied();
    assert_eq!(
        last,
        Some((4000, 4000)),
        "every PING of the peer answered before the last flush"
    );
    assert!(
        !events
            .borrow()
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "{:?}",
        events.borrow()
    );
}

#[test]
fn a_ping_burst_larger_than_the_transmit_buffer_is_answered_in_full() {
    // 1,000 PINGs in one segment need 6,000 bytes of PONGs: the read loop
    // fills the 512-byte transmit buffer, is blocked, and must WAIT for the
    // writer (not retry at once): on the current-thread runtime a retry
    // that never waits spins forever and no PONG is ever written. Run on
    // its own thread so a spinning client fails the test instead of
    // hanging it.
    const BURST: usize = 1000;
    let pongs = Arc::new(AtomicUsize::new(0));
    let counted = pongs.clone();
    let peer = ScriptedPeer::start(move |mut conn| {
        conn.send(&nats_info_line(1024));
        conn.read_until_line_starting("CONNECT").expect("CONNECT");
        conn.read_until_line_starting("PING").expect("PING");
        let mut burst = b"PONG\r\n".to_vec();
        for _ in 0..BURST {
            burst.extend_from_slice(b"PING\r\n");
        }
        conn.send(&burst);
        while let Some(line) = conn.read_line() {
            if line.starts_with("PONG") {
                counted.fetch_add(1, Ordering::SeqCst);
            } else if line.starts_with("PING") {
                conn.send(b"PONG\r\n");
            }
        }
    });
    let url = peer.nats_url();
    let seen = pongs.clone();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        courier::run(async move {
            let client = ConnectOptions::new()
                .transmit_buffer_size(512)
                .reconnect_buffer_size(0)
                .connect([url])
                .await
                .unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while seen.load(Ordering::SeqCst) < BURST && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = client.close().await;
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the client's runtime ended: a blocked read loop that never waits starves it");
    assert_eq!(pongs.load(Ordering::SeqCst), BURST, "every PING answered");
}
