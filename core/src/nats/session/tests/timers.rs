use super::*;

#[test]
fn keepalive_pings_and_stale_connection() {
    let mut s = connected();
    let interval = DEFAULT_PING_INTERVAL;
    assert_eq!(s.handle_timeout(T0), Ok(()));
    assert_eq!(s.transmit(), b"");
    let t1 = T0 + interval;
    assert_eq!(
        timeout_events(&mut s, t1).unwrap(),
        StdVec::<StdString>::new()
    );
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
    assert_eq!(s.handle_input(b"PONG\r\n", T0), Ok((6, None)));
    assert_eq!(s.poll_event(), Some(Event::Pong { ping: p1 }));
    assert_eq!(s.handle_input(b"PONG\r\n", T0), Ok((6, None)));
    assert_eq!(s.poll_event(), Some(Event::Pong { ping: p2 }));
    let mut fresh = TestSession::new(options(), [0; 1024]);
    assert_eq!(fresh.ping(), Err(Error::NotConnected));
}

#[test]
fn request_timeouts_wait_for_room_in_the_event_queue() {
    let mut s: Session<[u8; 1024], 4, 5> = Session::new(options(), [0; 1024]);
    s.handle_input(INFO, T0).unwrap();
    let n = s.transmit().len();
    s.transmitted(n);
    s.handle_input(b"PONG\r\n", T0).unwrap();
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    let ids: StdVec<RequestId> = (0..5u64)
        .map(|i| {
            let timeout = Duration::from_millis(100 + 10 * (4 - i));
            s.request("svc", None, b"", T0, timeout).unwrap()
        })
        .collect();
    let at = T0 + Duration::from_secs(1);
    let mut order = StdVec::new();
    let mut rounds = 0;
    while s.poll_timeout().is_some_and(|t| t <= at) {
        s.handle_timeout(at).unwrap();
        while let Some(Event::RequestTimedOut { request }) = s.poll_event() {
            order.push(request);
        }
        rounds += 1;
    }
    // Earliest deadline first (the last request had the shortest timeout),
    // EVENT_QUEUE at a time.
    let expected: StdVec<RequestId> = ids.iter().rev().copied().collect();
    assert_eq!(order, expected);
    assert_eq!(rounds, 5usize.div_ceil(EVENT_QUEUE));
    assert_eq!(s.pending_requests(), 0);
    assert_eq!(s.poll_timeout(), Some(T0 + DEFAULT_PING_INTERVAL));
}

#[test]
fn timer_table_is_a_min_and_expires_in_deadline_order() {
    let mut t: TimerTable<2> = TimerTable::default();
    let ms = Instant::from_millis;
    assert_eq!(t.next(), None);
    assert!(t.set(Timer::Keepalive, ms(50)));
    assert!(t.set(Timer::Request(RequestId(1)), ms(30)));
    assert!(t.set(Timer::Request(RequestId(2)), ms(50)));
    assert!(!t.set(Timer::Request(RequestId(3)), ms(10)), "table full");
    assert!(
        t.set(Timer::Request(RequestId(2)), ms(40)),
        "re-arm in place"
    );
    assert_eq!(t.next(), Some(ms(30)));
    assert_eq!(t.expired(ms(29)), None);
    assert_eq!(t.expired(ms(100)), Some(Timer::Request(RequestId(1))));
    assert_eq!(t.expired(ms(100)), Some(Timer::Request(RequestId(2))));
    assert_eq!(t.expired(ms(100)), Some(Timer::Keepalive));
    assert_eq!(t.expired(ms(100)), None);
    assert!(!t.stop(Timer::Keepalive));
    assert_eq!(t.requests(), 0);
}

proptest! {
    #[test]
    fn timer_table_next_is_the_minimum(
        keepalive in proptest::option::of(0u64..1000),
        requests in proptest::collection::vec(0u64..1000, 0..4),
        now in 0u64..1000,
    ) {
        let mut t: TimerTable<4> = TimerTable::default();
        if let Some(k) = keepalive {
            t.set(Timer::Keepalive, Instant::from_millis(k));
        }
        for (i, r) in requests.iter().enumerate() {
            t.set(Timer::Request(RequestId(i as u64)), Instant::from_millis(*r));
        }
        let all: StdVec<u64> = keepalive.iter().chain(requests.iter()).copied().collect();
        prop_assert_eq!(t.next(), all.iter().min().map(|m| Instant::from_millis(*m)));
        let mut fired = 0;
        let mut previous = None;
        while let Some(timer) = t.expired(Instant::from_millis(now)) {
            prop_assert!(t.get(timer).is_none());
            let at = match timer {
                Timer::Keepalive => keepalive.unwrap_or_default(),
                Timer::Request(RequestId(i)) => requests[i as usize],
            };
            prop_assert!(previous.is_none_or(|p| p <= at), "deadline order");
            previous = Some(at);
            fired += 1;
        }
        prop_assert_eq!(fired, all.iter().filter(|a| **a <= now).count());
        prop_assert!(t.next().is_none_or(|n| n > Instant::from_millis(now)));
    }
}
