use super::*;

#[test]
fn reset_counts_discarded_publishes() {
    let o = options();
    let handshake = required_tx_capacity(&o).unwrap() + HANDSHAKE_SLACK;
    let mut s: Session<[u8; 512], 4, 2> = Session::new(o, [0; 512]);
    s.handle_input(INFO, T0).unwrap();
    let n = s.transmit().len();
    s.transmitted(n);
    s.handle_input(b"PONG\r\n", T0).unwrap();
    for _ in 0..4 {
        s.publish("a", None, None, &[b'x'; 100]).unwrap();
    }
    // Half of the first publish went out (lost with the transport); of
    // the other three only as many as leave room for the next
    // handshake are kept, oldest first.
    s.transmitted(10);
    let keep_limit = 512 - handshake;
    assert_eq!(
        keep_limit / 113,
        2,
        "CONNECT length changed: adjust the test"
    );
    let report = s.start(T0);
    assert_eq!(
        report,
        ResetReport {
            discarded_bytes: 4 * 113 - 10 - 2 * 113,
            discarded_publishes: 2,
            kept_publishes: 2,
        }
    );
    assert_eq!(s.held_publishes(), 2);
    assert_eq!(s.stats().publishes_discarded_on_reset, 2);
    assert_eq!(s.stats().discarded_on_reset, report.discarded_bytes as u64);
}

#[test]
fn reconnect_resubscribes_then_releases_held_publishes() {
    let mut s = connected();
    let a = s.subscribe("a.*", None).unwrap();
    let b = s.subscribe("b", Some("q")).unwrap();
    s.unsubscribe_after(b, 10).unwrap();
    take(&mut s);
    feed(&mut s, b"MSG b 2 0\r\n\r\n", T0).unwrap();
    // Queued but never written when the transport dies.
    s.publish("x", None, None, b"kept").unwrap();
    s.ping().unwrap();
    assert_eq!(
        s.start(T0),
        ResetReport {
            discarded_bytes: 6,
            discarded_publishes: 0,
            kept_publishes: 1
        }
    );
    assert_eq!(s.held_publishes(), 1);
    assert_eq!(s.state(), State::AwaitingInfo);
    s.publish("y", None, None, b"later").unwrap();
    let c = s.subscribe("c", None).unwrap();
    assert_eq!(s.transmit(), b"", "nothing goes out before the handshake");
    assert_eq!(s.held_bytes(), 15 + 16);

    feed(&mut s, INFO, T0).unwrap();
    let handshake = take(&mut s);
    assert!(
        handshake.starts_with("CONNECT {") && handshake.ends_with("}\r\nPING\r\n"),
        "{handshake}"
    );
    s.publish("z", None, None, b"").unwrap();
    assert_eq!(s.transmit(), b"");
    assert_eq!(s.handle_input(b"PONG\r\n", T0).unwrap(), (6, None));
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            reconnect: true,
            max_payload_warning: None
        })
    );
    assert_eq!(
        take(&mut s),
        format!(
            "SUB a.* {}\r\nSUB b q {}\r\nUNSUB {} 9\r\nSUB c {}\r\nPUB x 4\r\nkept\r\nPUB y 5\r\nlater\r\nPUB z 0\r\n\r\n",
            a.0, b.0, b.0, c.0
        )
    );
}

#[test]
fn subscriptions_made_before_connecting_are_sent_in_the_handshake() {
    let mut s = TestSession::new(options(), [0; 1024]);
    s.subscribe("early", None).unwrap();
    s.publish("early", None, None, b"1").unwrap();
    feed(&mut s, INFO, T0).unwrap();
    take(&mut s);
    feed(&mut s, b"PONG\r\n", T0).unwrap();
    assert_eq!(take(&mut s), "SUB early 1\r\nPUB early 1\r\n1\r\n");
}
