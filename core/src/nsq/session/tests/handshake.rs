//! IDENTIFY, TLS/compression upgrades, AUTH, the heartbeat timer.

use super::*;
use crate::nsq::error::ErrorCode;

#[test]
fn writes_magic_and_identify_first() {
    let mut s = new_session();
    let out = sent(&mut s);
    let json = br#"{"client_id":"c","feature_negotiation":true,"heartbeat_interval":1000,"tls_v1":false,"snappy":false,"deflate":false}"#;
    let mut expected = b"  V2IDENTIFY\n".to_vec();
    expected.extend_from_slice(&(json.len() as u32).to_be_bytes());
    expected.extend_from_slice(json);
    assert_eq!(out, expected);
}

#[test]
fn plain_handshake_then_consume() {
    let mut s = new_session();
    sent(&mut s);
    assert!(!s.is_ready());
    let ev = feed(&mut s, &response(NSQD_IDENTIFY), 1).unwrap();
    assert_eq!(ev[0], "Identified");
    assert!(s.is_ready());
    assert_eq!(s.negotiated().unwrap().max_rdy_count, 2500);
    s.subscribe("t", "c").unwrap();
    assert_eq!(feed(&mut s, &response(b"OK"), 2).unwrap(), ["Subscribed"]);
    s.ready(10).unwrap();
    assert_eq!(sent(&mut s), b"SUB t c\nRDY 10\n");
    assert_eq!(
        s.ready(2501),
        Err(SessionError::RdyTooHigh {
            count: 2501,
            max: 2500
        })
    );
    assert!(s.transmit().is_empty());

    let bytes = message(b"0123456789abcdef", 1, b"body");
    let (n, m) = s.handle_input(&bytes, Instant(3)).unwrap();
    assert_eq!(n, bytes.len());
    let m = m.expect("a message");
    assert_eq!(s.poll_event(), None, "a message makes no owned event");
    assert_eq!(m.body, b"body");
    assert_eq!(m.attempts, 1);
    assert_eq!(m.body.as_ptr(), bytes[34..].as_ptr(), "body is borrowed");
    let id = m.id;
    s.fin(&id).unwrap();
    s.req(&id, 500).unwrap();
    s.touch(&id).unwrap();
    assert_eq!(
        sent(&mut s),
        b"FIN 0123456789abcdef\nREQ 0123456789abcdef 500\nTOUCH 0123456789abcdef\n"
    );
}

#[test]
fn negotiation_off_gets_plain_ok() {
    let mut s: TestSession = started([0u8; 1024], 4096, &Identify::default());
    assert_eq!(
        feed(&mut s, &response(b"OK"), 1).unwrap(),
        ["Identified", "Ready"]
    );
    assert!(s.negotiated().is_none());
}

#[test]
fn tls_snappy_auth_handshake_in_order() {
    let mut s = new_session();
    sent(&mut s);
    let json = br#"{"max_rdy_count":100,"tls_v1":true,"snappy":true,"auth_required":true}"#;
    let mut input = response(json);
    // The OK after TLS may arrive in the same read as nothing else
    // (TLS is a new stream), but test that the session stops exactly
    // at each boundary.
    // Bytes after the IDENTIFY answer are TLS: until the driver polled
    // StartTls, the session parses nothing more.
    input.extend(response(b"OK"));
    let (n, ev) = s.handle_input(&input, Instant(1)).unwrap();
    assert_eq!((n, ev), (input.len() - 10, None));
    assert!(s.negotiated().unwrap().tls_v1);
    assert_eq!(s.state(), State::AwaitingTls);
    assert_eq!(s.handle_input(&input[n..], Instant(1)).unwrap(), (0, None));
    assert_eq!(s.poll_event(), Some(Event::Identified));
    assert_eq!(s.poll_event(), Some(Event::StartTls));
    assert_eq!(s.poll_event(), None);

    // Inside TLS: OK, and the compressed OK decoded into the same buffer.
    input = response(b"OK");
    input.extend(response(b"OK"));
    assert_eq!(
        step(&mut s, &input, 2),
        (10, std::vec!["StartCompression(Snappy)".into()])
    );
    assert_eq!(s.state(), State::AwaitingCompression);
    assert_eq!(
        step(&mut s, &input[10..], 2),
        (10, std::vec!["AuthRequired".into()])
    );
    assert_eq!(s.state(), State::AwaitingAuthSecret);
    assert_eq!(step(&mut s, &[], 2), (0, Vec::new()));
    assert!(matches!(
        s.publish("t", b"x"),
        Err(SessionError::InvalidState { .. })
    ));
    s.auth(b"secret").unwrap();
    assert_eq!(sent(&mut s), b"AUTH\n\x00\x00\x00\x06secret");
    let ev = feed(
        &mut s,
        &response(br#"{"identity":"me","identity_url":"","permission_count":1}"#),
        3,
    )
    .unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0], "Authenticated");
    assert_eq!(s.auth_response().unwrap().identity.as_str(), "me");
    assert_eq!(ev[1], "Ready");
}

#[test]
fn tls_then_snappy_with_captured_nsqd_response() {
    // nsqd 1.3.0 with a certificate answers tls_v1 + snappy; the next
    // OK was observed inside TLS and the one after it snappy-framed.
    let mut s = new_session();
    sent(&mut s);
    let ev = feed(
        &mut s,
        &response(crate::nsq::identify::tests::NSQD_1_3_0_TLS_SNAPPY),
        1,
    )
    .unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], "StartTls");
    assert_eq!(
        feed(&mut s, &response(b"OK"), 2).unwrap(),
        ["StartCompression(Snappy)"]
    );
    assert_eq!(feed(&mut s, &response(b"OK"), 3).unwrap(), ["Ready"]);
    assert!(
        s.transmit().is_empty(),
        "nothing is written during upgrades"
    );
}

#[test]
fn deflate_without_tls() {
    let mut s = new_session();
    let ev = feed(
        &mut s,
        &response(br#"{"deflate":true,"deflate_level":6}"#),
        1,
    )
    .unwrap();
    assert_eq!(ev[1], "StartCompression(Deflate { level: 6 })");
    assert_eq!(feed(&mut s, &response(b"OK"), 1).unwrap(), ["Ready"]);
}

#[test]
fn auth_failure_is_fatal() {
    let mut s = new_session();
    feed(&mut s, &response(br#"{"auth_required":true}"#), 1).unwrap();
    s.auth(b"bad").unwrap();
    let e = feed(&mut s, &error(b"E_AUTH_FAILED AUTH failed"), 2).unwrap_err();
    assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::AuthFailed));
    assert_eq!(s.handle_input(&[], Instant(3)).unwrap_err(), e);
    assert!(s.ready(1).is_err());
}

#[test]
fn state_follows_the_handshake_and_start_again_forgets_the_connection() {
    let mut s: TestSession = Session::new(Options::new(4096), [0u8; 1024]);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.transmit(), b"", "nothing before start");
    assert_eq!(s.poll_timeout(), None);
    assert!(matches!(
        s.publish("t", b"x"),
        Err(SessionError::InvalidState {
            state: "not started",
            ..
        })
    ));
    s.start(&identify(), Instant(0)).unwrap();
    assert_eq!(s.state(), State::AwaitingIdentify);
    let first = sent(&mut s);
    feed(&mut s, &response(NSQD_IDENTIFY), 1).unwrap();
    assert_eq!(s.state(), State::Ready);
    let id = s.publish("t", b"x").unwrap();
    s.close().unwrap();
    assert_eq!(s.state(), State::Closing);
    // A reconnect: the same session, started again on the new transport.
    assert_eq!(s.outstanding_publishes().collect::<Vec<_>>(), [id]);
    s.start(&identify(), Instant(50)).unwrap();
    assert_eq!(s.state(), State::AwaitingIdentify);
    assert_eq!(s.outstanding_publishes().count(), 0);
    assert!(s.negotiated().is_none());
    assert_eq!(
        sent(&mut s),
        first,
        "unsent bytes dropped, magic and IDENTIFY again"
    );
    assert_eq!(s.poll_timeout(), Some(Instant(2050)));
    feed(&mut s, &response(NSQD_IDENTIFY), 60).unwrap();
    assert_eq!(
        s.publish("t", b"y").unwrap(),
        PublishId(id.0 + 1),
        "ids stay unique"
    );
}

#[test]
fn an_identify_that_does_not_fit_leaves_the_session_idle() {
    let mut s: Session<[u8; 16], 4> = Session::new(Options::new(64), [0u8; 16]);
    assert!(matches!(
        s.start(&identify(), Instant(0)),
        Err(SessionError::Command(_))
    ));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.transmit(), b"");
    assert_eq!(
        s.handle_input(&response(b"OK"), Instant(1)).unwrap(),
        (0, None)
    );
}
