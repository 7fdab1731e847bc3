use super::*;

#[test]
fn keepalive_pings_and_stale_connection() {
    let mut s = connected();
    let interval = DEFAULT_PING_INTERVAL;
    assert_eq!(s.handle_timeout(T0), Ok(None));
    assert_eq!(s.transmit(), b"");
    let t1 = T0 + interval;
    assert_eq!(s.handle_timeout(t1), Ok(None));
    assert_eq!(take(&mut s), "PING\r\n");
    // Answered: the count restarts.
    let events = feed(&mut s, b"PONG\r\n", t1).unwrap();
    assert_eq!(events, ["Pong { ping: PingId(2) }"]);
    let t2 = t1 + interval;
    s.handle_timeout(t2).unwrap();
    let t3 = t2 + interval;
    s.handle_timeout(t3).unwrap();
    assert_eq!(take(&mut s), "PING\r\nPING\r\n");
    assert_eq!(
        s.handle_timeout(t3 + interval),
        Err(Error::StaleConnection {
            pings_outstanding: 2
        })
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn user_ping_is_answered_in_order() {
    let mut s = connected();
    let p1 = s.ping().unwrap();
    let p2 = s.ping().unwrap();
    assert!(p2 > p1);
    assert_eq!(take(&mut s), "PING\r\nPING\r\n");
    let (_, e) = s.handle_input(b"PONG\r\n", T0).unwrap();
    assert_eq!(e, Some(Event::Pong { ping: p1 }));
    let (_, e) = s.handle_input(b"PONG\r\n", T0).unwrap();
    assert_eq!(e, Some(Event::Pong { ping: p2 }));
    let mut fresh = TestSession::new(options(), [0; 1024]);
    assert_eq!(fresh.ping(), Err(Error::NotConnected));
}
