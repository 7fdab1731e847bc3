//! Property tests: split-anywhere input, encode/decode round trips, a
//! model of confirm tracking, and arbitrary bytes never panicking.

use std::collections::BTreeSet;
use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::confirms::ConfirmTracker;
use super::testkit::*;
use super::*;
use crate::amqp::codec::{Reader, Writer};
use crate::amqp::methods::{Basic, Channel, Confirm, Exchange, Method, Queue};
use crate::amqp::properties::{ContentHeader, Properties};
use crate::amqp::table::{FieldTable, FieldValue, TableBuilder};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{0,40}"
}

/// A server stream after the handshake: replies, confirms, heartbeats,
/// deliveries of various sizes (some over several frames) on channel 1.
fn server_stream(bodies: &[usize], frame_max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(method(1, Confirm::SelectOk));
    for (i, len) in bodies.iter().enumerate() {
        let body: Vec<u8> = (0..*len).map(|b| (b * 7 + i) as u8).collect();
        out.extend(content(
            1,
            Basic::Deliver {
                consumer_tag: "c".into(),
                delivery_tag: i as u64 + 1,
                redelivered: i % 2 == 0,
                exchange: "ex".into(),
                routing_key: "k".into(),
            },
            Properties::default().content_type("application/json"),
            &body,
            frame_max,
        ));
        out.extend([8, 0, 0, 0, 0, 0, 0, 0xCE]);
        out.extend(method(
            1,
            Basic::Ack {
                delivery_tag: i as u64 + 1,
                multiple: i % 3 == 0,
            },
        ));
    }
    out.extend(method(
        1,
        Basic::Cancel {
            consumer_tag: "c".into(),
            nowait: true,
        },
    ));
    out
}

/// Feeds `input` in pieces cut at `cuts`, as a driver with a receive
/// buffer would: append, parse what is complete, keep the rest.
fn feed_in_pieces(s: &mut TestSession, input: &[u8], cuts: &[usize]) -> (Vec<String>, Vec<Event>) {
    let mut log = Vec::new();
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut from = 0;
    for to in points {
        buf.extend_from_slice(&input[from..to]);
        from = to;
        loop {
            let (used, d) = s.handle_input(&buf, t(5)).unwrap();
            if let Some(d) = d {
                log.push(describe(&d));
            }
            events.extend(core::iter::from_fn(|| s.poll_event()));
            if used == 0 {
                break;
            }
            buf.drain(..used);
        }
    }
    assert!(buf.is_empty());
    (log, events)
}

fn field_value() -> impl Strategy<Value = (u8, i64, Vec<u8>)> {
    (
        0u8..9,
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..20),
    )
}

fn to_value(kind: u8, n: i64, bytes: &[u8]) -> FieldValue<'_> {
    match kind {
        0 => FieldValue::Bool(n & 1 == 1),
        1 => FieldValue::I8(n as i8),
        2 => FieldValue::I16(n as i16),
        3 => FieldValue::I32(n as i32),
        4 => FieldValue::I64(n),
        5 => FieldValue::LongStr(bytes),
        6 => FieldValue::Timestamp(n as u64),
        7 => FieldValue::U64(n as u64),
        _ => FieldValue::Bytes(bytes),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn split_anywhere_yields_the_same_deliveries_and_events(
        bodies in proptest::collection::vec(0usize..10_000, 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream = server_stream(&bodies, 4096);
        let mut whole = open_session(4096, 0);
        whole.confirm_select(1).unwrap();
        let expected = feed(&mut whole, &stream, t(5));
        let mut pieces = open_session(4096, 0);
        pieces.confirm_select(1).unwrap();
        let got = feed_in_pieces(&mut pieces, &stream, &cuts);
        prop_assert_eq!(expected.0.len(), bodies.len());
        prop_assert_eq!(got, expected);
        prop_assert_eq!(pieces.transmit(), whole.transmit());
    }

    #[test]
    fn field_tables_round_trip(entries in proptest::collection::vec(("[a-z]{1,12}", field_value()), 0..12)) {
        let mut buf = std::vec![0u8; 4096];
        let mut b = TableBuilder::new(&mut buf);
        for (k, (kind, n, bytes)) in &entries {
            b.insert(k, to_value(*kind, *n, bytes));
        }
        let table = b.finish().unwrap();
        let decoded = FieldTable::from_raw(table.as_bytes()).unwrap();
        let got: Vec<_> = decoded.iter().collect();
        prop_assert_eq!(got.len(), entries.len());
        for ((k, v), (ek, (kind, n, bytes))) in got.iter().zip(&entries) {
            prop_assert_eq!(k.as_str(), Some(ek.as_str()));
            prop_assert_eq!(*v, to_value(*kind, *n, bytes));
        }
    }

    #[test]
    fn properties_round_trip(
        ct in proptest::option::of(name()), corr in proptest::option::of(name()),
        mode in proptest::option::of(1u8..3), prio in proptest::option::of(0u8..10),
        ts in proptest::option::of(any::<u64>()), app in proptest::option::of(name()),
        hdr in proptest::option::of(("[a-z]{1,8}", "[a-z]{0,8}")), body_size in any::<u64>(),
    ) {
        let mut tbuf = [0u8; 64];
        let headers = hdr.as_ref().map(|(k, v)| {
            let mut b = TableBuilder::new(&mut tbuf);
            b.insert_str(k, v);
            b.finish().unwrap()
        });
        let p = Properties {
            content_type: ct.as_deref().map(Into::into),
            correlation_id: corr.as_deref().map(Into::into),
            delivery_mode: mode,
            priority: prio,
            timestamp: ts,
            app_id: app.as_deref().map(Into::into),
            headers,
            ..Properties::default()
        };
        let h = ContentHeader::basic(body_size, p);
        let bytes = encode(|w| h.write(w));
        prop_assert_eq!(ContentHeader::read(&bytes).unwrap(), h);
    }

    #[test]
    fn methods_round_trip(a in name(), b in name(), c in name(), n in any::<u64>(), m in any::<u32>(), flags in any::<u8>()) {
        let bit = |i: u8| flags & (1 << i) != 0;
        let methods: Vec<Method<'_>> = std::vec![
            Exchange::Declare { exchange: a.as_str().into(), kind: b.as_str().into(), passive: bit(0), durable: bit(1), auto_delete: bit(2), internal: bit(3), nowait: bit(4), arguments: FieldTable::EMPTY }.into(),
            Exchange::Bind { destination: a.as_str().into(), source: b.as_str().into(), routing_key: c.as_str().into(), nowait: bit(0), arguments: FieldTable::EMPTY }.into(),
            Exchange::Delete { exchange: a.as_str().into(), if_unused: bit(1), nowait: bit(2) }.into(),
            Queue::Declare { queue: a.as_str().into(), passive: bit(0), durable: bit(1), exclusive: bit(2), auto_delete: bit(3), nowait: bit(4), arguments: FieldTable::EMPTY }.into(),
            Queue::DeclareOk { queue: b.as_str().into(), message_count: m, consumer_count: m / 2 }.into(),
            Queue::Bind { queue: a.as_str().into(), exchange: b.as_str().into(), routing_key: c.as_str().into(), nowait: bit(5), arguments: FieldTable::EMPTY }.into(),
            Queue::Unbind { queue: a.as_str().into(), exchange: b.as_str().into(), routing_key: c.as_str().into(), arguments: FieldTable::EMPTY }.into(),
            Queue::Delete { queue: a.as_str().into(), if_unused: bit(0), if_empty: bit(1), nowait: bit(2) }.into(),
            Queue::Purge { queue: c.as_str().into(), nowait: bit(3) }.into(),
            Basic::Qos { prefetch_size: m, prefetch_count: m as u16, global: bit(0) }.into(),
            Basic::Consume { queue: a.as_str().into(), consumer_tag: b.as_str().into(), no_local: bit(0), no_ack: bit(1), exclusive: bit(2), nowait: bit(3), arguments: FieldTable::EMPTY }.into(),
            Basic::Publish { exchange: a.as_str().into(), routing_key: b.as_str().into(), mandatory: bit(0), immediate: bit(1) }.into(),
            Basic::Deliver { consumer_tag: a.as_str().into(), delivery_tag: n, redelivered: bit(2), exchange: b.as_str().into(), routing_key: c.as_str().into() }.into(),
            Basic::GetOk { delivery_tag: n, redelivered: bit(3), exchange: b.as_str().into(), routing_key: c.as_str().into(), message_count: m }.into(),
            Basic::Return { reply_code: m as u16, reply_text: a.as_str().into(), exchange: b.as_str().into(), routing_key: c.as_str().into() }.into(),
            Basic::Ack { delivery_tag: n, multiple: bit(0) }.into(),
            Basic::Nack { delivery_tag: n, multiple: bit(1), requeue: bit(2) }.into(),
            Basic::Reject { delivery_tag: n, requeue: bit(3) }.into(),
            Basic::Cancel { consumer_tag: a.as_str().into(), nowait: bit(4) }.into(),
            Channel::Close { reply_code: m as u16, reply_text: a.as_str().into(), class_id: 50, method_id: 10 }.into(),
            Channel::Flow { active: bit(5) }.into(),
        ];
        for method in methods {
            let bytes = encode(|w| method.write(w));
            prop_assert_eq!(Method::read(&bytes).unwrap(), method);
        }
    }

    #[test]
    fn confirm_tracking_matches_a_set_model(ops in proptest::collection::vec((0u8..4, any::<u16>()), 1..400)) {
        let mut tracker = ConfirmTracker::<2>::new();
        let mut model: BTreeSet<u64> = BTreeSet::new();
        let mut next = 1u64;
        for (op, x) in ops {
            match op {
                0 | 1 => {
                    // Publish: refused exactly when the window from the oldest
                    // unsettled tag is used up.
                    let oldest = model.iter().next().copied().unwrap_or(next);
                    let full = next - oldest >= ConfirmTracker::<2>::WINDOW;
                    let got = tracker.publish();
                    if full {
                        prop_assert_eq!(got, None);
                    } else {
                        prop_assert_eq!(got, Some(next));
                        model.insert(next);
                        next += 1;
                    }
                }
                2 => {
                    let tag = u64::from(x) % (next + 1);
                    let expected = u64::from(model.remove(&tag));
                    prop_assert_eq!(tracker.settle(tag, false), expected);
                }
                _ => {
                    let tag = u64::from(x) % (next + 1);
                    let settled: Vec<u64> = if tag == 0 {
                        model.iter().copied().collect()
                    } else {
                        model.range(..=tag).copied().collect()
                    };
                    for t in &settled {
                        model.remove(t);
                    }
                    prop_assert_eq!(tracker.settle(tag, true), settled.len() as u64);
                }
            }
            prop_assert_eq!(tracker.outstanding(), model.len() as u64);
            for t in model.iter() {
                prop_assert!(tracker.is_unsettled(*t));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut s = open_session(4096, 0);
        let mut at = 0;
        while let Ok((used, _)) = s.handle_input(&bytes[at..], t(5)) {
            while s.poll_event().is_some() {}
            if used == 0 { break; }
            at += used;
        }
        let _ = Reader::new(&bytes).table();
        let _ = Method::read(&bytes);
        let _ = ContentHeader::read(&bytes);
        let mut out = [0u8; 8];
        let mut w = Writer::new(&mut out);
        w.put(&bytes);
        prop_assert_eq!(w.finish().is_err(), bytes.len() > 8);
    }
}
