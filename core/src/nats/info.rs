//! The server's INFO, parsed from JSON into fixed-capacity (heapless) types.
//!
//! Unknown fields are ignored so newer servers keep working. Field sizes:
//! `server_id` and `nonce` are essential (the id identifies the server, the
//! nonce is signed for nkey auth) and fail with
//! [`InfoError::FieldTooLong`] when longer than stored; every other string
//! is informational and is cut at its capacity (on a UTF-8 boundary).
//! `connect_urls` keeps the first [`MAX_CONNECT_URLS`] URLs of at most
//! [`URL_CAPACITY`] bytes; the others are counted in
//! [`ServerInfo::connect_urls_ignored`], not an error.

use core::fmt;

use heapless::{String, Vec};
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use super::error::InfoError;

/// Capacity of ids and names (`server_id` is a 56-character nkey).
pub const ID_CAPACITY: usize = 64;
/// Capacity of version strings.
pub const VERSION_CAPACITY: usize = 32;
/// Capacity of one connect URL (`host:port`; IPv6 included).
pub const URL_CAPACITY: usize = 64;
/// How many connect URLs are kept.
pub const MAX_CONNECT_URLS: usize = 8;
/// Capacity of `host` and `client_ip`.
pub const HOST_CAPACITY: usize = 64;
/// Scratch for unescaping one JSON string (strings with `\` escapes only).
const UNESCAPE_SCRATCH: usize = 256;

/// What the server says about itself in INFO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Unique id of the server (essential).
    pub server_id: String<ID_CAPACITY>,
    /// Configured server name (cut at capacity).
    pub server_name: String<ID_CAPACITY>,
    /// Server version, e.g. `2.10.22` (cut at capacity).
    pub version: String<VERSION_CAPACITY>,
    /// Go version the server was built with (cut at capacity).
    pub go: String<VERSION_CAPACITY>,
    /// Host the server listens on (cut at capacity).
    pub host: String<HOST_CAPACITY>,
    /// Port the server listens on.
    pub port: u16,
    /// Protocol version (1 supports INFO updates and headers).
    pub proto: i32,
    /// The server supports headers (HPUB/HMSG).
    pub headers: bool,
    /// Largest payload (headers included) the server accepts.
    pub max_payload: u64,
    /// The server requires credentials.
    pub auth_required: bool,
    /// The server requires TLS.
    pub tls_required: bool,
    /// The server offers TLS.
    pub tls_available: bool,
    /// The server's id for this connection.
    pub client_id: u64,
    /// Our address as the server sees it (cut at capacity).
    pub client_ip: String<HOST_CAPACITY>,
    /// Nonce to sign for nkey authentication (essential).
    pub nonce: String<ID_CAPACITY>,
    /// Cluster name (cut at capacity).
    pub cluster: String<ID_CAPACITY>,
    /// Other servers of the cluster a client may reconnect to.
    pub connect_urls: Vec<String<URL_CAPACITY>, MAX_CONNECT_URLS>,
    /// URLs that did not fit (too many or too long).
    pub connect_urls_ignored: usize,
    /// Lame duck mode: the server is shutting down; move elsewhere.
    pub ldm: bool,
    /// JetStream is enabled on the server.
    pub jetstream: bool,
}

impl ServerInfo {
    /// Parses the JSON object of an INFO line.
    pub fn from_json(json: &[u8]) -> Result<Self, InfoError> {
        let mut scratch = [0u8; UNESCAPE_SCRATCH];
        let (raw, _) = serde_json_core::from_slice_escaped::<RawInfo>(json, &mut scratch)
            .map_err(|_| InfoError::InvalidJson)?;
        raw.server_id.check("server_id")?;
        raw.nonce.check("nonce")?;
        Ok(ServerInfo {
            server_id: raw.server_id.text,
            server_name: raw.server_name.text,
            version: raw.version.text,
            go: raw.go.text,
            host: raw.host.text,
            port: raw.port,
            proto: raw.proto,
            headers: raw.headers,
            max_payload: raw.max_payload,
            auth_required: raw.auth_required,
            tls_required: raw.tls_required,
            tls_available: raw.tls_available,
            client_id: raw.client_id,
            client_ip: raw.client_ip.text,
            nonce: raw.nonce.text,
            cluster: raw.cluster.text,
            connect_urls: raw.connect_urls.urls,
            connect_urls_ignored: raw.connect_urls.ignored,
            ldm: raw.ldm,
            jetstream: raw.jetstream,
        })
    }
}

/// What a [`Session`](super::Session) keeps of the server's INFO: its
/// `I` type parameter. [`ServerInfo`] (the default) keeps everything,
/// connect URLs included (~1.1 KiB); [`EssentialInfo`] keeps only what the
/// session itself uses (a few bytes), for devices that do not look at the
/// rest.
pub trait InfoStorage: Sized {
    /// Parses the JSON object of an INFO line.
    fn from_info_json(json: &[u8]) -> Result<Self, InfoError>;
    /// Largest payload (headers included) the server accepts.
    fn max_payload(&self) -> u64;
    /// The server supports headers (HPUB/HMSG).
    fn headers(&self) -> bool;
    /// The server is in lame duck mode.
    fn lame_duck(&self) -> bool;
    /// The nonce to sign for NKey/JWT auth (empty when none was sent or
    /// the storage drops it, as [`EssentialInfo`] does: use [`ServerInfo`]
    /// for NKey/JWT auth).
    fn nonce(&self) -> &str {
        ""
    }
}

impl InfoStorage for ServerInfo {
    fn from_info_json(json: &[u8]) -> Result<Self, InfoError> {
        ServerInfo::from_json(json)
    }
    fn max_payload(&self) -> u64 {
        self.max_payload
    }
    fn headers(&self) -> bool {
        self.headers
    }
    fn lame_duck(&self) -> bool {
        self.ldm
    }
    fn nonce(&self) -> &str {
        &self.nonce
    }
}

/// The INFO fields the session needs and nothing else (no strings):
/// `Session<S, SUBS, REQS, EssentialInfo>` saves ~1.1 KiB of state on a
/// device that never reads the server's id, version or connect URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct EssentialInfo {
    /// Largest payload (headers included) the server accepts.
    pub max_payload: u64,
    /// Protocol version (1 supports INFO updates and headers).
    pub proto: i32,
    /// The server supports headers (HPUB/HMSG).
    pub headers: bool,
    /// The server requires credentials.
    pub auth_required: bool,
    /// The server requires TLS.
    pub tls_required: bool,
    /// Lame duck mode: the server is shutting down; move elsewhere.
    pub ldm: bool,
}

impl InfoStorage for EssentialInfo {
    fn from_info_json(json: &[u8]) -> Result<Self, InfoError> {
        // Hand-written (no serde deserializer linked for six fields).
        super::info_scan::essential_info(json)
    }
    fn max_payload(&self) -> u64 {
        self.max_payload
    }
    fn headers(&self) -> bool {
        self.headers
    }
    fn lame_duck(&self) -> bool {
        self.ldm
    }
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct RawInfo {
    server_id: Bounded<ID_CAPACITY>,
    server_name: Bounded<ID_CAPACITY>,
    version: Bounded<VERSION_CAPACITY>,
    go: Bounded<VERSION_CAPACITY>,
    host: Bounded<HOST_CAPACITY>,
    port: u16,
    proto: i32,
    headers: bool,
    max_payload: u64,
    auth_required: bool,
    tls_required: bool,
    tls_available: bool,
    client_id: u64,
    client_ip: Bounded<HOST_CAPACITY>,
    nonce: Bounded<ID_CAPACITY>,
    cluster: Bounded<ID_CAPACITY>,
    connect_urls: ConnectUrls,
    ldm: bool,
    jetstream: bool,
}

/// A string cut at `N` bytes that remembers its original length.
#[derive(Default)]
struct Bounded<const N: usize> {
    text: String<N>,
    len: usize,
}

impl<const N: usize> Bounded<N> {
    fn truncated(&self) -> bool {
        self.len > N
    }

    fn check(&self, field: &'static str) -> Result<(), InfoError> {
        if self.truncated() {
            Err(InfoError::FieldTooLong {
                field,
                len: self.len,
                max: N,
            })
        } else {
            Ok(())
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bounded<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for V<N> {
            type Value = Bounded<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Bounded<N>, E> {
                let mut cut = s.len().min(N);
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                let mut text = String::new();
                // Cannot fail: `cut <= N`.
                let _ = text.push_str(s.get(..cut).unwrap_or_default());
                Ok(Bounded { text, len: s.len() })
            }
        }
        d.deserialize_str(V::<N>)
    }
}

#[derive(Default)]
struct ConnectUrls {
    urls: Vec<String<URL_CAPACITY>, MAX_CONNECT_URLS>,
    ignored: usize,
}

impl<'de> Deserialize<'de> for ConnectUrls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConnectUrls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of URLs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConnectUrls, A::Error> {
                let mut out = ConnectUrls::default();
                while let Some(url) = seq.next_element::<Bounded<URL_CAPACITY>>()? {
                    // A cut URL would point at the wrong host: drop it instead.
                    if url.truncated() || out.urls.push(url.text).is_err() {
                        out.ignored += 1;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Captured from nats-server v2.15.1 (`nats-server -p 14222 -a 127.0.0.1`),
    /// the JSON of the first line it sends.
    pub(crate) const REAL_INFO: &[u8] = br#"{"server_id":"NDY353TP6KJ2NNIWYQKQG64IGW6DIHPURYCLWFBVBT5YL7QXZSXDXBZW","server_name":"NDY353TP6KJ2NNIWYQKQG64IGW6DIHPURYCLWFBVBT5YL7QXZSXDXBZW","version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":14222,"headers":true,"max_payload":1048576,"client_id":5,"client_ip":"127.0.0.1","api_lvl":5,"xkey":"XDRCKT66VT3FQCXNKVXMLRHVNM3YGKQ4G2NBTKTODJ7I2QXIDUHGCUX2"}"#;

    /// Captured from a two-node nats-server 2.15.1 cluster (`--cluster_name
    /// east`, routes between ports 16230 and 16231).
    const REAL_CLUSTER_INFO: &[u8] = br#"{"server_id":"NCIRWWLVFZWR5JJNNBQ5SYY7EI4MI5ZU66QMNQD3L6S72N64VNUZ3F2Q","server_name":"NCIRWWLVFZWR5JJNNBQ5SYY7EI4MI5ZU66QMNQD3L6S72N64VNUZ3F2Q","version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":14230,"headers":true,"max_payload":1048576,"client_id":11,"client_ip":"127.0.0.1","cluster":"east","connect_urls":["127.0.0.1:14230","127.0.0.1:14231"],"api_lvl":5,"xkey":"XBZUN62SVR2SWUT6JGQFKI5JWSPXSPWAE6AO33SAQSBAGZWHIDSD67K4"}"#;

    /// Captured from nats-server 2.15.1 started with `--user alice --pass secret`.
    pub(crate) const REAL_AUTH_INFO: &[u8] = br#"{"server_id":"NCWTWVYFUKBBOPZYRQDSIMFFV27WUWHQGA3E43UDTIKNCGHT6LAAKTP7","server_name":"NCWTWVYFUKBBOPZYRQDSIMFFV27WUWHQGA3E43UDTIKNCGHT6LAAKTP7","version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":14232,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":5,"client_ip":"127.0.0.1","api_lvl":5,"xkey":"XCAXUMDQUYZ3IZ3MXZIC472LT3FSPADRSVD3PDTLD7DMDSZ5WEFRS5BI"}"#;

    #[test]
    fn parses_real_cluster_and_auth_info() {
        let info = ServerInfo::from_json(REAL_CLUSTER_INFO).unwrap();
        assert_eq!(info.cluster, "east");
        assert_eq!(info.connect_urls.len(), 2);
        assert_eq!(info.connect_urls[0], "127.0.0.1:14230");
        assert_eq!(info.connect_urls[1], "127.0.0.1:14231");
        assert_eq!(info.connect_urls_ignored, 0);
        let info = ServerInfo::from_json(REAL_AUTH_INFO).unwrap();
        assert!(info.auth_required);
    }

    #[test]
    fn parses_real_server_info() {
        let info = ServerInfo::from_json(REAL_INFO).unwrap();
        assert_eq!(
            info.server_id,
            "NDY353TP6KJ2NNIWYQKQG64IGW6DIHPURYCLWFBVBT5YL7QXZSXDXBZW"
        );
        assert_eq!(info.version, "2.15.1");
        assert_eq!(info.go, "go1.27.2");
        assert_eq!(info.host, "127.0.0.1");
        assert_eq!(info.port, 14222);
        assert_eq!(info.proto, 1);
        assert!(info.headers);
        assert_eq!(info.max_payload, 1_048_576);
        assert_eq!(info.client_id, 5);
        assert_eq!(info.client_ip, "127.0.0.1");
        assert!(!info.auth_required);
        assert!(info.connect_urls.is_empty());
    }

    #[test]
    fn cluster_info_with_urls_auth_and_ldm() {
        let json = br#"{"server_id":"S1","auth_required":true,"tls_required":false,"tls_available":true,"nonce":"abc\u003cdef","cluster":"east","connect_urls":["10.0.0.1:4222","[::1]:4223"],"ldm":true,"max_payload":65536,"nested":{"a":[1,2,{"b":null}]}}"#;
        let info = ServerInfo::from_json(json).unwrap();
        assert!(info.auth_required);
        assert!(info.tls_available);
        assert_eq!(info.nonce, "abc<def");
        assert_eq!(info.cluster, "east");
        assert_eq!(info.connect_urls.len(), 2);
        assert_eq!(info.connect_urls[1], "[::1]:4223");
        assert!(info.ldm);
        assert_eq!(info.max_payload, 65536);
    }

    #[test]
    fn extra_and_overlong_urls_are_ignored_not_errors() {
        let mut json = std::string::String::from(r#"{"server_id":"S","connect_urls":["#);
        for i in 0..12 {
            json.push_str(&std::format!("\"10.0.0.{i}:4222\","));
        }
        json.push_str(&std::format!("\"{}:1\"]}}", "h".repeat(100)));
        let info = ServerInfo::from_json(json.as_bytes()).unwrap();
        assert_eq!(info.connect_urls.len(), MAX_CONNECT_URLS);
        assert_eq!(info.connect_urls_ignored, 12 - MAX_CONNECT_URLS + 1);
    }

    #[test]
    fn long_informational_fields_are_cut_essential_ones_fail() {
        let long = "v".repeat(100);
        let json = std::format!(r#"{{"server_id":"S","version":"{long}"}}"#);
        let info = ServerInfo::from_json(json.as_bytes()).unwrap();
        assert_eq!(info.version.len(), VERSION_CAPACITY);

        let json = std::format!(r#"{{"server_id":"S","nonce":"{long}"}}"#);
        assert_eq!(
            ServerInfo::from_json(json.as_bytes()),
            Err(InfoError::FieldTooLong {
                field: "nonce",
                len: 100,
                max: ID_CAPACITY
            })
        );
    }

    #[test]
    fn essential_info_reads_the_same_fields_from_real_info() {
        for json in [REAL_INFO, REAL_AUTH_INFO] {
            let full = ServerInfo::from_json(json).unwrap();
            let essential = EssentialInfo::from_info_json(json).unwrap();
            assert_eq!(
                (essential.max_payload, essential.proto, essential.headers),
                (full.max_payload, full.proto, full.headers)
            );
            assert_eq!(
                (
                    essential.auth_required,
                    essential.tls_required,
                    essential.ldm
                ),
                (full.auth_required, full.tls_required, full.ldm)
            );
        }
        let ldm =
            br#"{"server_id":"S","connect_urls":["a:1","b:2"],"ldm":true,"x":{"y":[1,"\u0041"]}}"#;
        assert!(EssentialInfo::from_info_json(ldm).unwrap().lame_duck());
        assert_eq!(
            EssentialInfo::from_info_json(b"{nope"),
            Err(InfoError::InvalidJson)
        );
        assert!(core::mem::size_of::<EssentialInfo>() <= 24);
    }

    #[test]
    fn garbage_is_invalid_json() {
        assert_eq!(
            ServerInfo::from_json(b"not json"),
            Err(InfoError::InvalidJson)
        );
        assert_eq!(
            ServerInfo::from_json(br#"{"port":"x"}"#),
            Err(InfoError::InvalidJson)
        );
    }
}
