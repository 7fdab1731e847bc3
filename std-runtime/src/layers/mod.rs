//! Push-based stream layers between a transport and a sans-IO core: TLS
//! (rustls), framed snappy and raw DEFLATE.
//!
//! Each layer takes whatever bytes arrived (any split) and appends what it
//! can decode to an output `Vec`, keeping partial records/chunks inside, so
//! it fits any transport (io_uring owned buffers, epoll, blocking) and any
//! core that consumes bytes. [`Stack`] composes them in the order nsqd
//! expects: `transport -> TLS -> compression -> core`.

mod deflate;
mod snappy;
mod tls;

use std::fmt;

pub use deflate::{DeflateDecoder, DeflateEncoder};
pub use snappy::{SnappyDecoder, SnappyEncoder};
pub(crate) use tls::{receive_buffer_full, TlsSession};
pub use tls::{TlsConfig, TlsLayer};

/// A layer could not decode its input or set itself up.
#[derive(Debug)]
pub enum LayerError {
    /// TLS failed (handshake, certificate verification, record error).
    Tls(rustls::Error),
    /// The TLS configuration is unusable (bad PEM, bad key, bad name).
    TlsConfig(String),
    /// The snappy stream is corrupt (bad chunk, CRC mismatch, bad data).
    Snappy(String),
    /// The DEFLATE stream is corrupt.
    Deflate(String),
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Tls(rustls::Error::InvalidCertificate(e)) => write!(
                f,
                "TLS: the server's certificate was refused ({e:?}): it is not signed by a CA in \
                 the configured root certificates or does not name this host; give the CA that \
                 signed the server's certificate (TlsConfig::ca_pem) or the right server name"
            ),
            LayerError::Tls(rustls::Error::AlertReceived(alert)) => write!(
                f,
                "TLS: the server aborted the handshake with alert {alert:?} (does it require a \
                 client certificate, or refuse ours? see TlsConfig::client_cert_pem)"
            ),
            LayerError::Tls(e) => write!(f, "TLS: {e}"),
            LayerError::TlsConfig(e) => write!(f, "TLS configuration: {e}"),
            LayerError::Snappy(e) => write!(f, "snappy stream corrupt: {e}; reconnect"),
            LayerError::Deflate(e) => write!(f, "DEFLATE stream corrupt: {e}; reconnect"),
        }
    }
}

impl std::error::Error for LayerError {}

impl From<rustls::Error> for LayerError {
    fn from(e: rustls::Error) -> Self {
        LayerError::Tls(e)
    }
}

/// A negotiated compression layer (both directions).
pub enum Codec {
    /// Framed snappy (boxed: snap's encoder carries its hash table).
    Snappy(Box<(SnappyEncoder, SnappyDecoder)>),
    /// Raw DEFLATE with a 32 KiB window.
    Deflate(DeflateEncoder, DeflateDecoder),
}

impl Codec {
    /// A snappy codec.
    pub fn snappy() -> Self {
        Codec::Snappy(Box::new((SnappyEncoder::new(), SnappyDecoder::new())))
    }

    /// A DEFLATE codec compressing at `level` (1..=9).
    pub fn deflate(level: u8) -> Self {
        Codec::Deflate(DeflateEncoder::new(level), DeflateDecoder::new())
    }

    fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        match self {
            Codec::Snappy(c) => c.0.encode(plain, out),
            Codec::Deflate(e, _) => e.encode(plain, out),
        }
    }

    fn decode(&mut self, compressed: &[u8], out: &mut Vec<u8>) -> Result<(), LayerError> {
        match self {
            Codec::Snappy(c) => c.1.decode(compressed, out),
            Codec::Deflate(_, d) => d.decode(compressed, out),
        }
    }
}

/// TLS and compression composed as nsqd layers them: compression runs
/// inside TLS.
#[derive(Default)]
pub struct Stack {
    tls: Option<TlsLayer>,
    codec: Option<Codec>,
    scratch: Vec<u8>,
}

impl Stack {
    /// No layer yet: bytes pass through.
    pub fn new() -> Self {
        Stack::default()
    }

    /// True while no layer is active (the core reads the socket's bytes).
    pub fn is_passthrough(&self) -> bool {
        self.tls.is_none() && self.codec.is_none()
    }

    /// True once TLS is active.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Starts TLS; the ClientHello is appended to `wire_out`.
    pub fn start_tls(&mut self, mut tls: TlsLayer, wire_out: &mut Vec<u8>) {
        tls.flush(wire_out);
        self.tls = Some(tls);
    }

    /// Starts compression (inside TLS if active).
    pub fn start_compression(&mut self, codec: Codec) {
        self.codec = Some(codec);
    }

    /// Decodes bytes read from the socket: appends plaintext to `plain`
    /// and anything TLS must send in answer (handshake) to `wire_out`.
    pub fn decode(
        &mut self,
        wire: &[u8],
        plain: &mut Vec<u8>,
        wire_out: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        match (&mut self.tls, &mut self.codec) {
            (None, None) => {
                plain.extend_from_slice(wire);
                Ok(())
            }
            (None, Some(codec)) => codec.decode(wire, plain),
            (Some(tls), None) => tls.decode(wire, plain, wire_out),
            (Some(tls), Some(codec)) => {
                self.scratch.clear();
                tls.decode(wire, &mut self.scratch, wire_out)?;
                codec.decode(&self.scratch, plain)
            }
        }
    }

    /// Decompresses bytes already decrypted (those that followed the OK of
    /// the compression upgrade in the same TLS record).
    pub fn decode_decrypted(&mut self, data: &[u8], plain: &mut Vec<u8>) -> Result<(), LayerError> {
        match &mut self.codec {
            Some(codec) => codec.decode(data, plain),
            None => {
                plain.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Encodes bytes the core wants sent, appending wire bytes to `wire_out`.
    /// Each call ends with a flush (sync flush for DEFLATE, whole chunks for
    /// snappy), so the server can decode every command written so far.
    pub fn encode(&mut self, plain: &[u8], wire_out: &mut Vec<u8>) -> Result<(), LayerError> {
        match (&mut self.tls, &mut self.codec) {
            (None, None) => {
                wire_out.extend_from_slice(plain);
                Ok(())
            }
            (None, Some(codec)) => {
                codec.encode(plain, wire_out);
                Ok(())
            }
            (Some(tls), None) => tls.encode(plain, wire_out),
            (Some(tls), Some(codec)) => {
                self.scratch.clear();
                codec.encode(plain, &mut self.scratch);
                tls.encode(&self.scratch, wire_out)
            }
        }
    }

    /// TLS: queues a close_notify alert.
    pub fn close(&mut self, wire_out: &mut Vec<u8>) {
        if let Some(tls) = &mut self.tls {
            tls.close(wire_out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_split(mut codec_tx: Codec, mut codec_rx: Codec) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let msg: Vec<u8> = format!("PUB topic {i}\n")
                .into_bytes()
                .repeat((i % 7 + 1) as usize * 50);
            codec_tx.encode(&msg, &mut wire);
            expected.extend_from_slice(&msg);
        }
        // Feed the receiver in awkward pieces.
        let mut plain = Vec::new();
        for piece in wire.chunks(3) {
            codec_rx.decode(piece, &mut plain).unwrap();
        }
        assert_eq!(plain, expected);
    }

    #[test]
    fn snappy_roundtrips_when_split_anywhere() {
        roundtrip_split(Codec::snappy(), Codec::snappy());
    }

    #[test]
    fn deflate_roundtrips_when_split_anywhere() {
        roundtrip_split(Codec::deflate(6), Codec::deflate(6));
    }

    #[test]
    fn big_writes_cross_snappy_chunk_limits() {
        let mut tx = Codec::snappy();
        let mut rx = Codec::snappy();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut wire = Vec::new();
        tx.encode(&data, &mut wire);
        let mut plain = Vec::new();
        for piece in wire.chunks(4093) {
            rx.decode(piece, &mut plain).unwrap();
        }
        assert_eq!(plain, data);
    }

    #[test]
    fn corrupt_snappy_is_an_error_not_a_panic() {
        let mut rx = Codec::snappy();
        let mut plain = Vec::new();
        let err = rx
            .decode(
                b"\xff\x06\x00\x00sNaPpY\x00\x08\x00\x00\x01\x02\x03\x04garbage!",
                &mut plain,
            )
            .unwrap_err();
        assert!(err.to_string().contains("snappy"), "{err}");
        let mut rx = Codec::snappy();
        assert!(
            rx.decode(b"\x00\x01\x00\x00x", &mut plain).is_err(),
            "no stream identifier first"
        );
    }

    #[test]
    fn corrupt_deflate_is_an_error_not_a_panic() {
        let mut rx = Codec::deflate(6);
        let mut plain = Vec::new();
        assert!(rx.decode(&[0xff; 64], &mut plain).is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn encoded(codec: &mut Codec, writes: &[Vec<u8>]) -> Vec<u8> {
            let mut wire = Vec::new();
            for w in writes {
                codec.encode(w, &mut wire);
            }
            wire
        }

        fn decode_in_pieces(codec: &mut Codec, wire: &[u8], cuts: &[usize]) -> Vec<u8> {
            let mut plain = Vec::new();
            let mut at = 0;
            for &c in cuts {
                let end = (at + c).min(wire.len());
                codec.decode(&wire[at..end], &mut plain).unwrap();
                at = end;
            }
            codec.decode(&wire[at..], &mut plain).unwrap();
            plain
        }

        proptest! {
            #[test]
            fn snappy_split_anywhere_equals_whole(
                writes in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..3000), 1..8),
                cuts in proptest::collection::vec(0usize..700, 0..20),
            ) {
                let wire = encoded(&mut Codec::snappy(), &writes);
                let plain = decode_in_pieces(&mut Codec::snappy(), &wire, &cuts);
                prop_assert_eq!(plain, writes.concat());
            }

            #[test]
            fn deflate_split_anywhere_equals_whole(
                writes in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..3000), 1..8),
                cuts in proptest::collection::vec(0usize..700, 0..20),
                level in 1u8..10,
            ) {
                let wire = encoded(&mut Codec::deflate(level), &writes);
                let plain = decode_in_pieces(&mut Codec::deflate(6), &wire, &cuts);
                prop_assert_eq!(plain, writes.concat());
            }

            #[test]
            fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
                let mut plain = Vec::new();
                let _ = Codec::snappy().decode(&bytes, &mut plain);
                let _ = Codec::deflate(6).decode(&bytes, &mut plain);
                // A valid stream identifier followed by garbage.
                let mut s = STREAM_ID_FOR_TESTS.to_vec();
                s.extend_from_slice(&bytes);
                let _ = Codec::snappy().decode(&s, &mut plain);
            }
        }

        const STREAM_ID_FOR_TESTS: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    }
}
