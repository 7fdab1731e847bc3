//! Byte-vector tests of the session: server bytes in, client bytes and
//! events out.

use std::vec::Vec;

use super::testkit::*;
use super::*;
use crate::amqp::ids::ReplyCode;
use crate::amqp::methods::{Basic, Channel, Connection};
use crate::amqp::{FieldTable, Properties};
use crate::time::Instant;

fn take(s: &mut TestSession) -> Vec<u8> {
    let out = s.transmit().to_vec();
    s.transmitted(out.len());
    out
}

#[test]
fn handshake_writes_start_ok_tune_ok_and_open_and_reports_connected() {
    let mut s = TestSession::new(
        Options::new("user", "pw", "vh").unwrap(),
        std::vec![0u8; 4096],
    );
    assert_eq!(s.state(), State::Idle);
    s.start(t(0));
    assert_eq!(take(&mut s), b"AMQP\x00\x00\x09\x01");
    feed(&mut s, &start(), t(1));
    let start_ok = take(&mut s);
    assert_eq!(&start_ok[..3], &[1, 0, 0]);
    assert_eq!(&start_ok[7..11], &[0, 10, 0, 11]);
    let text = std::string::String::from_utf8_lossy(&start_ok);
    assert!(
        text.contains("\x05PLAIN\x00\x00\x00\x08\x00user\x00pw\x05en_US"),
        "{text:?}"
    );
    assert!(text.contains("consumer_cancel_notifyt\x01"));
    assert!(text.contains("authentication_failure_closet\x01"));
    assert_eq!(s.state(), State::AwaitingTune);
    feed(&mut s, &tune(131_072, 60), t(2));
    // tune-ok: channel_max min(8 slots, 2047), frame_max 131072, heartbeat 60;
    // then connection.open "vh".
    let expected: Vec<u8> = [
        &[
            1, 0, 0, 0, 0, 0, 12, 0, 10, 0, 31, 0, 8, 0, 2, 0, 0, 0, 60, 0xCE,
        ][..],
        &[1, 0, 0, 0, 0, 0, 9, 0, 10, 0, 40, 2, b'v', b'h', 0, 0, 0xCE][..],
    ]
    .concat();
    assert_eq!(take(&mut s), expected);
    let (_, events) = feed(&mut s, &method(0, Connection::OpenOk), t(3));
    assert_eq!(
        events,
        [Event::Connected {
            reconnect: false,
            tune: Tune {
                channel_max: 8,
                frame_max: 131_072,
                heartbeat: 60
            }
        }]
    );
    assert_eq!(s.state(), State::Open);
}

#[test]
fn wrong_password_is_access_refused_and_close_ok_is_written() {
    let mut s = TestSession::new(Options::default(), std::vec![0u8; 4096]);
    s.start(t(0));
    feed(&mut s, &start(), t(1));
    take(&mut s);
    let refuse = method(
        0,
        Connection::Close {
            reply_code: 403,
            reply_text: "ACCESS_REFUSED - Login was refused".into(),
            class_id: 0,
            method_id: 0,
        },
    );
    let err = s.handle_input(&refuse, t(2)).unwrap_err();
    match &err {
        Error::AccessRefused(r) => {
            assert_eq!(r.code, ReplyCode::AccessRefused);
            assert!(r.text.starts_with("ACCESS_REFUSED"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_fatal());
    assert_eq!(s.state(), State::Closed);
    assert_eq!(take(&mut s), [1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE]);
}

#[test]
fn a_mechanism_the_server_does_not_offer_is_a_typed_error() {
    let mut s = TestSession::new(Options::external("/").unwrap(), std::vec![0u8; 4096]);
    s.start(t(0));
    let err = s.handle_input(&start(), t(1)).unwrap_err();
    assert_eq!(
        err,
        Error::MechanismNotOffered {
            wanted: Mechanism::External
        }
    );
}

#[test]
fn publish_writes_method_header_and_body_frames_exactly() {
    let mut s = open_session(131_072, 0);
    let tag = s
        .publish(
            1,
            "ex",
            "rk",
            PublishFlags::default(),
            &Properties::default().content_type("t"),
            b"hi",
        )
        .unwrap();
    assert_eq!(tag, None);
    let expected: Vec<u8> = [
        // basic.publish: ticket 0, "ex", "rk", bits 0
        &[
            1, 0, 1, 0, 0, 0, 13, 0, 60, 0, 40, 0, 0, 2, b'e', b'x', 2, b'r', b'k', 0, 0xCE,
        ][..],
        // header: class 60, weight 0, size 2, flags 0x8000, "t"
        &[
            2, 0, 1, 0, 0, 0, 16, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x80, 0, 1, b't', 0xCE,
        ][..],
        &[3, 0, 1, 0, 0, 0, 2, b'h', b'i', 0xCE][..],
    ]
    .concat();
    assert_eq!(take(&mut s), expected);
    assert_eq!(
        s.publish_size("ex", "rk", &Properties::default().content_type("t"), 2)
            .unwrap(),
        expected.len()
    );
}

#[test]
fn a_body_is_split_at_frame_max() {
    let mut s = open_session(4096, 0);
    let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    s.publish(
        1,
        "",
        "q",
        PublishFlags::default(),
        &Properties::default(),
        &body,
    )
    .unwrap();
    let out = take(&mut s);
    let mut at = 0;
    let mut sizes = Vec::new();
    let mut got = Vec::new();
    while at < out.len() {
        let (f, used) = crate::amqp::frame::parse(&out[at..], usize::MAX, 4096)
            .unwrap()
            .unwrap();
        if f.kind == crate::amqp::frame::FrameKind::Body {
            sizes.push(f.payload.len());
            got.extend_from_slice(f.payload);
        }
        at += used;
    }
    assert_eq!(sizes, [4088, 4088, 1824]);
    assert_eq!(got, body);
}

#[test]
fn confirms_settle_single_and_multiple_and_report_nacks() {
    let mut s = open_session(131_072, 0);
    s.confirm_select(1).unwrap();
    feed(
        &mut s,
        &method(1, crate::amqp::methods::Confirm::SelectOk),
        t(3),
    );
    let tags: Vec<_> = (0..3)
        .map(|_| {
            s.publish(
                1,
                "",
                "q",
                PublishFlags::default(),
                &Properties::default(),
                b"x",
            )
            .unwrap()
        })
        .collect();
    assert_eq!(tags, [Some(1), Some(2), Some(3)]);
    let (_, ev) = feed(
        &mut s,
        &method(
            1,
            Basic::Ack {
                delivery_tag: 2,
                multiple: true,
            },
        ),
        t(4),
    );
    assert_eq!(
        ev,
        [Event::Confirm {
            channel: 1,
            delivery_tag: 2,
            multiple: true,
            ack: true,
            settled: 2
        }]
    );
    assert_eq!(s.channel(1).unwrap().unconfirmed(), 1);
    let nack = method(
        1,
        Basic::Nack {
            delivery_tag: 3,
            multiple: false,
            requeue: false,
        },
    );
    let (_, ev) = feed(&mut s, &nack, t(5));
    assert_eq!(
        ev,
        [Event::Confirm {
            channel: 1,
            delivery_tag: 3,
            multiple: false,
            ack: false,
            settled: 1
        }]
    );
    assert_eq!(s.channel(1).unwrap().unconfirmed(), 0);
}

#[test]
fn the_confirm_window_bounds_unconfirmed_publishes() {
    let mut s = open_session(131_072, 0);
    s.confirm_select(1).unwrap();
    for _ in 0..128 {
        s.publish(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            b"",
        )
        .unwrap();
        take(&mut s);
    }
    let err = s
        .publish(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            b"",
        )
        .unwrap_err();
    assert_eq!(err, Error::ConfirmWindowFull { outstanding: 128 });
    assert!(!err.is_fatal());
    assert!(s.transmit().is_empty());
    feed(
        &mut s,
        &method(
            1,
            Basic::Ack {
                delivery_tag: 1,
                multiple: false,
            },
        ),
        t(3),
    );
    assert_eq!(
        s.publish(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            b""
        )
        .unwrap(),
        Some(129)
    );
}

#[test]
fn a_multi_frame_delivery_is_handed_out_whole_and_borrowed() {
    let mut s = open_session(4096, 0);
    let body: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    let bytes = content(
        1,
        Basic::Deliver {
            consumer_tag: "c".into(),
            delivery_tag: 7,
            redelivered: true,
            exchange: "ex".into(),
            routing_key: "a.b".into(),
        },
        Properties::default().correlation_id("42"),
        &body,
        4096,
    );
    // Everything but the last byte: nothing consumed yet.
    assert_eq!(
        s.handle_input(&bytes[..bytes.len() - 1], t(3)).unwrap(),
        (0, None)
    );
    let (used, d) = s.handle_input(&bytes, t(3)).unwrap();
    assert_eq!(used, bytes.len());
    let d = d.unwrap();
    assert_eq!(d.delivery_tag(), Some(7));
    assert!(matches!(
        d.kind,
        DeliveryKind::Deliver {
            redelivered: true,
            ..
        }
    ));
    assert_eq!(d.routing_key, "a.b");
    assert_eq!(d.properties.correlation_id.unwrap(), "42");
    assert_eq!(d.body.len(), 9000);
    assert_eq!(d.body.as_slice(), None);
    assert_eq!(
        d.body.chunks().map(<[u8]>::len).collect::<Vec<_>>(),
        [4088, 4088, 824]
    );
    let mut copy = std::vec![0u8; 9000];
    assert_eq!(d.body.copy_to(&mut copy), 9000);
    assert_eq!(copy, body);
}

#[test]
fn frames_and_messages_larger_than_the_receive_buffer_fail_before_their_payload() {
    let opts = Options {
        rx_capacity: 1024,
        ..Options::default()
    };
    let mut s = TestSession::new(opts, std::vec![0u8; 4096]);
    s.start(t(0));
    // Only the 7-byte header of a 5000-byte frame has arrived.
    let err = s
        .handle_input(&[1, 0, 0, 0, 0, 0x13, 0x88], t(1))
        .unwrap_err();
    assert_eq!(
        err,
        Error::FrameTooLarge {
            needed: 5008,
            capacity: 1024
        }
    );

    let mut s = open_session(131_072, 0);
    s.options_mut().rx_capacity = 1024;
    let bytes = deliver(1, 1, &[7u8; 2000]);
    // Method and header only: the body size alone says it cannot fit.
    let header_end = bytes.len() - (2000 + 8);
    let err = s.handle_input(&bytes[..header_end], t(3)).unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { capacity: 1024, needed } if needed > 2000),
        "{err:?}"
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn a_channel_error_closes_only_that_channel() {
    let mut s = open_session(131_072, 0);
    let ch2 = s.open_channel().unwrap();
    feed(&mut s, &method(ch2, Channel::OpenOk), t(3));
    take(&mut s);
    let close = method(
        1,
        Channel::Close {
            reply_code: 404,
            reply_text: "NOT_FOUND - no queue 'nope' in vhost '/'".into(),
            class_id: 50,
            method_id: 10,
        },
    );
    let (_, ev) = feed(&mut s, &close, t(4));
    match &ev[..] {
        [Event::ChannelClosed {
            channel: 1,
            reason: Some(r),
            unconfirmed: 0,
        }] => {
            assert_eq!(r.code, ReplyCode::NotFound);
            assert!(!r.code.is_connection_level());
            assert_eq!((r.class_id, r.method_id), (50, 10));
        }
        other => panic!("{other:?}"),
    }
    // close-ok on channel 1.
    assert_eq!(take(&mut s), [1, 0, 1, 0, 0, 0, 4, 0, 20, 0, 41, 0xCE]);
    assert_eq!(s.state(), State::Open);
    assert_eq!(
        s.publish(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            b""
        ),
        Err(Error::ChannelNotOpen(1))
    );
    s.publish(
        ch2,
        "",
        "q",
        PublishFlags::default(),
        &Properties::default(),
        b"",
    )
    .unwrap();
}

#[test]
fn a_connection_error_from_the_server_is_fatal_and_says_so() {
    let mut s = open_session(131_072, 0);
    let close = method(
        0,
        Connection::Close {
            reply_code: 320,
            reply_text: "CONNECTION_FORCED - broker forced connection closure".into(),
            class_id: 0,
            method_id: 0,
        },
    );
    let err = s.handle_input(&close, t(3)).unwrap_err();
    let Error::ServerClosed(r) = &err else {
        panic!("{err:?}")
    };
    assert!(r.code.is_connection_level());
    assert!(err.is_fatal());
    assert_eq!(take(&mut s), [1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE]);
}

#[test]
fn garbage_is_a_frame_error_and_the_connection_is_closed_with_501() {
    let mut s = open_session(131_072, 0);
    let err = s
        .handle_input(b"HTTP/1.1 400 Bad Request\r\n", t(3))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Frame(crate::amqp::frame::FrameError::UnknownType(b'H'))
    );
    let out = take(&mut s);
    assert_eq!(&out[7..13], &[0, 10, 0, 50, 0x01, 0xF5]);
    // A bad frame-end octet too.
    let mut s = open_session(131_072, 0);
    let err = s
        .handle_input(&[8, 0, 0, 0, 0, 0, 0, 0xAB], t(3))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Frame(crate::amqp::frame::FrameError::BadFrameEnd { found: 0xAB })
    );
}

#[test]
fn heartbeats_are_sent_only_when_idle_and_silence_is_detected() {
    let mut s = open_session(131_072, 10);
    // Open-ok at t=1: send tick at 1 + 5 s, receive deadline 1 + 20 s.
    assert_eq!(s.poll_timeout(), Some(t(5_001)));
    s.handle_timeout(t(5_001)).unwrap();
    // open_session wrote channel.open after the open-ok: not idle yet.
    assert!(s.transmit().is_empty());
    s.handle_timeout(t(10_001)).unwrap();
    assert_eq!(take(&mut s), [8, 0, 0, 0, 0, 0, 0, 0xCE]);
    // A heartbeat from the server moves the receive deadline.
    feed(&mut s, &[8, 0, 0, 0, 0, 0, 0, 0xCE], t(12_000));
    s.handle_timeout(t(25_000)).unwrap();
    take(&mut s);
    let err = s.handle_timeout(t(32_000)).unwrap_err();
    assert_eq!(err, Error::HeartbeatTimeout { silent_ms: 20_000 });
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_handshake_that_stalls_times_out() {
    let mut s = TestSession::new(Options::default(), std::vec![0u8; 4096]);
    s.start(t(0));
    feed(&mut s, &start(), t(1));
    assert_eq!(s.poll_timeout(), Some(t(10_000)));
    s.handle_timeout(t(9_999)).unwrap();
    assert_eq!(
        s.handle_timeout(t(10_000)).unwrap_err(),
        Error::HandshakeTimeout {
            state: State::AwaitingTune
        }
    );
}

#[test]
fn blocked_refuses_publishes_until_unblocked_and_has_a_deadline() {
    let mut s = open_session(131_072, 0);
    let (_, ev) = feed(
        &mut s,
        &method(
            0,
            Connection::Blocked {
                reason: "low on memory".into(),
            },
        ),
        t(100),
    );
    assert_eq!(
        ev,
        [Event::Blocked {
            reason: "low on memory".try_into().unwrap()
        }]
    );
    let p = Properties::default();
    assert_eq!(
        s.publish(1, "", "q", PublishFlags::default(), &p, b"x"),
        Err(Error::Blocked)
    );
    assert!(s.transmit().is_empty());
    let (_, ev) = feed(&mut s, &method(0, Connection::Unblocked), t(200));
    assert_eq!(ev, [Event::Unblocked]);
    s.publish(1, "", "q", PublishFlags::default(), &p, b"x")
        .unwrap();
    feed(
        &mut s,
        &method(
            0,
            Connection::Blocked {
                reason: "disk".into(),
            },
        ),
        t(1_000),
    );
    assert_eq!(s.poll_timeout(), Some(t(61_000)));
    assert_eq!(
        s.handle_timeout(t(61_000)).unwrap_err(),
        Error::BlockedTimeout { blocked_ms: 60_000 }
    );
}

#[test]
fn a_server_cancel_is_surfaced_and_answered_when_asked() {
    let mut s = open_session(131_072, 0);
    let (_, ev) = feed(
        &mut s,
        &method(
            1,
            Basic::Cancel {
                consumer_tag: "c1".into(),
                nowait: false,
            },
        ),
        t(3),
    );
    assert_eq!(
        ev,
        [Event::ConsumerCancelled {
            channel: 1,
            consumer_tag: "c1".try_into().unwrap()
        }]
    );
    assert_eq!(
        take(&mut s),
        [1, 0, 1, 0, 0, 0, 7, 0, 60, 0, 31, 2, b'c', b'1', 0xCE]
    );
}

#[test]
fn a_mandatory_publish_comes_back_as_a_return() {
    let mut s = open_session(131_072, 0);
    let ret = content(
        1,
        Basic::Return {
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
            exchange: "amq.direct".into(),
            routing_key: "nowhere".into(),
        },
        Properties::default(),
        b"lost?",
        131_072,
    );
    let (log, _) = feed(&mut s, &ret, t(3));
    assert_eq!(
        log,
        ["ch1 return 312 amq.direct/nowhere None len=5 sum=513"]
    );
}

#[test]
fn replies_come_out_as_events_in_order() {
    let mut s = open_session(131_072, 0);
    let mut input = method(
        1,
        crate::amqp::methods::Queue::DeclareOk {
            queue: "amq.gen-x".into(),
            message_count: 3,
            consumer_count: 1,
        },
    );
    input.extend(method(
        1,
        Basic::ConsumeOk {
            consumer_tag: "amq.ctag-1".into(),
        },
    ));
    let (_, ev) = feed(&mut s, &input, t(3));
    assert_eq!(
        ev,
        [
            Event::Reply {
                channel: 1,
                reply: Reply::QueueDeclared {
                    queue: "amq.gen-x".try_into().unwrap(),
                    message_count: 3,
                    consumer_count: 1
                }
            },
            Event::Reply {
                channel: 1,
                reply: Reply::ConsumeOk {
                    consumer_tag: "amq.ctag-1".try_into().unwrap()
                }
            },
        ]
    );
}

#[test]
fn a_full_event_queue_stops_input_until_polled() {
    let mut s = open_session(131_072, 0);
    let one = method(1, Basic::QosOk);
    let input: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * (EVENT_QUEUE + 1))
        .collect();
    let mut at = 0;
    for _ in 0..EVENT_QUEUE {
        at += s.handle_input(&input[at..], t(3)).unwrap().0;
    }
    assert_eq!(s.handle_input(&input[at..], t(3)).unwrap(), (0, None));
    assert!(s.poll_event().is_some());
    assert_eq!(s.handle_input(&input[at..], t(3)).unwrap().0, one.len());
}

#[test]
fn frames_of_another_channel_inside_a_message_are_unexpected() {
    let mut s = open_session(131_072, 0);
    let mut bytes = deliver(1, 1, b"abc");
    let body_frame = bytes.split_off(bytes.len() - 11);
    bytes.extend(method(2, Basic::QosOk));
    bytes.extend(body_frame);
    let err = s.handle_input(&bytes, t(3)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unexpected {
                code: ReplyCode::UnexpectedFrame,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn methods_for_unknown_channels_are_a_channel_error() {
    let mut s = open_session(131_072, 0);
    let err = s.handle_input(&method(5, Basic::QosOk), t(3)).unwrap_err();
    assert!(matches!(
        err,
        Error::Unexpected {
            channel: 5,
            code: ReplyCode::ChannelError,
            ..
        }
    ));
}

#[test]
fn restart_reports_what_was_unconfirmed() {
    let mut s = open_session(131_072, 0);
    s.confirm_select(1).unwrap();
    for _ in 0..5 {
        s.publish(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            b"x",
        )
        .unwrap();
    }
    let report = s.start(Instant::from_millis(10));
    assert_eq!(report.unconfirmed, 5);
    assert_eq!(report.channels, 1);
    assert!(report.unsent_bytes > 0);
    assert_eq!(s.transmit(), b"AMQP\x00\x00\x09\x01");
    feed(&mut s, &greeting(131_072, 0), t(11));
    assert!(s.channel(1).is_none());
}

#[test]
fn close_waits_for_close_ok() {
    let mut s = open_session(131_072, 0);
    s.close(t(3)).unwrap();
    assert_eq!(s.state(), State::Closing);
    let (_, ev) = feed(&mut s, &method(0, Connection::CloseOk), t(4));
    assert_eq!(ev, [Event::Closed]);
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn call_refuses_methods_with_their_own_function() {
    let mut s = open_session(131_072, 0);
    assert_eq!(
        s.call(1, Channel::Open),
        Err(Error::NotCallable {
            class_id: 20,
            method_id: 10
        })
    );
    s.call(
        1,
        crate::amqp::methods::Queue::Declare {
            queue: "".into(),
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: true,
            nowait: false,
            arguments: FieldTable::EMPTY,
        },
    )
    .unwrap();
    // queue.declare: ticket, "", bits exclusive|auto_delete = 0b01100, empty table
    assert_eq!(
        take(&mut s),
        [1, 0, 1, 0, 0, 0, 12, 0, 50, 0, 10, 0, 0, 0, 0x0C, 0, 0, 0, 0, 0xCE]
    );
}

#[test]
fn connection_start_captured_from_rabbitmq_decodes_and_is_answered() {
    // The first bytes RabbitMQ 3.10.8 (Debian 12) sent after our protocol header.
    let captured = include_bytes!("fixtures/rabbitmq-3.10.8-connection-start.bin");
    let (f, used) = crate::amqp::frame::parse(captured, usize::MAX, 0)
        .unwrap()
        .unwrap();
    assert_eq!(used, captured.len());
    let Ok(crate::amqp::Method::Connection(Connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties,
        mechanisms,
        locales,
    })) = crate::amqp::Method::read(f.payload)
    else {
        panic!("not connection.start")
    };
    assert_eq!(mechanisms, b"AMQPLAIN PLAIN");
    assert_eq!(locales, b"en_US");
    assert_eq!(
        server_properties.get("product").and_then(|v| v.as_str()),
        Some("RabbitMQ")
    );
    let Some(crate::amqp::FieldValue::Table(caps)) = server_properties.get("capabilities") else {
        panic!("no capabilities")
    };
    assert_eq!(
        caps.get("consumer_cancel_notify"),
        Some(crate::amqp::FieldValue::Bool(true))
    );
    let mut s = TestSession::new(Options::default(), std::vec![0u8; 4096]);
    s.start(t(0));
    take(&mut s);
    feed(&mut s, captured, t(1));
    assert_eq!(s.state(), State::AwaitingTune);
    assert_eq!(&take(&mut s)[7..11], &[0, 10, 0, 11]);
}
