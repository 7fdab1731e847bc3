//! The CONNECT line's JSON, written field by field.
//!
//! The same bytes serde-json-core writes for [`Connect`] (same field order,
//! same escaping: `\"`, `\\`, `\b \t \n \f \r`, other control characters as
//! `\u00XX`), but the length is known before anything is written: CONNECT
//! goes straight into the transmit buffer instead of through a
//! [`CONNECT_MAX`](super::commands::CONNECT_MAX)-byte scratch line on the
//! stack (two of them were most of a device's stack peak), and the encoder
//! is a few hundred bytes of flash instead of serde's serializer.

use super::commands::Connect;

/// Writes while there is room and counts every byte: run over an empty
/// slice it measures the line.
struct Line<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Line<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }

    /// `"key":` after the first field, `,"key":`.
    fn key(&mut self, key: &str) {
        self.put(if self.at > b"CONNECT {".len() {
            b",\""
        } else {
            b"\""
        });
        self.put(key.as_bytes());
        self.put(b"\":");
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.key(key);
        self.put(if v { b"true" } else { b"false" });
    }

    fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        self.put(b"\"");
        for &b in v.as_bytes() {
            let escaped: &[u8] = match b {
                b'\\' => b"\\\\",
                b'"' => b"\\\"",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0C => b"\\f",
                b'\r' => b"\\r",
                0..=0x1F => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    let hex = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
                    self.put(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xF)]);
                    continue;
                }
                _ => {
                    self.put(&[b]);
                    continue;
                }
            };
            self.put(escaped);
        }
        self.put(b"\"");
    }

    fn opt_str(&mut self, key: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(key, v);
        }
    }
}

/// Writes `CONNECT {json}\r\n` into `out` as far as it fits and returns the
/// whole line's length (which may exceed `out.len()`: then the line is cut).
pub(super) fn write_connect_line(fields: &Connect<'_>, out: &mut [u8]) -> usize {
    let mut line = Line { out, at: 0 };
    line.put(b"CONNECT {");
    line.bool("verbose", fields.verbose);
    line.bool("pedantic", fields.pedantic);
    line.bool("tls_required", fields.tls_required);
    line.opt_str("name", fields.name);
    line.str("lang", fields.lang);
    line.str("version", fields.version);
    line.key("protocol");
    let mut digits = [0u8; 20];
    line.put(crate::buf::format_decimal(
        u64::from(fields.protocol),
        &mut digits,
    ));
    line.bool("echo", fields.echo);
    line.bool("headers", fields.headers);
    line.bool("no_responders", fields.no_responders);
    line.opt_str("user", fields.user);
    line.opt_str("pass", fields.pass);
    line.opt_str("auth_token", fields.auth_token);
    line.opt_str("jwt", fields.jwt);
    line.opt_str("nkey", fields.nkey);
    line.opt_str("sig", fields.sig);
    line.put(b"}\r\n");
    line.at
}

/// The length of `CONNECT {json}\r\n` for `fields`, nothing written.
pub(super) fn connect_line_len(fields: &Connect<'_>) -> usize {
    write_connect_line(fields, &mut [])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::{vec, vec::Vec};

    fn serde_line(fields: &Connect<'_>) -> Vec<u8> {
        let mut json = vec![0u8; 8192];
        let n = serde_json_core::to_slice(fields, &mut json).unwrap();
        let mut line = b"CONNECT ".to_vec();
        line.extend_from_slice(&json[..n]);
        line.extend_from_slice(b"\r\n");
        line
    }

    fn hand_line(fields: &Connect<'_>) -> Vec<u8> {
        let len = connect_line_len(fields);
        let mut out = vec![0u8; len];
        assert_eq!(write_connect_line(fields, &mut out), len);
        out
    }

    #[test]
    fn a_short_buffer_gets_a_cut_line_and_the_whole_length() {
        let fields = Connect::default();
        let whole = hand_line(&fields);
        let mut out = [0u8; 20];
        assert_eq!(write_connect_line(&fields, &mut out), whole.len());
        // Only whole pieces are written: the cut is at a piece boundary.
        assert!(whole.starts_with(&out[..b"CONNECT {".len()]));
    }

    proptest! {
        /// Byte for byte what serde-json-core writes, escapes included.
        #[test]
        fn same_bytes_as_serde_json_core(
            name in proptest::option::of("\\PC{0,12}|[\\x00-\\x1f\"\\\\]{0,6}"),
            user in proptest::option::of(".{0,8}"),
            pass in proptest::option::of("[\\x00-\\x7f]{0,8}"),
            token in proptest::option::of(".{0,8}"),
            jwt in proptest::option::of("[A-Za-z0-9._-]{0,30}"),
            nkey in proptest::option::of("[A-Z0-9]{0,56}"),
            sig in proptest::option::of("[A-Za-z0-9_-]{0,86}"),
            flags in any::<[bool; 6]>(),
            protocol in any::<u8>(),
        ) {
            let fields = Connect {
                verbose: flags[0],
                pedantic: flags[1],
                tls_required: flags[2],
                name: name.as_deref(),
                protocol,
                echo: flags[3],
                headers: flags[4],
                no_responders: flags[5],
                user: user.as_deref(),
                pass: pass.as_deref(),
                auth_token: token.as_deref(),
                jwt: jwt.as_deref(),
                nkey: nkey.as_deref(),
                sig: sig.as_deref(),
                ..Connect::default()
            };
            prop_assert_eq!(hand_line(&fields), serde_line(&fields));
        }
    }
}
