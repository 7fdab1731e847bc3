//! [`EssentialInfo`] read from INFO's JSON in one pass, without serde.
//!
//! A device keeping only the INFO fields the session uses should not link
//! a JSON deserializer for them (serde-json-core's visitor machinery is
//! ~2 KiB of flash in the publish-only firmware). The scanner validates
//! the whole object (strings and escapes, numbers, literals, nesting) as
//! serde-json-core does, reads the six known fields with their types
//! checked, and skips every other value. A known field given twice is
//! invalid, as with serde's derive. Field names are compared as written
//! (an escaped name does not match a known field).

use super::error::InfoError;
use super::info::EssentialInfo;

/// Deepest nesting of arrays/objects skipped inside INFO (real INFO nests
/// two levels); deeper input is refused instead of recursing further.
const MAX_DEPTH: u8 = 16;

struct Scan<'a> {
    json: &'a [u8],
    at: usize,
}

type Result<T> = core::result::Result<T, InfoError>;

fn invalid<T>() -> Result<T> {
    Err(InfoError::InvalidJson)
}

impl<'a> Scan<'a> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.json.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, expected: u8) -> Result<()> {
        if self.peek() != Some(expected) {
            return invalid();
        }
        self.at += 1;
        Ok(())
    }

    /// `true`, `false`, `null` or another word.
    fn word(&mut self, word: &[u8]) -> Result<()> {
        match self.json.get(self.at..self.at + word.len()) {
            Some(w) if w == word => {
                self.at += word.len();
                Ok(())
            }
            _ => invalid(),
        }
    }

    /// A string's raw (still escaped) bytes, its escapes checked.
    fn string(&mut self) -> Result<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            let Some(&b) = self.json.get(self.at) else {
                return invalid();
            };
            self.at += 1;
            match b {
                b'"' => {
                    return self
                        .json
                        .get(start..self.at - 1)
                        .ok_or(InfoError::InvalidJson)
                }
                b'\\' => {
                    let escape = self.json.get(self.at).copied();
                    self.at += 1;
                    match escape {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let hex = self.json.get(self.at..self.at + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return invalid();
                            }
                            self.at += 4;
                        }
                        _ => return invalid(),
                    }
                }
                0..=0x1F => return invalid(),
                _ => {}
            }
        }
    }

    /// The integer part of a number: `0` or digits without a leading zero.
    fn integer(&mut self) -> Result<&'a [u8]> {
        let digits = self.digits()?;
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return invalid();
        }
        Ok(digits)
    }

    /// Digits (at least one).
    fn digits(&mut self) -> Result<&'a [u8]> {
        let start = self.at;
        while self.json.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        match self.json.get(start..self.at) {
            Some(d) if !d.is_empty() => Ok(d),
            _ => invalid(),
        }
    }

    /// Any JSON number (skipped).
    fn number(&mut self) -> Result<()> {
        if self.json.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        self.integer()?;
        if self.json.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.digits()?;
        }
        if matches!(self.json.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.json.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    /// An integer that must fit `max` (no sign, fraction or exponent).
    fn unsigned(&mut self, max: u64) -> Result<u64> {
        if self.peek().is_none() {
            return invalid();
        }
        let mut n: u64 = 0;
        for &d in self.integer()? {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .filter(|&n| n <= max)
                .ok_or(InfoError::InvalidJson)?;
        }
        if matches!(self.json.get(self.at), Some(b'.' | b'e' | b'E')) {
            return invalid();
        }
        Ok(n)
    }

    fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.word(b"true").map(|()| true),
            Some(b'f') => self.word(b"false").map(|()| false),
            _ => invalid(),
        }
    }

    /// `proto`: an `i32`.
    fn int32(&mut self) -> Result<i32> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let limit = if negative {
            1u64 << 31
        } else {
            (1u64 << 31) - 1
        };
        let n = i64::try_from(self.unsigned(limit)?).map_err(|_| InfoError::InvalidJson)?;
        i32::try_from(if negative { -n } else { n }).map_err(|_| InfoError::InvalidJson)
    }

    /// Skips one value of any type.
    fn value(&mut self, depth: u8) -> Result<()> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(open @ (b'[' | b'{')) if depth < MAX_DEPTH => {
                self.at += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.value(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(c) if c == close => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return invalid(),
                    }
                }
            }
            _ => invalid(),
        }
    }
}

/// The fields of [`EssentialInfo`] from INFO's JSON object; everything
/// else in it is checked to be JSON and skipped.
pub(super) fn essential_info(json: &[u8]) -> Result<EssentialInfo> {
    let mut scan = Scan { json, at: 0 };
    let mut info = EssentialInfo::default();
    let mut seen = 0u8;
    scan.eat(b'{')?;
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let key = scan.string()?;
            scan.eat(b':')?;
            let field = match key {
                b"max_payload" => 0,
                b"proto" => 1,
                b"headers" => 2,
                b"auth_required" => 3,
                b"tls_required" => 4,
                b"ldm" => 5,
                _ => 8,
            };
            if field < 8 {
                if seen & (1 << field) != 0 {
                    return invalid(); // duplicate field
                }
                seen |= 1 << field;
            }
            match field {
                0 => info.max_payload = scan.unsigned(u64::MAX)?,
                1 => info.proto = scan.int32()?,
                2 => info.headers = scan.bool()?,
                3 => info.auth_required = scan.bool()?,
                4 => info.tls_required = scan.bool()?,
                5 => info.ldm = scan.bool()?,
                _ => scan.value(0)?,
            }
            match scan.peek() {
                Some(b',') => scan.at += 1,
                Some(b'}') => {
                    scan.at += 1;
                    break;
                }
                _ => return invalid(),
            }
        }
    }
    if scan.peek().is_some() {
        return invalid(); // trailing bytes
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::{format, string::String, vec::Vec};

    fn serde(json: &[u8]) -> Result<EssentialInfo> {
        let mut scratch = [0u8; 256];
        serde_json_core::from_slice_escaped::<EssentialInfo>(json, &mut scratch)
            .map(|(info, _)| info)
            .map_err(|_| InfoError::InvalidJson)
    }

    #[test]
    fn real_info_and_edge_cases() {
        let info = essential_info(super::super::info::tests::REAL_INFO).unwrap();
        assert_eq!(info.max_payload, 1_048_576);
        assert!(info.headers && info.proto == 1 && !info.ldm);
        for (json, ok) in [
            (&br#"{}"#[..], true),
            (
                br#" { "ldm" : true , "x":{"y":[1,"\u0041",-2.5e+3,null,{}]} } "#,
                true,
            ),
            (br#"{"ldm":true,"ldm":false}"#, false),
            (br#"{"max_payload":-1}"#, false),
            (br#"{"max_payload":1.5}"#, false),
            (br#"{"max_payload":18446744073709551616}"#, false),
            (br#"{"proto":-2147483648}"#, true),
            (br#"{"proto":2147483648}"#, false),
            (br#"{"headers":"true"}"#, false),
            (br#"{"x":"a\qb"}"#, false),
            (br#"{"x":[1,]}"#, false),
            (br#"{"x":1} x"#, false),
            (br#"{"x":1"#, false),
        ] {
            let got = essential_info(json);
            assert_eq!(got.is_ok(), ok, "{}", String::from_utf8_lossy(json));
            assert_eq!(got, serde(json), "{}", String::from_utf8_lossy(json));
        }
        // Stricter than serde-json-core, which lets a raw control character
        // through in a skipped string: JSON forbids it.
        assert!(serde(b"{\"x\":\"\x01\"}").is_ok());
        assert_eq!(essential_info(b"{\"x\":\"\x01\"}"), invalid());
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(essential_info(deep.as_bytes()), invalid());
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("true".into()),
            Just("false".into()),
            Just("null".into()),
            any::<i64>().prop_map(|n| format!("{n}")),
            (any::<u32>(), 0u32..999).prop_map(|(a, b)| format!("{a}.{b}")),
            "[a-z\\\\\"\\n]{0,8}".prop_map(|s| format!("{s:?}")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-z_]{1,6}", inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("max_payload".into()),
            Just("proto".into()),
            Just("headers".into()),
            Just("auth_required".into()),
            Just("tls_required".into()),
            Just("ldm".into()),
            "[a-z_]{1,12}",
        ]
    }

    proptest! {
        /// Same result as serde-json-core's derive on generated INFO-like
        /// objects: known fields with right and wrong types, unknown
        /// nested values, duplicates.
        #[test]
        fn agrees_with_serde_json_core(
            fields in proptest::collection::vec(
                (key(), prop_oneof![json_value(), any::<u64>().prop_map(|n| format!("{n}"))]),
                0..8,
            ),
            spaces in any::<bool>(),
        ) {
            let sep = if spaces { " , " } else { "," };
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            let json = format!("{{{}}}", body.join(sep));
            prop_assert_eq!(essential_info(json.as_bytes()), serde(json.as_bytes()), "{}", json);
        }

        /// Arbitrary bytes: never a panic; accepted only when serde-json-core
        /// accepts them too, with the same fields.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(info) = essential_info(&bytes) {
                prop_assert_eq!(Ok(info), serde(&bytes));
            }
        }
    }
}
