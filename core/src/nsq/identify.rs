//! nsqd's answers to IDENTIFY and AUTH.
//!
//! With `feature_negotiation` nsqd answers IDENTIFY with a JSON object of
//! its settings and what it agreed to (TLS, compression, auth); without it,
//! a plain `OK`. Parsed with serde-json-core into fixed-size types.

use core::fmt;

use serde::Deserialize;

use crate::nsq::frame::OK;

/// Longest `version` string kept.
pub const VERSION_CAPACITY: usize = 32;
/// Longest auth `identity` kept.
pub const IDENTITY_CAPACITY: usize = 128;
/// Longest auth `identity_url` kept.
pub const IDENTITY_URL_CAPACITY: usize = 256;

/// nsqd's IDENTIFY response (feature negotiation on).
///
/// Fields nsqd leaves out (older versions) take their `Default`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(default)]
pub struct IdentifyResponse {
    /// Highest RDY count nsqd accepts from this client.
    pub max_rdy_count: i64,
    /// nsqd's version, e.g. `1.3.0`.
    pub version: heapless::String<VERSION_CAPACITY>,
    /// Highest `msg_timeout` (ms) a client may ask for.
    pub max_msg_timeout: u64,
    /// Milliseconds before an un-FINished message is redelivered.
    pub msg_timeout: u64,
    /// nsqd agreed to TLS: the handshake starts right after this response.
    pub tls_v1: bool,
    /// nsqd agreed to DEFLATE.
    pub deflate: bool,
    /// The DEFLATE level nsqd uses.
    pub deflate_level: i32,
    /// Highest DEFLATE level nsqd allows.
    pub max_deflate_level: i32,
    /// nsqd agreed to snappy.
    pub snappy: bool,
    /// Percentage of messages sampled (0 = all).
    pub sample_rate: i32,
    /// nsqd requires AUTH before SUB/PUB.
    pub auth_required: bool,
    /// Bytes nsqd buffers before writing to this client.
    pub output_buffer_size: i64,
    /// Milliseconds nsqd waits before flushing its buffer.
    pub output_buffer_timeout: i64,
}

impl IdentifyResponse {
    /// The compression nsqd agreed to, if any (snappy wins if both were
    /// agreed, as nsqd itself applies snappy first).
    pub fn compression(&self) -> Option<Compression> {
        if self.snappy {
            Some(Compression::Snappy)
        } else if self.deflate {
            Some(Compression::Deflate {
                level: self.deflate_level.clamp(0, 9) as u8,
            })
        } else {
            None
        }
    }
}

/// A stream compression nsqd agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Compression {
    /// Framed snappy, both directions.
    Snappy,
    /// Raw DEFLATE (no zlib header), 32 KiB window, both directions.
    Deflate {
        /// The level nsqd compresses with (the client may pick its own).
        level: u8,
    },
}

/// The answer to IDENTIFY.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdentifyReply {
    /// Plain `OK`: feature negotiation was off, nothing was negotiated.
    Ok,
    /// The negotiated settings.
    Negotiated(IdentifyResponse),
}

/// nsqd's answer to AUTH, relayed from its auth server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuthResponse {
    /// Who the secret identifies.
    pub identity: heapless::String<IDENTITY_CAPACITY>,
    /// Where to learn more about the identity.
    pub identity_url: heapless::String<IDENTITY_URL_CAPACITY>,
    /// How many permissions the identity has.
    pub permission_count: i64,
}

/// A response that is not the JSON (or `OK`) expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseError {
    /// The response is not valid JSON of the expected shape, or a string in
    /// it is longer than this client keeps.
    InvalidJson(serde_json_core::de::Error),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::InvalidJson(e) => write!(
                f,
                "nsqd's JSON response could not be parsed ({e}); the server may not be a compatible nsqd"
            ),
        }
    }
}

impl core::error::Error for ResponseError {}

/// Scratch for unescaping strings; longer escaped strings fail to parse.
const UNESCAPE_CAPACITY: usize = IDENTITY_URL_CAPACITY;

fn parse_json<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, ResponseError> {
    let mut scratch = [0u8; UNESCAPE_CAPACITY];
    serde_json_core::from_slice_escaped(data, &mut scratch)
        .map(|(value, _)| value)
        .map_err(ResponseError::InvalidJson)
}

/// Parses the data of the response frame that answers IDENTIFY.
pub fn parse_identify_response(data: &[u8]) -> Result<IdentifyReply, ResponseError> {
    if data == OK {
        return Ok(IdentifyReply::Ok);
    }
    parse_json(data).map(IdentifyReply::Negotiated)
}

/// Parses the data of the response frame that answers AUTH.
pub fn parse_auth_response(data: &[u8]) -> Result<AuthResponse, ResponseError> {
    parse_json(data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Captured from nsqd 1.3.0 answering IDENTIFY with feature_negotiation.
    pub(crate) const NSQD_1_3_0_IDENTIFY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;

    /// Captured from nsqd 1.3.0 (with --tls-cert/--tls-key) answering
    /// IDENTIFY with snappy, deflate level 3, and TLS + snappy.
    pub(crate) const NSQD_1_3_0_SNAPPY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":true,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;
    pub(crate) const NSQD_1_3_0_DEFLATE_3: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":true,"deflate_level":3,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;
    pub(crate) const NSQD_1_3_0_TLS_SNAPPY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":true,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":true,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#;

    fn negotiated(data: &[u8]) -> IdentifyResponse {
        match parse_identify_response(data).unwrap() {
            IdentifyReply::Negotiated(r) => r,
            IdentifyReply::Ok => panic!("expected JSON"),
        }
    }

    #[test]
    fn parses_captured_compression_and_tls_responses() {
        let r = negotiated(NSQD_1_3_0_SNAPPY);
        assert_eq!(r.compression(), Some(Compression::Snappy));
        assert!(!r.tls_v1);
        let r = negotiated(NSQD_1_3_0_DEFLATE_3);
        assert_eq!(r.compression(), Some(Compression::Deflate { level: 3 }));
        assert_eq!(r.max_deflate_level, 6);
        let r = negotiated(NSQD_1_3_0_TLS_SNAPPY);
        assert!(r.tls_v1);
        assert_eq!(r.compression(), Some(Compression::Snappy));
    }

    #[test]
    fn parses_nsqd_1_3_0_response() {
        let IdentifyReply::Negotiated(r) = parse_identify_response(NSQD_1_3_0_IDENTIFY).unwrap()
        else {
            panic!("expected JSON")
        };
        assert_eq!(r.max_rdy_count, 2500);
        assert_eq!(r.version.as_str(), "1.3.0");
        assert_eq!(r.max_msg_timeout, 900_000);
        assert_eq!(r.msg_timeout, 60_000);
        assert!(!r.tls_v1 && !r.deflate && !r.snappy && !r.auth_required);
        assert_eq!((r.deflate_level, r.max_deflate_level), (6, 6));
        assert_eq!(r.sample_rate, 0);
        assert_eq!(r.output_buffer_size, 16384);
        assert_eq!(r.output_buffer_timeout, 250);
        assert_eq!(r.compression(), None);
    }

    #[test]
    fn plain_ok_when_negotiation_off() {
        assert_eq!(parse_identify_response(b"OK"), Ok(IdentifyReply::Ok));
    }

    #[test]
    fn unknown_and_missing_fields_tolerated() {
        let IdentifyReply::Negotiated(r) = parse_identify_response(
            br#"{"snappy":true,"future_field":[1,{"a":2}],"deflate":true,"deflate_level":3}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.compression(), Some(Compression::Snappy));
        assert_eq!(r.max_rdy_count, 0);
        let IdentifyReply::Negotiated(r) =
            parse_identify_response(br#"{"deflate":true,"deflate_level":3}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.compression(), Some(Compression::Deflate { level: 3 }));
    }

    #[test]
    fn bad_json_is_typed() {
        assert!(matches!(
            parse_identify_response(b"{\"max_rdy_count\":"),
            Err(ResponseError::InvalidJson(_))
        ));
        let long = std::format!("{{\"version\":\"{}\"}}", "9".repeat(40));
        assert!(parse_identify_response(long.as_bytes()).is_err());
        let text = std::format!("{}", parse_identify_response(b"nope").unwrap_err());
        assert!(text.contains("nsqd"), "{text}");
    }

    #[test]
    fn parses_auth_response_with_escapes() {
        let r = parse_auth_response(
            br#"{"identity":"svc \"a\"","identity_url":"http://auth\/u\/1","permission_count":2}"#,
        )
        .unwrap();
        assert_eq!(r.identity.as_str(), "svc \"a\"");
        assert_eq!(r.identity_url.as_str(), "http://auth/u/1");
        assert_eq!(r.permission_count, 2);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_identify_response(&bytes);
            let _ = parse_auth_response(&bytes);
        }
    }
}
