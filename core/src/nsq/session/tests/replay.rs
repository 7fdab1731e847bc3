//! A recorded nsqd 1.3.0 conversation replayed, and split-anywhere proptests.

use super::*;
use proptest::prelude::*;

/// Bytes nsqd 1.3.0 sent to this session on a real connection (PUB,
/// MPUB, DPUB, SUB, RDY, one REQ and redelivery, two heartbeats, CLS),
/// and the bytes the session wrote in answer, recorded with a small
/// std driver. Replaying the server's bytes must reproduce the client's.
const RECORDED_RX: &[u8] = include_bytes!("../../testdata/nsqd_1_3_0_rx.bin");
const RECORDED_TX: &[u8] = include_bytes!("../../testdata/nsqd_1_3_0_tx.bin");

fn replay_recorded(cuts: &[usize]) -> (Vec<u8>, Vec<String>) {
    let identify = Identify {
        client_id: Some("check"),
        user_agent: Some("courier/0.1"),
        feature_negotiation: true,
        heartbeat_interval: Some(1000),
        ..Identify::default()
    };
    let mut s: Session<[u8; 4096], 8> = started([0u8; 4096], 65536, &identify);
    let mut wire = Vec::new();
    let mut events = Vec::new();
    let (mut published, mut heartbeats, mut consumed) = (0, 0, 0);
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (RECORDED_RX.len() + 1)).collect();
    cuts.sort();
    cuts.push(RECORDED_RX.len());
    for cut in cuts {
        let cut = cut.max(consumed);
        wire.extend(sent(&mut s));
        consumed += drive(&mut s, &RECORDED_RX[consumed..cut], 1, |s, out| {
            events.push(out.describe());
            match out {
                Out::Event(Event::Ready) => {
                    s.publish("check", b"hello").unwrap();
                    s.publish_multi("check", &[b"m1", b"m2"]).unwrap();
                    s.publish_deferred("check", 500, b"later").unwrap();
                }
                Out::Event(Event::Published { .. }) => {
                    published += 1;
                    if published == 3 {
                        s.subscribe("check", "ch").unwrap();
                    }
                }
                Out::Event(Event::Subscribed) => s.ready(10).unwrap(),
                Out::Message(m) => {
                    if m.attempts == 1 && m.body == b"m1" {
                        s.req(&m.id, 0).unwrap();
                    } else {
                        s.fin(&m.id).unwrap();
                    }
                }
                Out::Event(Event::Heartbeat) => {
                    heartbeats += 1;
                    if heartbeats == 2 {
                        s.close().unwrap();
                    }
                }
                _ => {}
            }
            // Written as soon as queued, as the recorded driver did.
            wire.extend(sent(s));
        })
        .unwrap();
    }
    wire.extend_from_slice(s.transmit());
    assert!(s.is_closed());
    (wire, events)
}

#[test]
fn replays_a_recorded_nsqd_conversation() {
    let (wire, events) = replay_recorded(&[]);
    assert_eq!(wire, RECORDED_TX, "the client bytes match the recorded run");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.split(['(', ' ']).next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Identified",
            "Ready",
            "Published",
            "Published",
            "Published",
            "Subscribed",
            "Message",
            "Message",
            "Message",
            "Message",
            "Heartbeat",
            "Message",
            "Heartbeat",
            "Closed"
        ]
    );
    assert!(
        events[9].contains("attempts: 2"),
        "REQ'd message redelivered: {}",
        events[9]
    );
}

/// A scripted server stream for a consumer+producer session.
fn server_script(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = response(NSQD_IDENTIFY);
    out.extend(response(b"OK")); // SUB
    for (i, b) in bodies.iter().enumerate() {
        let mut id = *b"0000000000000000";
        id[15] = b'a' + (i % 26) as u8;
        out.extend(message(&id, 1, b));
        if i % 3 == 0 {
            out.extend(response(b"_heartbeat_"));
        }
    }
    out.extend(error(b"E_TOUCH_FAILED TOUCH x failed"));
    out
}

fn run_script(input: &[u8], cuts: &[usize]) -> (Vec<String>, Vec<u8>) {
    let mut s = new_session();
    let mut events = Vec::new();
    let mut consumed = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort();
    cuts.push(input.len());
    for cut in cuts {
        let cut = cut.max(consumed);
        consumed += drive(&mut s, &input[consumed..cut], 1, |s, out| {
            if let Out::Event(Event::Ready) = out {
                s.subscribe("t", "c").unwrap();
            }
            events.push(out.describe());
        })
        .unwrap();
    }
    assert_eq!(consumed, input.len());
    (events, sent(&mut s))
}

proptest! {
    #[test]
    fn split_anywhere_equivalence(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let script = server_script(&bodies);
        let whole = run_script(&script, &[]);
        prop_assert_eq!(whole.0.len(), 4 + bodies.len() + bodies.len().div_ceil(3));
        prop_assert_eq!(run_script(&script, &cuts), whole);
    }

    #[test]
    fn recorded_conversation_split_anywhere(cuts in proptest::collection::vec(any::<usize>(), 0..16)) {
        prop_assert_eq!(replay_recorded(&cuts), replay_recorded(&[]));
    }

    /// Every publish is reported exactly once, in order, whatever mix
    /// of answers, heartbeats, non-fatal errors and a fatal error nsqd
    /// sends; until reported it is listed as outstanding.
    #[test]
    fn every_publish_reported_once_in_order(ops in proptest::collection::vec(0u8..6, 0..60)) {
        let mut s = ready_session();
        let mut issued: Vec<PublishId> = Vec::new();
        let mut reported: Vec<PublishId> = Vec::new();
        let mut answered = 0usize;
        let mut dead = false;
        for op in ops {
            let input = match op {
                0 | 1 => {
                    if let Ok(id) = s.publish("t", b"m") {
                        issued.push(id);
                    }
                    continue;
                }
                2 if answered < issued.len() => { answered += 1; response(b"OK") }
                3 => response(b"_heartbeat_"),
                4 => error(b"E_FIN_FAILED x"),
                5 => error(b"E_PUB_FAILED exiting"),
                _ => continue,
            };
            let fed = drive(&mut s, &input, 1, |_, out| {
                if let Out::Event(Event::Published { id } | Event::PublishFailed { id, .. }) = out {
                    reported.push(id);
                }
            });
            dead = fed.is_err();
            if dead {
                break;
            }
            let outstanding: Vec<PublishId> = s.outstanding_publishes().collect();
            let mut all = reported.clone();
            all.extend(outstanding);
            prop_assert_eq!(&all, &issued);
        }
        if dead {
            prop_assert_eq!(&reported, &issued, "a fatal error reports every publish");
        }
    }

    #[test]
    fn arbitrary_input_never_panics(
        prefix in 0usize..3,
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut s = match prefix {
            0 => new_session(),
            1 => ready_session(),
            _ => consumer_session(),
        };
        let _ = s.publish("t", b"x");
        let mut at = 0;
        for _ in 0..64 {
            match s.handle_input(&bytes[at..], Instant(9)) {
                Ok((0, None)) if s.poll_event().is_none() => break,
                Err(_) => break,
                Ok((n, _)) => at += n,
            }
            while s.poll_event().is_some() {}
        }
        let _ = s.handle_timeout(Instant(100_000));
    }
}
