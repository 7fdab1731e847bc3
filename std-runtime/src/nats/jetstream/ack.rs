//! The publish acknowledgement in its everyday shape, read without the
//! JSON deserializer.
//!
//! nats-server answers a publish to a stream with `{"stream":"NAME","seq":N}`
//! (plus `,"duplicate":true` for a repeated `Nats-Msg-Id`): Go marshals its
//! `PubAck` struct with the fields always in that order. Decoding that with
//! serde-json-core (an error-envelope pass, then the typed pass) cost about
//! 1,850 instructions per ack in a windowed publish profile, an eighth of
//! all the client's work per acknowledged publish. [`pub_ack`] reads exactly
//! those shapes by hand and returns `None` for anything else (an API error,
//! a `domain`, other spacing or order, escapes in the name), which then goes
//! to the full decoder: the fast path never decides a case it does not
//! recognise in full.

/// `(stream, seq, duplicate)` when `payload` is exactly
/// `{"stream":"NAME","seq":N}` or `{"stream":"NAME","seq":N,"duplicate":true}`
/// with a name free of `"` and `\` and a decimal `N` that fits `u64`.
pub(crate) fn pub_ack(payload: &[u8]) -> Option<(&str, u64, bool)> {
    let rest = payload.strip_prefix(b"{\"stream\":\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' || end == 0 {
        return None;
    }
    let stream = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end..].strip_prefix(b"\",\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let mut seq: u64 = 0;
    for &d in &rest[..digits] {
        seq = seq.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let duplicate = match &rest[digits..] {
        b"}" => false,
        b",\"duplicate\":true}" => true,
        _ => return None,
    };
    Some((stream, seq, duplicate))
}

#[cfg(test)]
mod tests {
    use super::pub_ack;
    use courier_core::nats::jetstream::decode_pub_ack;
    use proptest::prelude::*;

    #[test]
    fn reads_the_shapes_nats_server_sends() {
        assert_eq!(
            pub_ack(br#"{"stream":"ORDERS","seq":42}"#),
            Some(("ORDERS", 42, false))
        );
        assert_eq!(
            pub_ack(br#"{"stream":"S","seq":7,"duplicate":true}"#),
            Some(("S", 7, true))
        );
        assert_eq!(
            pub_ack(br#"{"stream":"S","seq":18446744073709551615}"#),
            Some(("S", u64::MAX, false))
        );
    }

    #[test]
    fn leaves_everything_else_to_the_full_decoder() {
        for other in [
            &br#"{"error":{"code":503,"err_code":10039,"description":"x"}}"#[..],
            br#"{"stream":"S","seq":1,"domain":"hub"}"#,
            br#"{"stream":"S","seq":1,"duplicate":false}"#,
            br#"{ "stream":"S","seq":1}"#,
            br#"{"stream":"S\"x","seq":1}"#,
            br#"{"stream":"","seq":1}"#,
            br#"{"stream":"S","seq":18446744073709551616}"#,
            br#"{"stream":"S","seq":01}"#,
            br#"{"stream":"S","seq":}"#,
            br#"{"stream":"S","seq":1}  "#,
            br#"{"stream":"S","seq":1"#,
            b"",
        ] {
            assert_eq!(pub_ack(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    fn full(payload: &[u8]) -> Option<(String, u64, bool)> {
        decode_pub_ack(payload)
            .ok()
            .filter(|a| a.domain.is_none())
            .map(|a| (a.stream.to_string(), a.seq, a.duplicate))
    }

    proptest! {
        /// Whatever the fast path accepts, the full decoder reads the same.
        #[test]
        fn agrees_with_the_full_decoder_on_server_shapes(
            stream in "[A-Za-z0-9_\\-]{1,32}",
            seq in any::<u64>(),
            duplicate in any::<bool>(),
        ) {
            let payload = if duplicate {
                format!(r#"{{"stream":"{stream}","seq":{seq},"duplicate":true}}"#)
            } else {
                format!(r#"{{"stream":"{stream}","seq":{seq}}}"#)
            };
            let fast = pub_ack(payload.as_bytes()).map(|(s, q, d)| (s.to_string(), q, d));
            prop_assert_eq!(fast.clone(), Some((stream, seq, duplicate)));
            prop_assert_eq!(fast, full(payload.as_bytes()));
        }

        /// On any bytes: either no answer, or the full decoder's answer.
        #[test]
        fn never_disagrees_on_arbitrary_bytes(
            tail in proptest::collection::vec(any::<u8>(), 0..40),
            prefix in prop_oneof![
                Just(&b"{\"stream\":\""[..]),
                Just(&b"{\"stream\":\"S\",\"seq\":"[..]),
                Just(&b""[..]),
            ],
        ) {
            let mut payload = prefix.to_vec();
            payload.extend_from_slice(&tail);
            if let Some((s, q, d)) = pub_ack(&payload) {
                prop_assert_eq!(Some((s.to_string(), q, d)), full(&payload));
            }
        }
    }
}
