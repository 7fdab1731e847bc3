//! Serializers (raw, JSON; MessagePack and CBOR behind the `msgpack` and
//! `cbor` features) and per-message compression (snappy, deflate, zlib).
//!
//! Crates: serde_json, rmp-serde, ciborium for the formats; `snap` (raw
//! snappy, as python-snappy's `snappy.compress` which kombu uses) and
//! `miniz_oxide` (raw DEFLATE and zlib) for compression.

use serde::{de::DeserializeOwned, Serialize};

use super::Error;

/// Largest payload a receiver decompresses (a bomb is an error, not OOM).
pub const MAX_DECOMPRESSED: usize = 64 << 20;

/// How a value becomes payload bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// Bytes as given (`application/data`, encoding `binary`, as kombu's raw).
    Raw,
    /// JSON via serde_json (`application/json`, `utf-8`). The default.
    #[default]
    Json,
    /// MessagePack via rmp-serde (`application/x-msgpack`, `binary`).
    #[cfg(feature = "msgpack")]
    MsgPack,
    /// CBOR via ciborium (`application/cbor`, `binary`).
    #[cfg(feature = "cbor")]
    Cbor,
}

impl Serializer {
    /// By kombu's name: `raw`, `json`, `msgpack`, `cbor`.
    pub fn from_name(name: &str) -> Result<Serializer, Error> {
        match name {
            "raw" => Ok(Serializer::Raw),
            "json" => Ok(Serializer::Json),
            #[cfg(feature = "msgpack")]
            "msgpack" => Ok(Serializer::MsgPack),
            #[cfg(feature = "cbor")]
            "cbor" => Ok(Serializer::Cbor),
            #[cfg(not(feature = "msgpack"))]
            "msgpack" => Err(Error::Unsupported(
                "serializer \"msgpack\" needs courier's `msgpack` feature".into(),
            )),
            #[cfg(not(feature = "cbor"))]
            "cbor" => Err(Error::Unsupported(
                "serializer \"cbor\" needs courier's `cbor` feature".into(),
            )),
            _ => Err(Error::Unsupported(format!(
                "unknown serializer {name:?} (raw, json, msgpack, cbor)"
            ))),
        }
    }

    /// The content type it puts on messages.
    pub fn content_type(self) -> &'static str {
        match self {
            Serializer::Raw => "application/data",
            Serializer::Json => "application/json",
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => "application/x-msgpack",
            #[cfg(feature = "cbor")]
            Serializer::Cbor => "application/cbor",
        }
    }

    /// The content encoding it puts on messages.
    pub fn content_encoding(self) -> &'static str {
        match self {
            Serializer::Json => "utf-8",
            _ => "binary",
        }
    }

    /// The serializer a content type names (`None`: unknown, read raw).
    pub fn for_content_type(content_type: &str) -> Option<Serializer> {
        match content_type {
            "application/json" => Some(Serializer::Json),
            "application/data" | "application/octet-stream" => Some(Serializer::Raw),
            #[cfg(feature = "msgpack")]
            "application/x-msgpack" | "application/msgpack" => Some(Serializer::MsgPack),
            #[cfg(feature = "cbor")]
            "application/cbor" => Some(Serializer::Cbor),
            _ => None,
        }
    }

    /// Serializes `value` into `out` (appending).
    pub fn serialize<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match self {
            Serializer::Raw => Err(Error::Serialize(
                "the raw serializer takes bytes: use send_bytes".into(),
            )),
            Serializer::Json => {
                serde_json::to_writer(out, value).map_err(|e| Error::Serialize(e.to_string()))
            }
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => rmp_serde::encode::write_named(out, value)
                .map_err(|e| Error::Serialize(e.to_string())),
            #[cfg(feature = "cbor")]
            Serializer::Cbor => {
                ciborium::into_writer(value, out).map_err(|e| Error::Serialize(e.to_string()))
            }
        }
    }

    /// Deserializes a payload.
    pub fn deserialize<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, Error> {
        match self {
            Serializer::Raw => Err(Error::Deserialize(
                "a raw payload has no structure: read payload() instead".into(),
            )),
            Serializer::Json => {
                serde_json::from_slice(bytes).map_err(|e| Error::Deserialize(e.to_string()))
            }
            #[cfg(feature = "msgpack")]
            Serializer::MsgPack => {
                rmp_serde::from_slice(bytes).map_err(|e| Error::Deserialize(e.to_string()))
            }
            #[cfg(feature = "cbor")]
            Serializer::Cbor => {
                ciborium::from_reader(bytes).map_err(|e| Error::Deserialize(e.to_string()))
            }
        }
    }
}

/// Per-message compression, named as kombu names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// None (the default).
    #[default]
    None,
    /// Raw (unframed) snappy, as python-snappy's `snappy.compress`.
    Snappy,
    /// Raw DEFLATE (RFC 1951), as `zlib.compressobj(wbits=-15)`.
    Deflate,
    /// zlib (RFC 1950), as Python's `zlib.compress` (kombu's `zlib`).
    Zlib,
}

impl Compression {
    /// By name: `none`, `snappy`, `deflate`, `zlib` (kombu's `gzip` alias too).
    pub fn from_name(name: &str) -> Result<Compression, Error> {
        match name {
            "" | "none" => Ok(Compression::None),
            "snappy" => Ok(Compression::Snappy),
            "deflate" => Ok(Compression::Deflate),
            "zlib" | "gzip" => Ok(Compression::Zlib),
            _ => Err(Error::Unsupported(format!(
                "unknown compression {name:?} (none, snappy, deflate, zlib)"
            ))),
        }
    }

    /// The name carried on the wire (`None` for no compression).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Snappy => Some("snappy"),
            Compression::Deflate => Some("deflate"),
            Compression::Zlib => Some("zlib"),
        }
    }

    /// The code in the NSQ envelope's compression byte.
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Snappy => 1,
            Compression::Deflate => 2,
            Compression::Zlib => 3,
        }
    }

    /// From the NSQ envelope's compression byte.
    pub fn from_code(code: u8) -> Option<Compression> {
        Some(match code {
            0 => Compression::None,
            1 => Compression::Snappy,
            2 => Compression::Deflate,
            3 => Compression::Zlib,
            _ => return None,
        })
    }

    /// kombu's `compression` header value (its content type), so kombu
    /// consumers decompress by themselves; deflate has none in kombu.
    pub fn kombu_header(self) -> Option<&'static str> {
        match self {
            Compression::Zlib => Some("application/x-gzip"),
            Compression::Snappy => Some("application/x-snappy"),
            _ => None,
        }
    }

    /// From kombu's `compression` header value.
    pub fn from_kombu_header(v: &str) -> Option<Compression> {
        match v {
            "application/x-gzip" | "zlib" | "gzip" => Some(Compression::Zlib),
            "application/x-snappy" | "snappy" => Some(Compression::Snappy),
            "deflate" => Some(Compression::Deflate),
            _ => None,
        }
    }

    /// Compresses `data` (a copy for `None`).
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match self {
            Compression::None => data.to_vec(),
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(|e| Error::Compression(e.to_string()))?,
            Compression::Deflate => miniz_oxide::deflate::compress_to_vec(data, 6),
            Compression::Zlib => miniz_oxide::deflate::compress_to_vec_zlib(data, 6),
        })
    }

    /// Decompresses `data`, refusing results over [`MAX_DECOMPRESSED`].
    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let bad = |what: &str, e: String| Error::Compression(format!("{what}: {e}"));
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Snappy => {
                let n =
                    snap::raw::decompress_len(data).map_err(|e| bad("snappy", e.to_string()))?;
                if n > MAX_DECOMPRESSED {
                    return Err(bad("snappy", format!("{n} bytes is over the limit")));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| bad("snappy", e.to_string()))
            }
            Compression::Deflate => {
                miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_DECOMPRESSED)
                    .map_err(|e| bad("deflate", format!("{:?}", e.status)))
            }
            Compression::Zlib => {
                miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_DECOMPRESSED)
                    .map_err(|e| bad("zlib", format!("{:?}", e.status)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_and_rejects_garbage() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        for c in [
            Compression::None,
            Compression::Snappy,
            Compression::Deflate,
            Compression::Zlib,
        ] {
            let z = c.compress(&data).unwrap();
            if c != Compression::None {
                assert!(z.len() < data.len() / 4, "{c:?} compressed to {}", z.len());
                assert!(c.decompress(&[0xff, 0xfe, 0x01, 0x02]).is_err(), "{c:?}");
            }
            assert_eq!(c.decompress(&z).unwrap(), data);
            assert_eq!(Compression::from_code(c.code()), Some(c));
        }
        assert_eq!(Compression::from_name("gzip").unwrap(), Compression::Zlib);
        assert!(Compression::from_name("lzma").is_err());
    }

    #[test]
    fn json_round_trip_and_raw_refuses_values() {
        let mut out = Vec::new();
        Serializer::Json
            .serialize(&vec![1, 2, 3], &mut out)
            .unwrap();
        assert_eq!(out, b"[1,2,3]");
        let back: Vec<u32> = Serializer::Json.deserialize(&out).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
        assert!(Serializer::Raw.serialize(&1, &mut out).is_err());
        assert!(Serializer::Json.deserialize::<Vec<u32>>(b"{").is_err());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trip() {
        let mut out = Vec::new();
        Serializer::MsgPack
            .serialize(&("a", 7u8), &mut out)
            .unwrap();
        assert_eq!(out, [0x92, 0xa1, b'a', 0x07]);
        let back: (String, u8) = Serializer::MsgPack.deserialize(&out).unwrap();
        assert_eq!(back, ("a".to_string(), 7));
        assert_eq!(
            Serializer::for_content_type("application/x-msgpack"),
            Some(Serializer::MsgPack)
        );
    }

    #[cfg(feature = "cbor")]
    #[test]
    fn cbor_round_trip() {
        let mut out = Vec::new();
        Serializer::Cbor.serialize(&[1u8, 2], &mut out).unwrap();
        assert_eq!(out, [0x82, 0x01, 0x02]);
        let back: Vec<u8> = Serializer::Cbor.deserialize(&out).unwrap();
        assert_eq!(back, vec![1, 2]);
    }

    #[test]
    fn feature_gated_serializers_say_which_feature() {
        #[cfg(not(feature = "msgpack"))]
        assert!(Serializer::from_name("msgpack")
            .unwrap_err()
            .to_string()
            .contains("`msgpack` feature"));
        assert!(Serializer::from_name("pickle").is_err());
    }
}
