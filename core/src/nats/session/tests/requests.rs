use super::*;

#[test]
fn request_reply_no_responders_timeout_and_late_reply() {
    let mut s = connected();
    let timeout = Duration::from_secs(5);
    let r1 = s.request("svc.echo", None, b"hi", T0, timeout).unwrap();
    assert_eq!(
        take(&mut s),
        "SUB _INBOX.t.* 1\r\nPUB svc.echo _INBOX.t.1 2\r\nhi\r\n"
    );
    let r2 = s.request("svc.none", None, b"", T0, timeout).unwrap();
    assert_eq!(take(&mut s), "PUB svc.none _INBOX.t.2 0\r\n\r\n");
    assert_eq!(
        s.request("svc.x", None, b"", T0, timeout),
        Err(Error::RequestTableFull { capacity: 2 })
    );
    let (_, event) = s
        .handle_input(b"MSG _INBOX.t.1 1 5\r\nHI!!!\r\n", T0)
        .unwrap();
    let Some(Received::Reply { request, message }) = event else {
        panic!("{event:?}")
    };
    assert_eq!((request, message.payload), (r1, &b"HI!!!"[..]));
    let events = feed(
        &mut s,
        b"HMSG _INBOX.t.2 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
        T0,
    )
    .unwrap();
    assert_eq!(
        events,
        [format!("{:?}", Event::NoResponders { request: r2 })]
    );

    let r3 = s.request("svc.slow", None, b"", T0, timeout).unwrap();
    take(&mut s);
    assert_eq!(s.poll_timeout(), Some(T0 + timeout));
    assert_eq!(
        timeout_events(&mut s, T0 + Duration::from_millis(4_999)).unwrap(),
        StdVec::<StdString>::new()
    );
    assert_eq!(
        timeout_events(&mut s, T0 + timeout).unwrap(),
        [format!("{:?}", Event::RequestTimedOut { request: r3 })]
    );
    assert_eq!(
        timeout_events(&mut s, T0 + timeout).unwrap(),
        StdVec::<StdString>::new()
    );
    assert_eq!(
        feed(&mut s, b"MSG _INBOX.t.3 1 0\r\n\r\n", T0)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.stats().late_replies, 1);
    assert_eq!(s.pending_requests(), 0);
}

#[test]
fn request_needs_an_inbox_prefix() {
    let mut o = options();
    o.inbox_prefix.clear();
    let mut s = TestSession::new(o, [0; 1024]);
    assert_eq!(
        s.request("a", None, b"", T0, Duration::from_secs(1)),
        Err(Error::InboxNotConfigured)
    );
}
