//! AMQP 0-9-1 codec: frames, field tables, content-header properties and
//! every method decoder, on arbitrary bytes.

use courier_core::amqp::codec::{Reader, Writer};
use courier_core::amqp::frame::{parse, FrameKind};
use courier_core::amqp::properties::{ContentHeader, Properties};
use courier_core::amqp::table::FieldValue;
use courier_core::amqp::{FieldTable, Method};

/// Receive-buffer capacity and negotiated frame-max for a run, chosen by the
/// input's first byte (tiny buffers hit every limit; 0 is "no frame-max").
fn limits(selector: u8) -> (usize, u32) {
    let capacity = [16, 64, 512, 64 * 1024][usize::from(selector % 4)];
    let frame_max = [0, 8, 4096, 131_072][usize::from((selector >> 2) % 4)];
    (capacity, frame_max)
}

/// Entry point: byte 0 picks the limits; the rest is both a stream of
/// frames (as the session parses it) and, whole, a method payload, a
/// content-header payload, a field table and a property list.
pub fn amqp_frame(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    frames(stream, selector);
    payload(stream);
}

fn frames(stream: &[u8], selector: u8) {
    let (capacity, frame_max) = limits(selector);
    let mut rest = stream;
    // A driver's receive buffer never holds more than its capacity.
    if rest.len() > capacity {
        rest = &rest[..capacity];
    }
    let mut count = 0;
    loop {
        match parse(rest, capacity, frame_max) {
            Ok(Some((frame, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                assert_eq!(used, frame.payload.len() + 8, "frame size");
                assert!(frame_max == 0 || used <= frame_max as usize);
                check_split(rest, capacity, frame_max, used);
                match frame.kind {
                    FrameKind::Method => method(frame.payload),
                    FrameKind::Header => header(frame.payload),
                    FrameKind::Body | FrameKind::Heartbeat => {}
                }
                rest = &rest[used..];
                count += 1;
            }
            Ok(None) => {
                // "Need more" is only right while the buffer has room.
                assert!(
                    rest.len() < capacity,
                    "stall: {} buffered bytes fill a {capacity}-byte buffer and the parser wants more",
                    rest.len()
                );
                break;
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
        if rest.is_empty() || count > 10_000 {
            break;
        }
    }
}

/// A frame cut anywhere must be "need more" until it is complete.
fn check_split(input: &[u8], capacity: usize, frame_max: u32, used: usize) {
    for cut in [used - 1, used / 2, 7, 6, 1] {
        if cut == 0 || cut >= used {
            continue;
        }
        match parse(&input[..cut], capacity, frame_max) {
            Ok(None) => {}
            other => panic!(
                "a {used}-byte frame cut at {cut} gave {other:?} instead of needing more bytes"
            ),
        }
    }
}

/// Every decoder on the same bytes.
fn payload(data: &[u8]) {
    method(data);
    header(data);
    table(data);
    let mut r = Reader::new(data);
    if let Ok(p) = Properties::read(&mut r) {
        assert!(r.position() <= data.len());
        let bytes = encode(|w| p.write(w));
        let mut r2 = Reader::new(&bytes);
        let again = Properties::read(&mut r2).expect("re-encoded properties decode");
        assert_eq!(again, p, "properties round trip");
        assert!(r2.rest().is_empty(), "re-encoded properties left bytes");
    }
}

/// Encodes with `f` into a buffer sized by a counting pass.
fn encode(f: impl Fn(&mut Writer<'_>)) -> Vec<u8> {
    let mut count = Writer::counting();
    f(&mut count);
    let len = count.finish().expect("a decoded value encodes");
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    f(&mut w);
    assert_eq!(w.finish(), Ok(len), "counting and writing passes differ");
    out
}

fn method(payload: &[u8]) {
    match Method::read(payload) {
        Ok(m) => {
            let _ = (m.ids(), m.has_content(), format!("{m:?}"));
            let bytes = encode(|w| m.write(w));
            let again = Method::read(&bytes)
                .unwrap_or_else(|e| panic!("{m:?} re-encoded does not decode: {e:?}"));
            assert_eq!(again, m, "method round trip");
            // Canonical after one pass: re-encoding is byte for byte.
            assert_eq!(
                encode(|w| again.write(w)),
                bytes,
                "method encoding is unstable"
            );
            // A method with a field cut off is an error, never a panic.
            if bytes.len() > 4 {
                assert!(
                    Method::read(&bytes[..bytes.len() - 1]).is_err(),
                    "{m:?} decodes with its last byte cut off"
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn header(payload: &[u8]) {
    match ContentHeader::read(payload) {
        Ok(h) => {
            let bytes = encode(|w| h.write(w));
            let again = ContentHeader::read(&bytes).expect("re-encoded header decodes");
            assert_eq!(again, h, "content header round trip");
            if let Some(t) = h.properties.headers {
                walk(t, 0);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn table(raw: &[u8]) {
    let Ok(t) = FieldTable::from_raw(raw) else {
        return;
    };
    assert_eq!(t.as_bytes(), raw);
    let n = walk(t, 0);
    assert_eq!(t.len(), n);
    assert_eq!(t.is_empty(), n == 0);
    // Entries re-encoded one by one give a table that decodes to the same
    // entries, and re-encodes to itself (canonical after one pass).
    let once = rebuild(t);
    let t1 = FieldTable::from_raw(&once).expect("re-encoded table is valid");
    assert_eq!(t1.len(), n, "re-encoded table has another entry count");
    for ((k0, v0), (k1, v1)) in t.iter().zip(t1.iter()) {
        assert_eq!(k0, k1);
        assert!(same(&v0, &v1), "{v0:?} became {v1:?}");
    }
    assert_eq!(rebuild(t1), once, "table encoding is unstable");
    if let Some((k, v)) = t.iter().next() {
        if let Some(key) = k.as_str() {
            let found = t.get(key).expect("first key found by get");
            assert!(same(&found, &v));
        }
    }
}

fn rebuild(t: FieldTable<'_>) -> Vec<u8> {
    encode(|w| {
        for (k, v) in t.iter() {
            w.short_str(k);
            v.write(w);
        }
    })
}

/// Value equality with NaN equal to itself (floats compare by bits).
fn same(a: &FieldValue<'_>, b: &FieldValue<'_>) -> bool {
    match (a, b) {
        (FieldValue::F32(x), FieldValue::F32(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::F64(x), FieldValue::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Visits every value, nested tables and arrays included; returns the
/// top-level entry count.
fn walk(t: FieldTable<'_>, depth: usize) -> usize {
    assert!(depth <= 64, "tables nested deeper than validation allows");
    let mut n = 0;
    for (k, v) in t.iter() {
        let _ = (k.len(), k.as_str());
        value(&v, depth);
        n += 1;
    }
    let _ = format!("{t:?}");
    n
}

fn value(v: &FieldValue<'_>, depth: usize) {
    let _ = (v.as_str(), v.as_i64());
    match v {
        FieldValue::Table(t) => {
            walk(*t, depth + 1);
        }
        FieldValue::Array(a) => {
            for item in a.iter() {
                value(&item, depth + 1);
            }
        }
        _ => {}
    }
}
