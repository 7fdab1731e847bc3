//! Incremental, zero-copy parser of NATS server operations.
//!
//! [`parse`] looks at the unconsumed bytes of the receive buffer and returns
//! either `Ok(None)` (a frame is incomplete: read more), or one operation
//! borrowing from the input and the number of bytes it spans, or a typed
//! error. It keeps no state, so a frame split across any number of reads
//! parses exactly as if it arrived at once: the caller simply calls again
//! with more bytes.
//!
//! Operation names are case-insensitive, as the protocol allows. Arguments
//! are separated by spaces or tabs.

use super::error::{Error, ProtocolError};

/// One operation sent by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerOp<'a> {
    /// `INFO {json}`: the JSON object.
    Info(&'a [u8]),
    /// `MSG` or `HMSG`: a message for a subscription.
    Msg(MsgFrame<'a>),
    /// `PING`: the server wants a PONG.
    Ping,
    /// `PONG`: the answer to our oldest unanswered PING.
    Pong,
    /// `+OK` (verbose mode).
    Ok,
    /// `-ERR '<message>'`: the message without quotes.
    Err(&'a str),
}

/// A `MSG` or `HMSG` frame; every slice borrows the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgFrame<'a> {
    /// Subject it was published to.
    pub subject: &'a str,
    /// Subscription id.
    pub sid: u64,
    /// Reply subject.
    pub reply: Option<&'a str>,
    /// The raw header block (`HMSG` only), `NATS/1.0...\r\n\r\n`.
    pub headers: Option<&'a [u8]>,
    /// Payload, headers excluded.
    pub payload: &'a [u8],
}

const OP_NAMES: [&[u8]; 7] = [b"INFO", b"MSG", b"HMSG", b"PING", b"PONG", b"+OK", b"-ERR"];
const EXPECTED_OP: &str = "a NATS operation (INFO, MSG, HMSG, PING, PONG, +OK, -ERR)";
const EXPECTED_MSG: &str = "MSG <subject> <sid> [reply] <#bytes>";
const EXPECTED_HMSG: &str = "HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>";
/// What a session without subscription slots (`SUBS` = 0) expects instead
/// of a message: the server cannot have one for it.
const NO_MSGS: &str = "INFO, PING, PONG, +OK or -ERR (not MSG/HMSG: this session has no \
                       subscription slots, SUBS = 0; give it some to receive messages)";

/// Parses one operation from the front of `input`.
///
/// `capacity` is the size of the receive buffer: a message whose whole frame
/// exceeds it fails with [`Error::FrameTooLarge`] as soon as its control
/// line is complete (before the payload arrives), and input that fills the
/// buffer without a CRLF fails with [`Error::ControlLineTooLong`].
///
/// ```
/// use courier_core::nats::parser::{parse, ServerOp};
/// let (op, used) = parse(b"PING\r\nPONG\r\n", 1024).unwrap().unwrap();
/// assert_eq!((op, used), (ServerOp::Ping, 6));
/// assert_eq!(parse(b"MSG a 1 5\r\nhel", 1024).unwrap(), None);
/// ```
#[inline]
pub fn parse(input: &[u8], capacity: usize) -> Result<Option<(ServerOp<'_>, usize)>, Error> {
    parse_ops::<true>(input, capacity)
}

/// [`parse`] for a session with `SUBS` subscription slots: with none, no
/// message can be for it, and the message parser is left out (a
/// publish-only device).
#[inline]
pub(crate) fn parse_for<const SUBS: usize>(
    input: &[u8],
    capacity: usize,
) -> Result<Option<(ServerOp<'_>, usize)>, Error> {
    if SUBS == 0 {
        parse_ops::<false>(input, capacity)
    } else {
        parse_ops::<true>(input, capacity)
    }
}

/// [`parse`]; with `MSGS` false (a session without subscription slots) a
/// `MSG`/`HMSG` is a protocol error and the message parser is not linked.
pub(crate) fn parse_ops<const MSGS: bool>(
    input: &[u8],
    capacity: usize,
) -> Result<Option<(ServerOp<'_>, usize)>, Error> {
    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
        if input.len() >= capacity {
            return Err(Error::ControlLineTooLong { capacity });
        }
        // Garbage without a newline would otherwise wait for the buffer to
        // fill; reject as soon as the first word cannot be an operation.
        let word_end = input
            .iter()
            .position(|&b| is_separator(b) || b == b'\r')
            .unwrap_or(input.len());
        let word = input.get(..word_end).unwrap_or_default();
        let complete_word = word_end < input.len();
        if !could_be_op(word, complete_word) {
            return Err(ProtocolError::new(EXPECTED_OP, input).into());
        }
        return Ok(None);
    };
    let line_len = newline + 1;
    let line = match input.get(..newline).and_then(|l| l.strip_suffix(b"\r")) {
        Some(line) => line,
        None => {
            return Err(ProtocolError::new(
                "CRLF at the end of the control line",
                input.get(..line_len).unwrap_or(input),
            )
            .into())
        }
    };
    let (name, rest) = split_word(line);
    let op = if !MSGS && (name.eq_ignore_ascii_case(b"MSG") || name.eq_ignore_ascii_case(b"HMSG")) {
        return Err(ProtocolError::new(NO_MSGS, line).into());
    } else if name.eq_ignore_ascii_case(b"MSG") {
        return parse_msg(input, line, rest, line_len, capacity, false);
    } else if name.eq_ignore_ascii_case(b"HMSG") {
        return parse_msg(input, line, rest, line_len, capacity, true);
    } else if name.eq_ignore_ascii_case(b"PING") && is_blank(rest) {
        ServerOp::Ping
    } else if name.eq_ignore_ascii_case(b"PONG") && is_blank(rest) {
        ServerOp::Pong
    } else if name.eq_ignore_ascii_case(b"+OK") && is_blank(rest) {
        ServerOp::Ok
    } else if name.eq_ignore_ascii_case(b"INFO") {
        let json = trim(rest);
        if json.first() != Some(&b'{') {
            return Err(ProtocolError::new("INFO {json}", line).into());
        }
        ServerOp::Info(json)
    } else if name.eq_ignore_ascii_case(b"-ERR") {
        let text = trim(rest);
        let text = text
            .strip_prefix(b"'")
            .and_then(|t| t.strip_suffix(b"'"))
            .unwrap_or(text);
        let text = core::str::from_utf8(text)
            .map_err(|_| ProtocolError::new("-ERR '<UTF-8 text>'", line))?;
        ServerOp::Err(text)
    } else {
        return Err(ProtocolError::new(EXPECTED_OP, line).into());
    };
    Ok(Some((op, line_len)))
}

fn parse_msg<'a>(
    input: &'a [u8],
    line: &'a [u8],
    rest: &'a [u8],
    line_len: usize,
    capacity: usize,
    with_headers: bool,
) -> Result<Option<(ServerOp<'a>, usize)>, Error> {
    let expected = if with_headers {
        EXPECTED_HMSG
    } else {
        EXPECTED_MSG
    };
    let bad = || Error::from(ProtocolError::new(expected, line));
    let mut args: [&[u8]; 5] = [&[]; 5];
    let mut count = 0;
    for arg in rest.split(|&b| is_separator(b)).filter(|a| !a.is_empty()) {
        *args.get_mut(count).ok_or_else(bad)? = arg;
        count += 1;
    }
    let sizes = if with_headers { 2 } else { 1 };
    let (subject, sid, reply, size_args) = match count.checked_sub(sizes) {
        Some(2) => (args[0], args[1], None, &args[2..count]),
        Some(3) => (args[0], args[1], Some(args[2]), &args[3..count]),
        _ => return Err(bad()),
    };
    let subject = core::str::from_utf8(subject).map_err(|_| bad())?;
    let reply = match reply {
        Some(r) => Some(core::str::from_utf8(r).map_err(|_| bad())?),
        None => None,
    };
    let sid = parse_decimal(sid).ok_or_else(bad)?;
    let (header_len, total_len) = match size_args {
        [total] => (0, parse_decimal(total).ok_or_else(bad)?),
        [header, total] => (
            parse_decimal(header).ok_or_else(bad)?,
            parse_decimal(total).ok_or_else(bad)?,
        ),
        _ => return Err(bad()),
    };
    if header_len > total_len {
        return Err(bad());
    }
    let header_len = usize::try_from(header_len).map_err(|_| bad())?;
    let total_len = usize::try_from(total_len).unwrap_or(usize::MAX);
    let needed = line_len.saturating_add(total_len).saturating_add(2);
    if needed > capacity {
        return Err(Error::FrameTooLarge { needed, capacity });
    }
    if input.len() < needed {
        return Ok(None);
    }
    let body = input.get(line_len..needed).ok_or_else(bad)?;
    let (content, trailer) = body.split_at(total_len);
    if trailer != b"\r\n" {
        return Err(ProtocolError::new("CRLF after the message payload", trailer).into());
    }
    let (headers, payload) = content.split_at(header_len);
    let frame = MsgFrame {
        subject,
        sid,
        reply,
        headers: with_headers.then_some(headers),
        payload,
    };
    Ok(Some((ServerOp::Msg(frame), needed)))
}

fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| is_separator(b))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_separator(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_separator(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Splits the operation name off a control line.
fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    let end = line
        .iter()
        .position(|&b| is_separator(b))
        .unwrap_or(line.len());
    line.split_at(end)
}

/// True when `word` is (a prefix of, unless `complete`) an operation name.
fn could_be_op(word: &[u8], complete: bool) -> bool {
    OP_NAMES.iter().any(|name| {
        if complete {
            name.eq_ignore_ascii_case(word)
        } else {
            name.len() >= word.len()
                && name
                    .get(..word.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(word))
        }
    })
}

/// Decimal digits to u64; `None` if empty, not digits, or overflowing.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    const CAP: usize = 4096;

    fn one(input: &[u8]) -> (ServerOp<'_>, usize) {
        parse(input, CAP).unwrap().unwrap()
    }

    #[test]
    fn without_subscription_slots_a_message_is_a_protocol_error() {
        for input in [
            &b"MSG a 1 2\r\nhi\r\n"[..],
            b"msg a 1 2\r\n",
            b"HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        ] {
            match parse_for::<0>(input, CAP) {
                Err(Error::Protocol(p)) => {
                    assert_eq!(p.expected, NO_MSGS);
                    assert_eq!(p.seen.first(), input.first());
                }
                other => panic!("{input:?}: {other:?}"),
            }
            // With slots the same bytes are a message (or its start).
            assert!(parse_for::<1>(input, CAP).is_ok());
        }
        assert_eq!(
            parse_for::<0>(b"PING\r\n", CAP).unwrap(),
            Some((ServerOp::Ping, 6))
        );
        assert_eq!(parse_for::<0>(b"MSG a 1 2\r", CAP).unwrap(), None);
    }

    #[test]
    fn control_ops_any_case() {
        assert_eq!(one(b"PING\r\n"), (ServerOp::Ping, 6));
        assert_eq!(one(b"ping\r\n"), (ServerOp::Ping, 6));
        assert_eq!(one(b"PoNg\r\n"), (ServerOp::Pong, 6));
        assert_eq!(one(b"+ok\r\n"), (ServerOp::Ok, 5));
        assert_eq!(one(b"PING \r\nX"), (ServerOp::Ping, 7));
        assert_eq!(
            one(b"-ERR 'Authorization Violation'\r\n"),
            (ServerOp::Err("Authorization Violation"), 32)
        );
        assert_eq!(
            one(b"-err 'Permissions Violation for Publish to \"x\"'\r\n").0,
            ServerOp::Err("Permissions Violation for Publish to \"x\"")
        );
        assert_eq!(
            one(b"INFO {\"server_id\":\"x\"} \r\n"),
            (ServerOp::Info(b"{\"server_id\":\"x\"}"), 25)
        );
        assert_eq!(one(b"info\t{}\r\n").0, ServerOp::Info(b"{}"));
    }

    #[test]
    fn msg_with_and_without_reply() {
        let (op, used) = one(b"MSG foo.bar 9 5\r\nhello\r\nPING\r\n");
        assert_eq!(used, 24);
        assert_eq!(
            op,
            ServerOp::Msg(MsgFrame {
                subject: "foo.bar",
                sid: 9,
                reply: None,
                headers: None,
                payload: b"hello"
            })
        );
        let (op, _) = one(b"msg foo  9\tINBOX.1 0\r\n\r\n");
        assert_eq!(
            op,
            ServerOp::Msg(MsgFrame {
                subject: "foo",
                sid: 9,
                reply: Some("INBOX.1"),
                headers: None,
                payload: b""
            })
        );
        // Payloads may contain CRLF: only the byte count matters.
        let (op, _) = one(b"MSG a 1 4\r\n\r\n\r\n\r\n");
        let ServerOp::Msg(m) = op else { panic!() };
        assert_eq!(m.payload, b"\r\n\r\n");
    }

    #[test]
    fn hmsg_splits_headers_and_payload() {
        let frame = b"HMSG a.b 3 _INBOX.x.1 21 26\r\nNATS/1.0\r\nUnit: C\r\n\r\nhello\r\n";
        let (op, used) = one(frame);
        assert_eq!(used, frame.len());
        assert_eq!(
            op,
            ServerOp::Msg(MsgFrame {
                subject: "a.b",
                sid: 3,
                reply: Some("_INBOX.x.1"),
                headers: Some(b"NATS/1.0\r\nUnit: C\r\n\r\n"),
                payload: b"hello"
            })
        );
        let frame = b"HMSG _INBOX.x.7 2 16 16\r\nNATS/1.0 503\r\n\r\n\r\n";
        let ServerOp::Msg(m) = one(frame).0 else {
            panic!()
        };
        assert_eq!(m.headers, Some(&b"NATS/1.0 503\r\n\r\n"[..]));
        assert_eq!(m.payload, b"");
    }

    #[test]
    fn incomplete_frames_need_more() {
        for partial in [
            &b""[..],
            b"P",
            b"PIN",
            b"PING",
            b"PING\r",
            b"MSG a 1 5\r\nhel",
            b"MSG a 1 5\r\nhello",
            b"MSG a 1 5\r\nhello\r",
            b"-ERR 'x",
            b"INFO {",
            b"hms",
        ] {
            assert_eq!(parse(partial, CAP), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn frame_too_large_before_payload_arrives() {
        // Only the control line has arrived.
        assert_eq!(
            parse(b"MSG big 1 70000\r\n", 65536),
            Err(Error::FrameTooLarge {
                needed: 17 + 70000 + 2,
                capacity: 65536
            })
        );
        assert_eq!(
            parse(b"HMSG big 1 10 65536\r\n", 65536),
            Err(Error::FrameTooLarge {
                needed: 21 + 65536 + 2,
                capacity: 65536
            })
        );
        // Exactly fitting is fine.
        let mut frame = Vec::from(&b"MSG a 1 3\r\nabc\r\n"[..]);
        assert!(parse(&frame, frame.len()).unwrap().is_some());
        frame.truncate(12);
        assert_eq!(parse(&frame, 16), Ok(None));
    }

    #[test]
    fn control_line_longer_than_buffer() {
        let long = [b'M', b'S', b'G', b' ', b'a', b'a', b'a', b'a'];
        assert_eq!(
            parse(&long, 8),
            Err(Error::ControlLineTooLong { capacity: 8 })
        );
        assert_eq!(parse(&long, 9), Ok(None));
    }

    fn protocol_err(input: &[u8]) -> ProtocolError {
        match parse(input, CAP) {
            Err(Error::Protocol(e)) => e,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_protocol_error_with_what_was_seen() {
        let e = protocol_err(b"HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(e.expected, EXPECTED_OP);
        assert_eq!(&e.seen[..], b"HTTP/1.1 400 Bad Request");
        // Rejected before any newline arrives.
        protocol_err(b"GET / HT");
        protocol_err(b"PINGX");
        protocol_err(b"PING\n");
        protocol_err(b"PING x\r\n");
        protocol_err(b"MSG a\r\n");
        protocol_err(b"MSG a b 3\r\nabc\r\n");
        protocol_err(b"MSG a 1 2 3 4\r\n");
        protocol_err(b"MSG a 1 -3\r\n");
        protocol_err(b"MSG a 1 3\r\nabcXY");
        protocol_err(b"HMSG a 1 5 3\r\n");
        protocol_err(b"HMSG a 1 3\r\n");
        protocol_err(b"INFO nojson\r\n");
        protocol_err(b"MSG \xff 1 0\r\n\r\n");
        let e = protocol_err(b"MSG a 1 99999999999999999999999\r\n");
        assert_eq!(e.expected, EXPECTED_MSG);
    }

    /// Parses everything in `bytes` fed in the given chunk sizes, the way a
    /// driver does with its receive buffer, and renders the ops.
    fn parse_in_chunks(bytes: &[u8], chunks: &[usize]) -> Result<Vec<String>, Error> {
        let mut buffer: Vec<u8> = Vec::new();
        let mut ops = Vec::new();
        let mut fed = 0;
        let mut chunk_sizes = chunks.iter().copied().cycle();
        while fed < bytes.len() {
            let n = chunk_sizes
                .next()
                .unwrap_or(1)
                .max(1)
                .min(bytes.len() - fed);
            buffer.extend_from_slice(&bytes[fed..fed + n]);
            fed += n;
            while let Some((op, used)) = parse(&buffer, CAP)? {
                ops.push(format!("{op:?}"));
                buffer.drain(..used);
            }
        }
        assert!(buffer.is_empty(), "left over: {buffer:?}");
        Ok(ops)
    }

    fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
        let subject = "[a-z]{1,5}(\\.[a-z*>]{1,3}){0,2}";
        prop_oneof![
            // Operation names in any letter case.
            "[pP][iI][nN][gG]\r\n".prop_map(String::into_bytes),
            "[pP][oO][nN][gG]\r\n".prop_map(String::into_bytes),
            "\\+[oO][kK]\r\n".prop_map(String::into_bytes),
            "[ -&(-~]{0,20}".prop_map(|t| format!("-ERR '{t}'\r\n").into_bytes()),
            "[a-z0-9]{0,10}".prop_map(|v| format!("INFO {{\"v\":\"{v}\"}}\r\n").into_bytes()),
            (
                subject,
                0u64..1000,
                proptest::option::of("[A-Z_.0-9]{1,8}"),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(s, sid, reply, payload)| {
                    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
                    let mut f = format!("MSG {s} {sid}{reply} {}\r\n", payload.len()).into_bytes();
                    f.extend_from_slice(&payload);
                    f.extend_from_slice(b"\r\n");
                    f
                }),
            (
                subject,
                0u64..1000,
                "[a-z]{1,5}",
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(s, sid, value, payload)| {
                    let headers = format!("NATS/1.0\r\nK: {value}\r\n\r\n");
                    let total = headers.len() + payload.len();
                    let mut f = format!("HMSG {s} {sid} {} {total}\r\n{headers}", headers.len())
                        .into_bytes();
                    f.extend_from_slice(&payload);
                    f.extend_from_slice(b"\r\n");
                    f
                }),
        ]
    }

    proptest! {
        #[test]
        fn split_anywhere_parses_the_same(
            frames in proptest::collection::vec(frame_strategy(), 1..8),
            chunks in proptest::collection::vec(1usize..20, 1..10),
        ) {
            let stream: Vec<u8> = frames.concat();
            let whole = parse_in_chunks(&stream, &[stream.len()]).unwrap();
            prop_assert_eq!(whole.len(), frames.len());
            let split = parse_in_chunks(&stream, &chunks).unwrap();
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            capacity in 0usize..300,
        ) {
            let mut rest = &bytes[..];
            while let Ok(Some((_, used))) = parse(rest, capacity) {
                prop_assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
        }

        /// Without subscription slots every frame parses as with them,
        /// except MSG/HMSG, which are a protocol error (never a partial
        /// wait, never a panic), also when cut short or mutated.
        #[test]
        fn without_slots_only_messages_differ(
            frame in frame_strategy(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut mutated = frame.clone();
            let i = at.index(mutated.len());
            mutated[i] = byte;
            let short = &frame[..cut.index(frame.len() + 1)];
            for input in [&frame[..], &mutated[..], short] {
                let without = parse_for::<0>(input, CAP);
                let line = input
                    .iter()
                    .position(|&b| b == b'\n')
                    .and_then(|n| input[..n].strip_suffix(b"\r"));
                let word = line.map(|l| split_word(l).0).unwrap_or_default();
                if word.eq_ignore_ascii_case(b"MSG") || word.eq_ignore_ascii_case(b"HMSG") {
                    // Refused at its control line, without waiting for
                    // the body.
                    prop_assert!(
                        matches!(without, Err(Error::Protocol(ref p)) if p.expected == NO_MSGS),
                        "{:?}", without
                    );
                } else {
                    prop_assert_eq!(parse(input, CAP), without);
                }
            }
        }

        #[test]
        fn mutated_frames_never_panic(
            frame in frame_strategy(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut frame = frame;
            let i = at.index(frame.len());
            frame[i] = byte;
            let _ = parse(&frame, CAP);
        }
    }
}
