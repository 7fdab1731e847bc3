use super::*;

#[test]
fn publish_checks_limits_before_writing() {
    let mut s = TestSession::new(options(), [0; 1024]);
    feed(
        &mut s,
        b"INFO {\"max_payload\":8,\"headers\":false}\r\n",
        T0,
    )
    .unwrap();
    take(&mut s);
    feed(&mut s, b"PONG\r\n", T0).unwrap();
    assert_eq!(
        s.publish("a", None, None, b"123456789"),
        Err(Error::PayloadTooLarge {
            size: 9,
            max_payload: 8
        })
    );
    assert_eq!(
        s.publish("a", None, Some(b"NATS/1.0\r\n\r\n"), b""),
        Err(Error::HeadersNotSupported)
    );
    assert_eq!(
        s.publish("a.*", None, None, b""),
        Err(Error::InvalidSubject(SubjectError::WildcardInPublish))
    );
    assert_eq!(s.transmit(), b"");
    s.publish("a", None, None, b"12345678").unwrap();
    assert_eq!(take(&mut s), "PUB a 8\r\n12345678\r\n");
}

#[test]
fn full_transmit_buffer_is_typed_and_writes_nothing() {
    let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
    feed_small(&mut s, INFO);
    let n = s.transmit().len();
    s.transmitted(n);
    feed_small(&mut s, b"PONG\r\n");
    s.publish("a", None, None, &[b'x'; 200]).unwrap();
    let before = s.transmit().len();
    assert_eq!(
        s.publish("a", None, None, &[b'y'; 100]),
        Err(Error::BufferFull(CapacityError {
            needed: 213 + 113,
            capacity: 256
        }))
    );
    let long = "b".repeat(50);
    assert_eq!(
        s.subscribe(&long, None),
        Err(Error::BufferFull(CapacityError {
            needed: 213 + 58,
            capacity: 256
        }))
    );
    assert_eq!(s.subscriptions().count(), 0);
    assert_eq!(s.transmit().len(), before);
    assert!(
        format!("{}", s.publish("a", None, None, &[0; 300]).unwrap_err())
            .contains("bigger transmit buffer")
    );
}

#[test]
fn held_publishes_leave_room_for_the_handshake() {
    let mut s: Session<[u8; 256], 4, 2> = Session::new(options(), [0; 256]);
    let mut queued = 0;
    while s.publish("a", None, None, b"0123456789").is_ok() {
        queued += 1;
    }
    assert!(queued > 0);
    let (used, _) = s.handle_input(INFO, T0).unwrap();
    assert_eq!(used, INFO.len());
    assert!(s.transmit().starts_with(b"CONNECT"));
}

#[test]
fn publish_size_is_what_publish_queues() {
    let mut s = connected();
    let headers = b"NATS/1.0\r\n\r\n";
    for (subject, reply, h, payload) in [
        ("a.b", None, None, &b"hello"[..]),
        ("a", Some("r"), None, &b""[..]),
        ("a", None, Some(&headers[..]), &b"xy"[..]),
    ] {
        let size = s.publish_size(subject, reply, h, payload.len()).unwrap();
        s.publish(subject, reply, h, payload).unwrap();
        assert_eq!(take(&mut s).len(), size);
    }
    assert!(s.publish_size("a b", None, None, 1).is_err());
}

#[test]
fn checked_block_publishes_the_same_bytes_and_keeps_the_other_checks() {
    let block = b"NATS/1.0\r\nUnit: C\r\n\r\n";
    let mut w = HeaderWriter::new([0u8; 64]).unwrap();
    w.insert("Unit", "C").unwrap();
    let mut s = connected();
    s.publish("a", Some("r"), Some(block), b"21").unwrap();
    let raw = take(&mut s);
    s.publish_checked("a", Some("r"), w.checked(), b"21")
        .unwrap();
    assert_eq!(take(&mut s), raw);
    assert_eq!(raw, "HPUB a r 21 23\r\nNATS/1.0\r\nUnit: C\r\n\r\n21\r\n");
    // A raw block is still checked every time; the subject of a checked
    // one too.
    assert!(matches!(
        s.publish("a", None, Some(b"NATS/1.0\r\nBad Name: x\r\n\r\n"), b""),
        Err(Error::InvalidHeader(crate::nats::HeaderError::InvalidName))
    ));
    assert_eq!(
        s.publish_checked("a.*", None, w.checked(), b""),
        Err(Error::InvalidSubject(SubjectError::WildcardInPublish))
    );
    assert_eq!(s.transmit(), b"");
}
