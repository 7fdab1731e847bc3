use super::*;

#[test]
fn auto_unsubscribe_delivers_exactly_n() {
    let mut s = connected();
    let sid = s.subscribe("a", None).unwrap();
    s.unsubscribe_after(sid, 3).unwrap();
    assert_eq!(take(&mut s), "SUB a 1\r\nUNSUB 1 3\r\n");
    let mut input = StdVec::new();
    for i in 0..5 {
        input.extend_from_slice(format!("MSG a 1 1\r\n{i}\r\n").as_bytes());
    }
    let events = feed(&mut s, &input, T0).unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events[..3].iter().all(|e| e.starts_with("Message")));
    assert_eq!(events[3], "SubscriptionDone { sid: Sid(1) }");
    assert_eq!(s.stats().dropped_unknown_sid, 2);
    assert_eq!(s.unsubscribe(sid), Err(Error::UnknownSubscription(sid)));
}

#[test]
fn unsubscribe_writes_unsub_and_drops_later_messages() {
    let mut s = connected();
    let sid = s.subscribe("a", None).unwrap();
    s.unsubscribe(sid).unwrap();
    assert_eq!(take(&mut s), "SUB a 1\r\nUNSUB 1\r\n");
    assert_eq!(feed(&mut s, b"MSG a 1 0\r\n\r\n", T0).unwrap().len(), 0);
    assert_eq!(s.stats().dropped_unknown_sid, 1);
    // Sids are never reused.
    assert_eq!(s.subscribe("a", None).unwrap(), Sid(2));
}

#[test]
fn draining_delivers_until_its_pong_then_ends() {
    let mut s = connected();
    let sid = s.subscribe("a", None).unwrap();
    let flush = s.ping().unwrap();
    take(&mut s);
    s.unsubscribe_draining(sid).unwrap();
    assert_eq!(take(&mut s), "UNSUB 1\r\nPING\r\n");
    assert!(s.is_draining(sid));
    // Again: nothing more is written.
    s.unsubscribe_draining(sid).unwrap();
    assert_eq!(s.transmit(), b"");
    // Routed by the server before it processed the UNSUB: delivered,
    // also across the PONG of an earlier PING.
    let events = feed(&mut s, b"MSG a 1 1\r\n1\r\nPONG\r\nMSG a 1 1\r\n2\r\n", T0).unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[0].starts_with("Message") && events[2].starts_with("Message"));
    assert_eq!(events[1], format!("{:?}", Event::Pong { ping: flush }));
    assert!(s.is_draining(sid));
    assert_eq!(s.stats().messages_received, 2);
    // The PONG to the drain's PING ends it; later strays are dropped.
    let events = feed(&mut s, b"PONG\r\nMSG a 1 1\r\n3\r\n", T0).unwrap();
    assert_eq!(
        events,
        [
            format!(
                "{:?}",
                Event::Pong {
                    ping: PingId(flush.0 + 1)
                }
            ),
            format!("{:?}", Event::SubscriptionDone { sid }),
        ]
    );
    assert_eq!(s.stats().dropped_unknown_sid, 1);
    assert_eq!(s.stats().messages_received, 2);
    assert!(!s.is_draining(sid));
    assert_eq!(s.subscriptions().count(), 0);
    assert_eq!(
        s.unsubscribe_draining(sid),
        Err(Error::UnknownSubscription(sid))
    );
}

#[test]
fn draining_split_anywhere_gives_the_same_events() {
    let stream = b"MSG a 1 1\r\n1\r\nPING\r\nMSG a 1 2\r\n22\r\nPONG\r\nMSG a 1 1\r\n3\r\n";
    let run = |chunk: usize| {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        s.unsubscribe_draining(sid).unwrap();
        take(&mut s);
        let mut log = StdVec::new();
        let mut rx: StdVec<u8> = StdVec::new();
        for part in stream.chunks(chunk) {
            rx.extend_from_slice(part);
            loop {
                let polled = poll_all(&mut s, &mut log);
                let (used, event) = s.handle_input(&rx, T0).unwrap();
                let had_event = event.is_some();
                if let Some(e) = event {
                    log.push(format!("{e:?}"));
                }
                rx.drain(..used);
                if used == 0 && !had_event && polled == 0 {
                    break;
                }
            }
        }
        log.push(take(&mut s));
        log.push(format!("{}", s.stats().dropped_unknown_sid));
        log
    };
    let whole = run(stream.len());
    assert_eq!(whole.len(), 6, "{whole:?}");
    assert!(whole[3].starts_with("SubscriptionDone"), "{whole:?}");
    assert_eq!(whole[4], "PONG\r\n");
    assert_eq!(whole[5], "1");
    for chunk in 1..stream.len() {
        assert_eq!(run(chunk), whole, "chunks of {chunk}");
    }
}

#[test]
fn a_reset_ends_drains_and_poll_event_says_so() {
    let mut s = connected();
    let a = s.subscribe("a", None).unwrap();
    let b = s.subscribe("b", None).unwrap();
    s.unsubscribe_draining(a).unwrap();
    take(&mut s);
    let report = s.start(T0);
    assert_eq!(report.discarded_publishes, 0);
    // Waiting at once, without more input or a timer.
    assert!(s.has_events());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll_event(), Some(Event::SubscriptionDone { sid: a }));
    assert_eq!(s.poll_event(), None);
    feed(&mut s, INFO, T0).unwrap();
    take(&mut s);
    feed(&mut s, b"PONG\r\n", T0).unwrap();
    assert_eq!(take(&mut s), format!("SUB b {}\r\n", b.0));
    // Not connected: the server will not know it, so it ends at once.
    s.start(T0);
    s.unsubscribe_draining(b).unwrap();
    assert_eq!(s.poll_event(), Some(Event::SubscriptionDone { sid: b }));
    assert_eq!(s.subscriptions().count(), 0);
}

#[test]
fn draining_needs_room_for_unsub_and_ping_together() {
    let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
    feed_small(&mut s, INFO);
    let n = s.transmit().len();
    s.transmitted(n);
    feed_small(&mut s, b"PONG\r\n");
    let sid = s.subscribe("a", None).unwrap();
    let n = s.transmit().len();
    s.transmitted(n);
    // 256 - 234 = 22 free: UNSUB 1 (9) + PING (6) fit, a 240-byte queue does not.
    s.publish("x", None, None, &[b'x'; 230]).unwrap();
    assert_eq!(
        s.unsubscribe_draining(sid),
        Err(Error::BufferFull(CapacityError {
            needed: 243 + 15,
            capacity: 256
        }))
    );
    assert!(!s.is_draining(sid));
    let n = s.transmit().len();
    s.transmitted(n);
    s.unsubscribe_draining(sid).unwrap();
    assert_eq!(s.transmit(), b"UNSUB 1\r\nPING\r\n");
}

#[test]
fn auto_unsubscribe_done_follows_the_last_message_from_poll_event() {
    let mut s = connected();
    let sid = s.subscribe("a", None).unwrap();
    s.unsubscribe_after(sid, 1).unwrap();
    let (_, event) = s.handle_input(b"MSG a 1 0\r\n\r\n", T0).unwrap();
    assert!(matches!(event, Some(Received::Message(_))));
    // No input is parsed before the event is taken: nothing can overtake it.
    assert_eq!(s.handle_input(b"MSG a 1 0\r\n\r\n", T0), Ok((0, None)));
    assert_eq!(s.poll_event(), Some(Event::SubscriptionDone { sid }));
    assert_eq!(s.poll_event(), None);
    // No timer is involved: only the keepalive is armed.
    assert_eq!(s.poll_timeout(), Some(T0 + DEFAULT_PING_INTERVAL));
}
