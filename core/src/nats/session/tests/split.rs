use super::*;

#[test]
fn split_reads_give_the_same_events() {
    let mut stream = StdVec::from(INFO);
    stream.extend_from_slice(
        b"PONG\r\nMSG a 1 5\r\nhello\r\nPING\r\nHMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n",
    );
    let reference = run_split(&stream, &[stream.len()]);
    assert_eq!(reference.len(), 5, "{reference:?}");
    for size in 1..stream.len() {
        assert_eq!(run_split(&stream, &[size]), reference, "chunks of {size}");
    }
}

/// Drives a session over `stream` delivered in chunks, like a driver
/// with a receive buffer, and returns the events and written bytes.
fn run_split(stream: &[u8], chunks: &[usize]) -> StdVec<StdString> {
    let mut s = TestSession::new(options(), [0; 1024]);
    s.subscribe("a", None).unwrap();
    let mut rx: StdVec<u8> = StdVec::new();
    let mut log = StdVec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().cycle();
    while fed < stream.len() {
        let n = sizes.next().unwrap_or(1).max(1).min(stream.len() - fed);
        rx.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
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
    log
}

proptest! {
    #[test]
    fn split_anywhere_same_events(chunks in proptest::collection::vec(1usize..30, 1..12)) {
        let mut stream = StdVec::from(INFO);
        stream.extend_from_slice(b"PONG\r\nMSG a 1 5\r\nhello\r\nPING\r\nHMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Permissions Violation for Subscription to \"x\"'\r\n");
        prop_assert_eq!(run_split(&stream, &chunks), run_split(&stream, &[stream.len()]));
    }

    #[test]
    fn auto_unsubscribe_delivers_exactly_min_of_max_and_sent(max in 1u64..30, sent in 0u64..40) {
        let mut s = connected();
        let sid = s.subscribe("a", None).unwrap();
        s.unsubscribe_after(sid, max).unwrap();
        let mut input = StdVec::new();
        for _ in 0..sent {
            input.extend_from_slice(b"MSG a 1 0\r\n\r\n");
        }
        let events = feed(&mut s, &input, T0).unwrap();
        let delivered = events.iter().filter(|e| e.starts_with("Message")).count() as u64;
        prop_assert_eq!(delivered, max.min(sent));
        let done = events.iter().filter(|e| e.starts_with("SubscriptionDone")).count();
        prop_assert_eq!(done, usize::from(sent >= max));
        prop_assert_eq!(s.stats().dropped_unknown_sid, sent.saturating_sub(max));
    }

    #[test]
    fn replies_in_any_order_find_their_requests(order in Just([0usize, 1]).prop_shuffle()) {
        let mut s = connected();
        let ids: StdVec<RequestId> = (0..2)
            .map(|i| s.request("svc", None, format!("{i}").as_bytes(), T0, Duration::from_secs(1)).unwrap())
            .collect();
        for i in order {
            let line = format!("MSG _INBOX.t.{} 1 1\r\n{i}\r\n", ids[i].0);
            let (_, event) = s.handle_input(line.as_bytes(), T0).unwrap();
            let Some(Received::Reply { request, message }) = event else { panic!("{event:?}") };
            prop_assert_eq!(request, ids[i]);
            let expected = format!("{i}");
            prop_assert_eq!(message.payload, expected.as_bytes());
        }
        prop_assert_eq!(s.pending_requests(), 0);
    }

    #[test]
    fn arbitrary_input_never_panics(
        prefix in proptest::bool::ANY,
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut o = options();
        o.rx_capacity = 128;
        let mut s = TestSession::new(o, [0; 1024]);
        let mut input = StdVec::new();
        if prefix {
            input.extend_from_slice(b"INFO {}\r\nPONG\r\n");
        }
        input.extend_from_slice(&bytes);
        let mut rest = &input[..];
        for _ in 0..64 {
            match s.handle_input(rest, T0) {
                Ok((0, None)) | Err(_) => break,
                Ok((used, _)) => rest = &rest[used..],
            }
        }
        let _ = s.handle_timeout(T0 + Duration::from_secs(1000));
    }
}
