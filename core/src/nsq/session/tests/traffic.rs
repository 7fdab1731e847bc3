//! After the handshake: heartbeats, publishes and their answers, errors, CLS.

use super::*;
use crate::nsq::commands::CommandError;
use crate::nsq::error::ErrorCode;
use crate::nsq::frame::{FrameError, MessageId};

#[test]
fn heartbeat_answered_with_nop() {
    let mut s = consumer_session();
    assert_eq!(
        feed(&mut s, &response(b"_heartbeat_"), 500).unwrap(),
        ["Heartbeat"]
    );
    assert_eq!(sent(&mut s), b"NOP\n");
}

#[test]
fn heartbeat_with_full_transmit_buffer_answers_later() {
    let mut s: Session<[u8; 256], 4> = started([0u8; 256], 4096, &identify());
    sent(&mut s);
    let r = response(NSQD_IDENTIFY);
    assert_eq!(drive(&mut s, &r, 1, |_, _| {}).unwrap(), r.len());
    assert_eq!(s.state(), State::Ready);
    while s.publish("t", &[b'x'; 54]).is_ok() {}
    assert_eq!(s.transmit().len(), 256, "transmit buffer full");
    let before = s.transmit().len();
    let hb = response(b"_heartbeat_");
    assert_eq!(s.handle_input(&hb, Instant(2)).unwrap(), (hb.len(), None));
    assert_eq!(s.poll_event(), Some(Event::Heartbeat));
    assert_eq!(s.transmit().len(), before);
    s.transmitted(before);
    assert_eq!(s.transmit(), b"NOP\n");
}

#[test]
fn missed_heartbeats_detected() {
    let mut s = consumer_session(); // last frame at t=2, interval 1000
    assert_eq!(s.poll_timeout(), Some(Instant(2002)));
    s.handle_timeout(Instant(2001)).unwrap();
    feed(&mut s, &response(b"_heartbeat_"), 1500).unwrap();
    assert_eq!(s.poll_timeout(), Some(Instant(3500)));
    s.handle_timeout(Instant(3000)).unwrap();
    let e = s.handle_timeout(Instant(3600)).unwrap_err();
    assert_eq!(
        e,
        SessionError::HeartbeatTimeout {
            silent_ms: 2100,
            window_ms: 2000
        }
    );
    assert!(format!("{e}").contains("reconnect"));
    assert_eq!(s.handle_input(&[], Instant(4000)).unwrap_err(), e);
}

#[test]
fn heartbeat_disabled_has_no_deadline() {
    let id = Identify {
        heartbeat_interval: Some(-1),
        ..Identify::default()
    };
    let s: TestSession = started([0u8; 1024], 64, &id);
    assert_eq!(s.poll_timeout(), None);
    let s: TestSession = started([0u8; 1024], 64, &Identify::default());
    assert_eq!(s.poll_timeout(), Some(Instant(60_000)));
}

#[test]
fn publishes_matched_in_order() {
    let mut s = ready_session();
    let a = s.publish("t", b"one").unwrap();
    let b = s.publish_multi("t", &[b"x", b"y"]).unwrap();
    let c = s.publish_deferred("t", 1000, b"later").unwrap();
    assert_eq!((a, b, c), (PublishId(0), PublishId(1), PublishId(2)));
    assert_eq!(s.outstanding_publishes().collect::<Vec<_>>(), [a, b, c]);
    let mut input = response(b"OK");
    input.extend(response(b"_heartbeat_"));
    input.extend(response(b"OK"));
    let ev = feed(&mut s, &input, 5).unwrap();
    assert_eq!(
        ev,
        [
            "Published { id: PublishId(0) }",
            "Heartbeat",
            "Published { id: PublishId(1) }"
        ]
    );
    assert_eq!(s.outstanding_publishes().collect::<Vec<_>>(), [c]);
    assert_eq!(
        feed(&mut s, &response(b"OK"), 6).unwrap(),
        ["Published { id: PublishId(2) }"]
    );
}

#[test]
fn vectored_publish_headers() {
    let mut s = ready_session();
    s.publish_header("t", 5).unwrap();
    s.publish_deferred_header("t", 9, 2).unwrap();
    s.publish_multi_header("t", &[b"ab"]).unwrap();
    assert_eq!(
        sent(&mut s),
        b"PUB t\n\x00\x00\x00\x05DPUB t 9\n\x00\x00\x00\x02MPUB t\n\x00\x00\x00\x0a\x00\x00\x00\x01"
    );
    assert_eq!(s.outstanding_publishes().count(), 3);
}

#[test]
fn fatal_publish_error_reports_every_outstanding_publish() {
    let mut s = ready_session();
    for _ in 0..3 {
        s.publish("t", b"m").unwrap();
    }
    let mut input = response(b"OK");
    input.extend(error(b"E_PUB_FAILED PUB failed exiting"));
    let mut events = Vec::new();
    let mut at = 0;
    let err = loop {
        match s.handle_input(&input[at..], Instant(1)) {
            Ok((n, m)) => {
                assert!(m.is_none());
                at += n;
                events.extend(core::iter::from_fn(|| s.poll_event()));
            }
            Err(e) => break e,
        }
    };
    assert_eq!(s.state(), State::Failed);
    assert_eq!(events[0], Event::Published { id: PublishId(0) });
    for (i, id) in [1, 2].into_iter().enumerate() {
        let Event::PublishFailed { id: got, error } = &events[i + 1] else {
            panic!("{events:?}")
        };
        assert_eq!(*got, PublishId(id));
        assert_eq!(error.code, ErrorCode::PubFailed);
    }
    assert_eq!(events.len(), 3);
    assert!(matches!(err, SessionError::Server(ref e) if e.code == ErrorCode::PubFailed));
    assert!(s.publish("t", b"m").is_err());
}

#[test]
fn bounded_outstanding_publishes() {
    let mut s = ready_session();
    for _ in 0..4 {
        s.publish("t", b"m").unwrap();
    }
    let before = s.transmit().len();
    assert_eq!(
        s.publish("t", b"m").unwrap_err(),
        SessionError::TooManyOutstanding { capacity: 4 }
    );
    assert_eq!(s.transmit().len(), before, "nothing written");
    feed(&mut s, &response(b"OK"), 1).unwrap();
    s.publish("t", b"m").unwrap();
}

#[test]
fn command_errors_leave_session_usable() {
    let mut s = ready_session();
    assert!(matches!(
        s.publish("bad topic", b"x"),
        Err(SessionError::Command(CommandError::InvalidName(_)))
    ));
    assert_eq!(s.outstanding_publishes().count(), 0);
    s.publish("t", b"x").unwrap();
}

#[test]
fn non_fatal_errors_are_events() {
    let mut s = consumer_session();
    let ev = feed(
        &mut s,
        &error(b"E_FIN_FAILED FIN 0123456789abcdef failed"),
        3,
    )
    .unwrap();
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0].starts_with("Error(ServerError { code: FinFailed"),
        "{ev:?}"
    );
    s.ready(1).unwrap();
}

#[test]
fn fatal_error_without_publishes_is_err() {
    let mut s = consumer_session();
    let e = feed(&mut s, &error(b"E_INVALID cannot FIN in current state"), 3).unwrap_err();
    assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::Invalid));
    assert!(format!("{e}").contains("E_INVALID"));
}

#[test]
fn bad_sub_is_fatal() {
    let mut s = ready_session();
    s.subscribe("t", "c").unwrap();
    let e = feed(
        &mut s,
        &error(b"E_BAD_TOPIC SUB topic name \"t\" is not valid"),
        3,
    )
    .unwrap_err();
    assert!(matches!(e, SessionError::Server(ref se) if se.code == ErrorCode::BadTopic));
}

#[test]
fn close_then_close_wait_keeps_in_flight_finishable() {
    let mut s = consumer_session();
    s.close().unwrap();
    assert_eq!(sent(&mut s), b"CLS\n");
    assert!(matches!(
        s.publish("t", b"x"),
        Err(SessionError::InvalidState { .. })
    ));
    // A message already on the way still arrives, then CLOSE_WAIT.
    let mut input = message(b"aaaaaaaaaaaaaaaa", 1, b"late");
    input.extend(response(b"CLOSE_WAIT"));
    let ev = feed(&mut s, &input, 3).unwrap();
    assert!(ev[0].starts_with("Message("), "{ev:?}");
    assert_eq!(ev[1], "Closed");
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    s.fin(&MessageId(*b"aaaaaaaaaaaaaaaa")).unwrap();
    assert_eq!(sent(&mut s), b"FIN aaaaaaaaaaaaaaaa\n");
}

#[test]
fn unexpected_frames_are_errors() {
    let mut s = ready_session();
    let e = feed(&mut s, &message(b"aaaaaaaaaaaaaaaa", 1, b"x"), 2).unwrap_err();
    assert!(matches!(
        e,
        SessionError::UnexpectedFrame {
            got: UnexpectedKind::Message,
            ..
        }
    ));
    let mut s = ready_session();
    let e = feed(&mut s, &response(b"OK"), 2).unwrap_err();
    assert!(matches!(
        e,
        SessionError::UnexpectedFrame {
            got: UnexpectedKind::Response,
            ..
        }
    ));
    let mut s = new_session();
    assert!(matches!(
        feed(&mut s, &response(b"not json"), 1).unwrap_err(),
        SessionError::Response(_)
    ));
}

#[test]
fn oversized_frame_is_typed() {
    let mut s: TestSession = started([0u8; 1024], 64, &identify());
    let e = feed(&mut s, &100i32.to_be_bytes(), 1).unwrap_err();
    assert_eq!(
        e,
        SessionError::Frame(FrameError::FrameTooLarge {
            needed: 104,
            capacity: 64
        })
    );
}

#[test]
fn one_sub_per_connection_and_state_checks() {
    let mut s = new_session();
    assert!(matches!(
        s.subscribe("t", "c"),
        Err(SessionError::InvalidState { .. })
    ));
    assert!(matches!(
        s.auth(b"x"),
        Err(SessionError::InvalidState { .. })
    ));
    let mut s = consumer_session();
    assert!(matches!(
        s.subscribe("t", "c"),
        Err(SessionError::InvalidState { .. })
    ));
}

#[test]
fn unpolled_events_stop_input_and_none_is_lost() {
    let mut s = consumer_session();
    let mut input = Vec::new();
    for _ in 0..EVENT_QUEUE {
        input.extend(response(b"_heartbeat_"));
    }
    let mut at = 0;
    let mut calls = 0;
    loop {
        let (n, m) = s.handle_input(&input[at..], Instant(5)).unwrap();
        assert!(m.is_none());
        if n == 0 {
            break;
        }
        at += n;
        calls += 1;
    }
    // Two slots stay free for a frame that makes two events.
    assert_eq!(calls, EVENT_QUEUE - 1);
    assert!(at < input.len());
    let polled = core::iter::from_fn(|| s.poll_event()).count();
    assert_eq!(polled, EVENT_QUEUE - 1);
    assert_eq!(feed(&mut s, &input[at..], 6).unwrap(), ["Heartbeat"]);
    assert_eq!(sent(&mut s), b"NOP\n".repeat(EVENT_QUEUE));
}
