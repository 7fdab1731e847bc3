//! The publish-only shape of the drivers (issue 14: firmware size): no
//! subscription slots, plain publishes that never reach the header parser,
//! header blocks checked once.

use super::*;

/// No subscription or request slots: what the smallest firmware uses.
type Bare = NatsClient<Script, SimClock, [u8; 256], [u8; 256], 0, 0, nats::EssentialInfo>;

fn bare_connected() -> (Bare, Script) {
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let mut client: Bare = NatsClient::new(
        script.clone(),
        clock,
        ConnectOptions::default(),
        DriverOptions::default(),
        [0; 256],
        [0; 256],
    );
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    assert!(script.take_written().starts_with("CONNECT {"));
    (client, script)
}

#[test]
fn without_slots_it_connects_publishes_and_confirms() {
    let (mut client, script) = bare_connected();
    client.publish("t.a", b"21.5").unwrap();
    client.publish("t.b", b"").unwrap();
    assert_eq!(
        script.take_written(),
        "PUB t.a 4\r\n21.5\r\nPUB t.b 0\r\n\r\n"
    );
    script.push(b"PING\r\n+OK\r\nPONG\r\n");
    client.flush(Duration::from_secs(1), |_| {}).unwrap();
    assert_eq!(script.take_written(), "PING\r\nPONG\r\n");
    // -ERR still classified without slots.
    script.push(b"-ERR 'Permissions Violation for Publish to \"t.c\"'\r\n");
    match client.next_event().unwrap() {
        Some(Event::ServerError { kind, .. }) => {
            assert_eq!(kind, nats::error::ServerErrorKind::PermissionsViolation)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        client.subscribe("cmd").is_err(),
        "no slot to subscribe with"
    );
}

#[test]
fn without_slots_a_message_is_a_protocol_error_and_the_link_fails() {
    let (mut client, script) = bare_connected();
    script.push(b"MSG t.a 1 2\r\nhi\r\n");
    let err = client.next_event().unwrap_err();
    match &err {
        Error::Nats(nats::Error::Protocol(p)) => {
            assert!(p.expected.contains("SUBS = 0"), "{}", p.expected);
            assert_eq!(&p.seen[..], b"MSG t.a 1 2");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_fatal());
    assert!(matches!(
        client.publish("t", b"1"),
        Err(Error::Disconnected)
    ));
    assert_eq!(script.take_written(), "");
}

#[test]
fn a_bad_header_block_is_refused_before_anything_is_queued() {
    let (mut client, script, _clock) = connected();
    let err = client
        .publish_with("t", None, Some(b"NATS/1.0\r\nBad Name: v\r\n\r\n"), b"x")
        .unwrap_err();
    assert!(
        matches!(err, Error::Nats(nats::Error::InvalidHeader(_))),
        "{err:?}"
    );
    assert!(!err.is_fatal());
    assert_eq!(client.session().queued_bytes(), 0);
    assert_eq!(script.take_written(), "");
    client.publish("t", b"1").unwrap();
    assert_eq!(script.take_written(), "PUB t 1\r\n1\r\n");
}

#[test]
fn a_checked_block_goes_out_as_publish_with_sends_it() {
    let (mut client, script, _clock) = connected();
    let mut headers = nats::HeaderWriter::new([0u8; 64]).unwrap();
    headers.insert("Unit", "celsius").unwrap();
    client
        .publish_with("t", Some("r"), Some(headers.as_bytes()), b"21.5")
        .unwrap();
    let with = script.take_written();
    assert_eq!(
        with,
        "HPUB t r 27 31\r\nNATS/1.0\r\nUnit: celsius\r\n\r\n21.5\r\n"
    );
    client
        .publish_checked("t", Some("r"), Some(headers.checked()), b"21.5")
        .unwrap();
    assert_eq!(script.take_written(), with);
    // Too large for the transmit buffer: control line and block first,
    // then the caller's payload, one block on the wire.
    let payload = [b'z'; 300];
    client
        .publish_checked("big", None, Some(headers.checked()), &payload)
        .unwrap();
    let expected = format!(
        "HPUB big 27 327\r\nNATS/1.0\r\nUnit: celsius\r\n\r\n{}\r\n",
        "z".repeat(300)
    );
    assert_eq!(script.take_written(), expected);
}
