use super::*;

#[test]
fn messages_are_zero_copy_events() {
    let mut s = connected();
    let sid = s.subscribe("telemetry.>", Some("workers")).unwrap();
    assert_eq!(take(&mut s), "SUB telemetry.> workers 1\r\n");
    let input = b"MSG telemetry.temp 1 reply.1 4\r\n21.5\r\nHMSG telemetry.hum 1 21 23\r\nNATS/1.0\r\nUnit: %\r\n\r\n40\r\n";
    let (used, event) = s.handle_input(input, T0).unwrap();
    let Some(Received::Message(m)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(used, 38);
    assert_eq!(
        (m.sid, m.subject, m.reply, m.payload),
        (sid, "telemetry.temp", Some("reply.1"), &b"21.5"[..])
    );
    assert!(core::ptr::eq(m.payload.as_ptr(), input[32..].as_ptr()));
    let (_, event) = s.handle_input(&input[used..], T0).unwrap();
    let Some(Received::Message(m)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(m.headers.unwrap().get("unit"), Some("%"));
    assert_eq!(m.payload, b"40");
    assert_eq!(m.status, None);
    assert_eq!(s.stats().messages_received, 2);
}

#[test]
fn malformed_headers_from_a_publisher_do_not_kill_the_connection() {
    let mut s = connected();
    s.subscribe("a", None).unwrap();
    let (_, event) = s
        .handle_input(b"HMSG a 1 7 9\r\nBROKEN!hi\r\n", T0)
        .unwrap();
    let Some(Received::Message(m)) = event else {
        panic!("{event:?}")
    };
    assert_eq!((m.headers, m.payload), (None, &b"hi"[..]));
    assert_eq!(s.stats().malformed_headers, 1);
    assert_eq!(s.state(), State::Connected);
}

#[test]
fn verbose_ok_and_non_fatal_errors_are_events() {
    let mut s = connected();
    let events = feed(
        &mut s,
        b"+OK\r\n-ERR 'Permissions Violation for Publish to \"secret\"'\r\n-ERR 'Invalid Subject'\r\n",
        T0,
    )
    .unwrap();
    assert_eq!(
        events,
        [
            "Ok",
            "ServerError { kind: PermissionsViolation, message: \"Permissions Violation for Publish to \\\"secret\\\"\" }",
            "ServerError { kind: InvalidSubject, message: \"Invalid Subject\" }"
        ]
    );
    assert_eq!(s.state(), State::Connected);
}

#[test]
fn fatal_server_errors_are_typed_and_close() {
    let mut s = TestSession::new(options(), [0; 1024]);
    feed(&mut s, INFO, T0).unwrap();
    let err = s
        .handle_input(b"-ERR 'Authorization Violation'\r\n", T0)
        .unwrap_err();
    assert_eq!(err, Error::AuthorizationViolation);
    assert!(err.is_fatal());
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.handle_input(b"PING\r\n", T0).unwrap(), (0, None));

    for (text, kind) in [
        (
            "Maximum Payload Violation",
            ServerErrorKind::MaximumPayloadViolation,
        ),
        ("Stale Connection", ServerErrorKind::StaleConnection),
        ("Slow Consumer", ServerErrorKind::SlowConsumer),
        (
            "Unknown Protocol Operation",
            ServerErrorKind::UnknownProtocolOperation,
        ),
        ("something new", ServerErrorKind::Other),
    ] {
        let mut s = connected();
        let line = format!("-ERR '{text}'\r\n");
        match s.handle_input(line.as_bytes(), T0) {
            Err(Error::Server { kind: k, message }) => {
                assert_eq!(k, kind);
                assert_eq!(message.as_str(), text);
            }
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(s.state(), State::Closed);
    }
}

#[test]
fn headers_round_trip_through_publish() {
    let mut s = connected();
    let mut h = HeaderWriter::new([0u8; 64]).unwrap();
    h.insert("Unit", "C").unwrap();
    s.publish("a", Some("r"), Some(h.as_bytes()), b"21")
        .unwrap();
    assert_eq!(
        take(&mut s),
        "HPUB a r 21 23\r\nNATS/1.0\r\nUnit: C\r\n\r\n21\r\n"
    );
}

#[test]
fn header_only_publish_for_vectored_writes() {
    let mut s = connected();
    let trailer = s.publish_header_only("big", None, None, 5).unwrap();
    assert_eq!(trailer, b"\r\n");
    // A server PING arriving meanwhile waits behind the payload.
    feed(&mut s, b"PING\r\n", T0).unwrap();
    assert_eq!(s.transmit(), b"PUB big 5\r\n");
    assert!(matches!(
        s.publish_header_only("big", None, None, 5),
        Err(Error::BufferFull(_))
    ));
    s.transmitted(11);
    assert_eq!(take(&mut s), "PONG\r\n");
}
