//! NKey and JWT (decentralized) authentication without an allocator.
//!
//! nats-server proves a client holds a key by sending a random `nonce` in
//! INFO; the client signs it with its Ed25519 NKey seed and sends, in
//! CONNECT, the base64url signature (`sig`) with either its public NKey
//! (`nkey`, NKey auth) or its user JWT (`jwt`, operator/account/user auth).
//!
//! The core has no cryptography: the driver supplies an [`Authenticator`]
//! (the std runtime's one uses the `nkeys` crate; a device can wrap any
//! Ed25519 implementation or a secure element). The session calls it once
//! per handshake with that connection's nonce, so every reconnect signs the
//! new server's nonce. [`NoAuth`] is the default: nothing is signed.

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a signature in unpadded base64url, as CONNECT carries it.
pub const SIGNATURE_B64_LEN: usize = 86;

/// Supplies the signed credentials of CONNECT.
///
/// [`Authenticator::jwt`] or [`Authenticator::nkey`] (or both) being `Some`
/// makes the session sign the nonce with [`Authenticator::sign`]. Keep the
/// JWT short enough that the whole CONNECT line fits
/// [`CONNECT_MAX`](super::commands::CONNECT_MAX).
pub trait Authenticator {
    /// The user JWT (decentralized auth), sent as `jwt`.
    fn jwt(&self) -> Option<&str> {
        None
    }
    /// The public NKey (`U...`), sent as `nkey` for NKey-only auth.
    fn nkey(&self) -> Option<&str> {
        None
    }
    /// Signs the server's nonce (the raw bytes of INFO's `nonce` string)
    /// with the user's Ed25519 seed.
    fn sign(&self, nonce: &[u8]) -> [u8; SIGNATURE_LEN];
    /// True when CONNECT carries a signature.
    fn signs(&self) -> bool {
        self.jwt().is_some() || self.nkey().is_some()
    }
}

/// No signed credentials (user/password or token may still be used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoAuth;

impl Authenticator for NoAuth {
    fn sign(&self, _nonce: &[u8]) -> [u8; SIGNATURE_LEN] {
        [0; SIGNATURE_LEN]
    }
    fn signs(&self) -> bool {
        false
    }
}

/// `None` signs nothing; `Some(a)` is `a`.
impl<A: Authenticator> Authenticator for Option<A> {
    fn jwt(&self) -> Option<&str> {
        self.as_ref().and_then(A::jwt)
    }
    fn nkey(&self) -> Option<&str> {
        self.as_ref().and_then(A::nkey)
    }
    fn sign(&self, nonce: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.as_ref().map_or([0; SIGNATURE_LEN], |a| a.sign(nonce))
    }
    fn signs(&self) -> bool {
        self.as_ref().is_some_and(A::signs)
    }
}

/// Encodes a signature as unpadded base64url (RFC 4648 §5), the form
/// nats-server decodes first.
///
/// ```
/// use courier_core::nats::auth::{encode_signature, SIGNATURE_B64_LEN};
/// let mut out = [0u8; SIGNATURE_B64_LEN];
/// let text = encode_signature(&[0xfb; 64], &mut out);
/// assert_eq!(text.len(), 86);
/// assert!(text.starts_with("-_v7"));
/// ```
pub fn encode_signature<'o>(
    sig: &[u8; SIGNATURE_LEN],
    out: &'o mut [u8; SIGNATURE_B64_LEN],
) -> &'o str {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut at = 0;
    for chunk in sig.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // 3 bytes give 4 characters, a final 1 byte gives 2 (no padding).
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = ((n >> (18 - 6 * i)) & 63) as usize;
            if let (Some(slot), Some(c)) = (out.get_mut(at), ALPHABET.get(index)) {
                *slot = *c;
            }
            at += 1;
        }
    }
    // Only ASCII from the alphabet was written.
    core::str::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference decoder for the property test.
    fn decode(text: &str) -> std::vec::Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        };
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut out = std::vec::Vec::new();
        for c in text.bytes() {
            bits = (bits << 6) | u32::from(value(c));
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
            }
        }
        out
    }

    #[test]
    fn known_vector() {
        // "Man" repeated: base64 of b"Man" is "TWFu".
        let mut sig = [0u8; 64];
        for (i, b) in sig.iter_mut().enumerate() {
            *b = b"Man"[i % 3];
        }
        let mut out = [0u8; SIGNATURE_B64_LEN];
        let text = encode_signature(&sig, &mut out);
        assert!(text.starts_with("TWFuTWFu"));
        // 64 = 21 * 3 + 1: the last byte 'M' (0x4d) gives "TQ".
        assert!(text.ends_with("TWFuTQ"), "{text}");
    }

    /// "Signs" by copying the nonce into the signature, so the test sees
    /// which nonce was signed.
    struct EchoSigner {
        jwt: Option<&'static str>,
    }

    impl Authenticator for EchoSigner {
        fn jwt(&self) -> Option<&str> {
            self.jwt
        }
        fn nkey(&self) -> Option<&str> {
            Some("UPUBLICKEY")
        }
        fn sign(&self, nonce: &[u8]) -> [u8; SIGNATURE_LEN] {
            let mut sig = [b'.'; SIGNATURE_LEN];
            sig[..nonce.len()].copy_from_slice(nonce);
            sig
        }
    }

    fn signed_connect(jwt: Option<&'static str>) -> std::vec::Vec<std::string::String> {
        use crate::nats::{ConnectOptions, Session};
        use crate::time::Instant;
        let now = Instant::from_millis(0);
        let mut s: Session<[u8; 2048], 2, 2, crate::nats::ServerInfo, EchoSigner> =
            Session::with_authenticator(ConnectOptions::default(), [0; 2048], EchoSigner { jwt });
        let mut connects = std::vec::Vec::new();
        for nonce in ["first-nonce", "other-nonce"] {
            let info = std::format!("INFO {{\"server_id\":\"S\",\"nonce\":\"{nonce}\"}}\r\n");
            s.handle_input(info.as_bytes(), now).unwrap();
            let out = std::string::String::from_utf8(s.transmit().to_vec()).unwrap();
            let n = s.transmit().len();
            s.transmitted(n);
            connects.push(out);
            s.start(now);
        }
        connects
    }

    #[test]
    fn connect_carries_the_signature_of_each_connections_nonce() {
        let connects = signed_connect(None);
        let mut expected = [0u8; SIGNATURE_B64_LEN];
        for (connect, nonce) in connects.iter().zip(["first-nonce", "other-nonce"]) {
            let mut sig = [b'.'; SIGNATURE_LEN];
            sig[..nonce.len()].copy_from_slice(nonce.as_bytes());
            let text = encode_signature(&sig, &mut expected);
            assert!(
                connect.contains(&std::format!("\"sig\":\"{text}\"")),
                "{connect}"
            );
            assert!(connect.contains("\"nkey\":\"UPUBLICKEY\""), "{connect}");
            assert!(!connect.contains("\"jwt\""), "{connect}");
        }
        assert_ne!(connects[0], connects[1], "a reconnect signs the new nonce");
    }

    #[test]
    fn jwt_auth_sends_the_jwt_and_no_nkey() {
        let connects = signed_connect(Some("eyJ0.JWT.x"));
        assert!(
            connects[0].contains("\"jwt\":\"eyJ0.JWT.x\""),
            "{}",
            connects[0]
        );
        assert!(connects[0].contains("\"sig\":\""), "{}", connects[0]);
        assert!(!connects[0].contains("\"nkey\""), "{}", connects[0]);
    }

    #[test]
    fn no_auth_and_none_sign_nothing() {
        assert!(!NoAuth.signs());
        assert!(!None::<NoAuth>.signs());
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let mut sig = [0u8; 64];
            sig.copy_from_slice(&bytes);
            let mut out = [0u8; SIGNATURE_B64_LEN];
            let text = encode_signature(&sig, &mut out);
            prop_assert_eq!(text.len(), SIGNATURE_B64_LEN);
            prop_assert_eq!(decode(text), bytes);
        }
    }
}
