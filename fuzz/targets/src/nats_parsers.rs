//! NATS parsers: server operations (MSG/HMSG included), header blocks, INFO JSON.

use courier_core::nats::parser::{parse, ServerOp};
use courier_core::nats::{EssentialInfo, Headers, InfoStorage, ServerInfo};

/// Receive-buffer capacity for a parser run, chosen by the input's first
/// byte so that both tiny buffers (every limit hit) and roomy ones are tried.
fn capacity(selector: u8) -> usize {
    match selector % 4 {
        0 => 16,
        1 => 64,
        2 => 512,
        _ => 64 * 1024,
    }
}

/// `parse` over a stream of server operations, as the session drives it.
pub fn nats_parser(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let capacity = capacity(selector);
    let mut rest = stream;
    // A driver's receive buffer never holds more than its capacity.
    if rest.len() > capacity {
        rest = &rest[..capacity];
    }
    let mut ops = 0;
    loop {
        let whole = parse(rest, capacity);
        match whole {
            Ok(Some((op, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                check_op(&op);
                check_split(rest, capacity, used);
                rest = &rest[used..];
                ops += 1;
            }
            Ok(None) => {
                // Progress: "need more bytes" is only right while the buffer
                // has room for them.
                assert!(
                    rest.len() < capacity,
                    "stall: {} buffered bytes fill a {capacity}-byte buffer and the parser wants more",
                    rest.len()
                );
                break;
            }
            Err(e) => {
                // Every parser error is a typed, printable, fatal error.
                let _ = e.to_string();
                assert!(e.is_fatal(), "parser error {e:?} must be fatal");
                break;
            }
        }
        if rest.is_empty() || ops > 10_000 {
            break;
        }
    }
}

fn check_op(op: &ServerOp<'_>) {
    if let ServerOp::Msg(frame) = op {
        assert!(!frame.subject.is_empty(), "a MSG subject is never empty");
        if let Some(raw) = frame.headers {
            if let Ok(headers) = Headers::parse_received(raw) {
                for (name, value) in headers.iter() {
                    let _ = (name.len(), value.len());
                }
                let _ = (headers.status(), headers.description());
            }
        }
    }
}

/// A frame split anywhere must parse as "need more" until it is complete.
fn check_split(input: &[u8], capacity: usize, used: usize) {
    for cut in [used - 1, used / 2, 1] {
        if cut == 0 || cut >= used {
            continue;
        }
        match parse(&input[..cut], capacity) {
            Ok(None) => {}
            other => panic!(
                "a {used}-byte operation cut at {cut} gave {other:?} instead of needing more bytes"
            ),
        }
    }
}

/// Header blocks: the strict parser (for blocks we write) and the lenient
/// one (for received ones); every accessor on whatever parses.
pub fn nats_headers(data: &[u8]) {
    for parsed in [Headers::parse(data), Headers::parse_received(data)] {
        match parsed {
            Ok(headers) => {
                assert_eq!(headers.as_bytes(), data);
                let mut count = 0usize;
                for (name, value) in headers.iter() {
                    count += 1;
                    assert!(
                        headers.get(name).is_some(),
                        "iterated header {name:?} not found by get"
                    );
                    let _ = value;
                }
                let _ = (
                    headers.status(),
                    headers.description(),
                    headers.is_no_responders(),
                );
                if headers.is_empty() {
                    assert_eq!(count, 0, "an empty header block yielded fields");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// INFO JSON into both storages; they must agree on what the session uses.
pub fn nats_info(data: &[u8]) {
    let full = ServerInfo::from_info_json(data);
    let essential = EssentialInfo::from_info_json(data);
    if let Err(e) = &full {
        let _ = e.to_string();
    }
    if let (Ok(a), Ok(b)) = (&full, &essential) {
        assert_eq!(a.max_payload(), b.max_payload(), "max_payload differs");
        assert_eq!(a.headers(), b.headers(), "headers differs");
        assert_eq!(a.lame_duck(), b.lame_duck(), "ldm differs");
    }
}
