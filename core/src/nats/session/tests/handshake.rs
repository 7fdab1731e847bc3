use super::*;

#[test]
fn handshake_writes_connect_then_ping_and_waits_for_pong() {
    let mut s = TestSession::new(options(), [0; 1024]);
    assert_eq!(s.state(), State::AwaitingInfo);
    assert_eq!(s.transmit(), b"");
    assert_eq!(feed(&mut s, INFO, T0).unwrap(), StdVec::<StdString>::new());
    assert_eq!(s.state(), State::AwaitingPong);
    assert_eq!(
        take(&mut s),
        format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"lang\":\"rust\",\
             \"version\":\"{}\",\"protocol\":1,\"echo\":true,\"headers\":true,\"no_responders\":true}}\r\nPING\r\n",
            commands::VERSION
        )
    );
    assert_eq!(s.server_info().unwrap().version, "2.15.1");
    let (used, received) = s.handle_input(b"PONG\r\n", T0).unwrap();
    assert_eq!((used, received), (6, None));
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            reconnect: false,
            max_payload_warning: None
        })
    );
    assert_eq!(s.poll_timeout(), Some(T0 + DEFAULT_PING_INTERVAL));
}

#[test]
fn handshake_with_real_server_bytes_and_credentials() {
    let mut o = options().with_credentials("alice", "s\"cret").unwrap();
    set_str(&mut o.name, "edge-1").unwrap();
    o.verbose = true;
    let mut s = TestSession::new(o, [0; 1024]);
    let mut info = StdVec::from(&b"INFO "[..]);
    info.extend_from_slice(crate::nats::info::tests::REAL_INFO);
    info.extend_from_slice(b" \r\n");
    feed(&mut s, &info, T0).unwrap();
    let connect = take(&mut s);
    assert!(connect.contains("\"verbose\":true"), "{connect}");
    assert!(connect.contains("\"name\":\"edge-1\""), "{connect}");
    assert!(
        connect.contains("\"user\":\"alice\",\"pass\":\"s\\\"cret\""),
        "{connect}"
    );
    // What nats-server 2.15.1 answered to a verbose CONNECT + PING.
    let events = feed(&mut s, b"+OK\r\nPONG\r\n", T0).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], "Ok");
    assert!(events[1].starts_with("Connected"));
    assert_eq!(s.server_info().unwrap().max_payload, 1_048_576);
}

#[test]
fn missing_credentials_still_connect_and_get_a_typed_error() {
    // Bytes exchanged with nats-server 2.15.1 started with --user/--pass.
    let mut s = TestSession::new(options(), [0; 1024]);
    let mut info = StdVec::from(&b"INFO "[..]);
    info.extend_from_slice(crate::nats::info::tests::REAL_AUTH_INFO);
    info.extend_from_slice(b" \r\n");
    feed(&mut s, &info, T0).unwrap();
    assert!(s.server_info().unwrap().auth_required);
    assert!(take(&mut s).starts_with("CONNECT {"));
    assert_eq!(
        s.handle_input(b"-ERR 'Authorization Violation'\r\n", T0),
        Err(Error::AuthorizationViolation)
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn server_ping_is_answered_with_pong() {
    let mut s = connected();
    assert_eq!(feed(&mut s, b"PING\r\nping\r\n", T0).unwrap().len(), 0);
    assert_eq!(take(&mut s), "PONG\r\nPONG\r\n");
}

#[test]
fn first_operation_must_be_info() {
    let mut s = TestSession::new(options(), [0; 1024]);
    let err = s.handle_input(b"MSG a 1 0\r\n\r\n", T0).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref p) if p.expected.contains("INFO")),
        "{err}"
    );
    let mut s = TestSession::new(options(), [0; 1024]);
    assert!(matches!(
        s.handle_input(b"-ERR 'maximum connections exceeded'\r\n", T0),
        Err(Error::Server {
            kind: ServerErrorKind::MaximumConnectionsExceeded,
            ..
        })
    ));
    let mut s = TestSession::new(options(), [0; 1024]);
    let err = s
        .handle_input(b"HTTP/1.1 400 Bad Request\r\n", T0)
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn frame_too_large_is_reported_before_the_payload() {
    let mut o = options();
    o.rx_capacity = 64;
    let mut s = TestSession::new(o, [0; 1024]);
    feed(&mut s, b"INFO {\"max_payload\":32}\r\n", T0).unwrap();
    take(&mut s);
    feed(&mut s, b"PONG\r\n", T0).unwrap();
    s.subscribe("a", None).unwrap();
    let err = s.handle_input(b"MSG a 1 100\r\n", T0).unwrap_err();
    assert_eq!(
        err,
        Error::FrameTooLarge {
            needed: 13 + 100 + 2,
            capacity: 64
        }
    );
    assert!(format!("{err}").contains("receive buffer holds 64"));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn max_payload_larger_than_receive_buffer_is_reported_at_connect() {
    let mut o = options();
    o.rx_capacity = 65536;
    let mut s = TestSession::new(o, [0; 1024]);
    feed(&mut s, INFO, T0).unwrap();
    take(&mut s);
    s.handle_input(b"PONG\r\n", T0).unwrap();
    let event = s.poll_event();
    let warning = MaxPayloadWarning {
        max_payload: 1_048_576,
        rx_capacity: 65536,
    };
    assert_eq!(
        event,
        Some(Event::Connected {
            reconnect: false,
            max_payload_warning: Some(warning)
        })
    );
    assert_eq!(
        s.check_buffers(),
        Err(Error::BufferSmallerThanMaxPayload {
            max_payload: 1_048_576,
            capacity: 65536
        })
    );
}

#[test]
fn transmit_buffer_too_small_for_connect_is_fatal_at_info() {
    let o = options();
    let needed = required_tx_capacity(&o).unwrap();
    let mut small: Session<[u8; 128], 4, 2> = Session::new(o.clone(), [0; 128]);
    let err = small.handle_input(INFO, T0).unwrap_err();
    assert_eq!(
        err,
        Error::TransmitBufferTooSmall {
            needed,
            capacity: 128
        }
    );
    assert!(err.is_fatal());
    assert!(format!("{err}").contains(&format!("at least {needed} bytes")));
    assert_eq!(small.state(), State::Closed);
    assert_eq!(small.transmit(), b"");
    // Exactly enough is enough.
    let mut exact = Session::<StdVec<u8>, 4, 2>::new(o, std::vec![0; needed]);
    let (used, _) = exact.handle_input(INFO, T0).unwrap();
    assert_eq!(used, INFO.len());
    assert_eq!(exact.transmit().len(), needed);
    assert!(exact.transmit().ends_with(b"}\r\nPING\r\n"));
}

#[test]
fn lame_duck_info_is_its_own_event() {
    let mut s = connected();
    let events = feed(
        &mut s,
        b"INFO {\"server_id\":\"S\",\"connect_urls\":[\"10.0.0.2:4222\"]}\r\nINFO {\"server_id\":\"S\",\"ldm\":true}\r\n",
        T0,
    )
    .unwrap();
    assert_eq!(events, ["InfoUpdated", "LameDuckMode"]);
    assert!(s.server_info().unwrap().ldm);
    assert_eq!(s.state(), State::Connected);
}
