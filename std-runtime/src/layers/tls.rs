//! TLS client over byte buffers (rustls, ring provider). Verification is
//! on: the caller gives the CA certificates that sign the server's
//! certificate (or asks for the Mozilla roots of `webpki-roots`), and
//! optionally a client certificate for mutual TLS. PEM is read with
//! `rustls-pki-types` (the maintained successor of `rustls-pemfile`).

use std::io::{BufRead, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::LayerError;
use crate::session_io::Inbound;

/// How to verify the server and (optionally) prove who we are.
#[derive(Clone, Default)]
pub struct TlsConfig {
    ca: Vec<CertificateDer<'static>>,
    system_roots: bool,
    insecure: bool,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Option<Arc<PrivateKeyDer<'static>>>,
    server_name: Option<String>,
    prebuilt: Option<Arc<ClientConfig>>,
    /// The configuration [`TlsConfig::build`] made, shared by the clones
    /// of this value (every connection and reconnect of a client) and
    /// reset by every setter.
    built: BuiltCache,
}

/// The rustls configuration built once per [`TlsConfig`]: parsing the roots
/// and setting up the provider is then not redone on every connect, and
/// rustls's session store (in the configuration) lets a reconnect to the
/// same server resume its TLS session instead of a full handshake.
#[derive(Clone, Default)]
struct BuiltCache(Arc<std::sync::OnceLock<Arc<ClientConfig>>>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certs", &self.ca.len())
            .field("system_roots", &self.system_roots)
            .field("insecure", &self.insecure)
            .field("client_cert", &!self.client_chain.is_empty())
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, LayerError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LayerError::TlsConfig(format!("cannot read PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(LayerError::TlsConfig(
            "no CERTIFICATE block in the PEM".into(),
        ));
    }
    Ok(certs)
}

impl TlsConfig {
    /// Verification against no CA yet: add one with [`TlsConfig::ca_pem`]
    /// or use [`TlsConfig::system_roots`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates in `pem` (one or more PEM blocks).
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, LayerError> {
        self.built = BuiltCache::default();
        self.ca.extend(parse_certs(pem)?);
        Ok(self)
    }

    /// Also trusts the Mozilla root certificates (`webpki-roots`), for
    /// servers with a certificate from a public CA.
    pub fn system_roots(mut self, on: bool) -> Self {
        self.built = BuiltCache::default();
        self.system_roots = on;
        self
    }

    /// True when some root of trust is configured (CA, system roots, a
    /// prebuilt configuration or the insecure switch).
    pub fn has_roots(&self) -> bool {
        !self.ca.is_empty() || self.system_roots || self.insecure || self.prebuilt.is_some()
    }

    /// FOR TESTS ONLY: accepts any server certificate (no chain, no name
    /// check; the handshake signatures are still checked). Logs a warning
    /// when the configuration is built with it (once per `TlsConfig`).
    pub fn danger_accept_invalid_certs(mut self, on: bool) -> Self {
        self.built = BuiltCache::default();
        self.insecure = on;
        self
    }

    /// Presents this certificate chain and private key (PEM) to servers
    /// that ask for one (nsqd's `--tls-client-auth-policy`, nats-server's
    /// `verify: true`).
    pub fn client_cert_pem(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, LayerError> {
        self.built = BuiltCache::default();
        self.client_chain = parse_certs(chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            LayerError::TlsConfig(format!(
                "cannot read the PEM private key (PKCS#8, PKCS#1 or SEC1 block expected): {e}"
            ))
        })?;
        self.client_key = Some(Arc::new(key));
        Ok(self)
    }

    /// The name to verify the server's certificate against (default: the
    /// host or IP address connected to).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.built = BuiltCache::default();
        self.server_name = Some(name.into());
        self
    }

    /// Uses a rustls configuration built by the caller (any provider,
    /// custom verifier); the other settings are then ignored.
    pub fn rustls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.built = BuiltCache::default();
        self.prebuilt = Some(config);
        self
    }

    /// The rustls client configuration: built on the first call, then the
    /// same one (shared by the clones of this `TlsConfig`, so by every
    /// connect and reconnect of a client): the roots are parsed once, and a
    /// reconnect can resume the TLS session rustls stored in it.
    pub fn build(&self) -> Result<Arc<ClientConfig>, LayerError> {
        if let Some(c) = &self.prebuilt {
            return Ok(c.clone());
        }
        if let Some(c) = self.built.0.get() {
            return Ok(c.clone());
        }
        let config = self.build_new()?;
        // Another thread may have won the race: use the one kept.
        Ok(self.built.0.get_or_init(|| config).clone())
    }

    fn build_new(&self) -> Result<Arc<ClientConfig>, LayerError> {
        if !self.has_roots() {
            return Err(LayerError::TlsConfig(
                "no CA certificate configured: give the CA that signs the server's certificate \
                 (TlsConfig::ca_pem) or trust the system roots (TlsConfig::system_roots)"
                    .into(),
            ));
        }
        let mut roots = RootCertStore::empty();
        for cert in &self.ca {
            roots
                .add(cert.clone())
                .map_err(|e| LayerError::TlsConfig(format!("unusable CA certificate: {e}")))?;
        }
        if self.system_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(LayerError::Tls)?;
        let builder = if self.insecure {
            log::warn!(
                "TLS certificate verification is DISABLED (danger_accept_invalid_certs): \
                 any server can impersonate the real one; use this only in tests"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        } else {
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_key {
            Some(key) => builder
                .with_client_auth_cert(self.client_chain.clone(), key.clone_key())
                .map_err(|e| LayerError::TlsConfig(format!("client certificate/key: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The server name to verify: the configured one, else `host` (an IP
    /// address literal verifies against the certificate's IP addresses).
    pub fn name_for(&self, host: &str) -> Result<ServerName<'static>, LayerError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string())
            .map_err(|e| LayerError::TlsConfig(format!("invalid server name {name:?}: {e}")))
    }
}

/// The test-only verifier: any certificate, signatures still verified.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One TLS client connection over byte buffers.
pub struct TlsLayer {
    conn: ClientConnection,
}

impl TlsLayer {
    /// Starts a client handshake with `name` as the expected server.
    pub fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> Result<Self, LayerError> {
        let mut conn = ClientConnection::new(config, name)?;
        // Every encode drains rustls into the caller's buffer at once, so
        // rustls's own 64 KiB buffering limit would only make large
        // commands (MPUB batches) fail half-written.
        conn.set_buffer_limit(None);
        Ok(TlsLayer { conn })
    }

    /// True until the handshake completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Appends everything rustls wants to send to `wire_out`.
    pub fn flush(&mut self, wire_out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(wire_out).is_err() {
                break;
            }
        }
    }

    /// Feeds received TLS bytes; appends decrypted plaintext to `plain`
    /// and handshake answers to `wire_out`.
    pub fn decode(
        &mut self,
        mut wire: &[u8],
        plain: &mut Vec<u8>,
        wire_out: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        while !wire.is_empty() {
            match self.conn.read_tls(&mut wire) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(LayerError::TlsConfig(format!("TLS read: {e}"))),
            }
            let processed = self.conn.process_new_packets();
            // Send the alert that explains a failure before reporting it.
            self.flush(wire_out);
            if processed?.plaintext_bytes_to_read() > 0 {
                // Straight from rustls's decrypted chunks into `plain`: one
                // copy, no zero-fill of room that is then overwritten.
                let mut reader = self.conn.reader();
                while let Ok(chunk) = reader.fill_buf() {
                    if chunk.is_empty() {
                        break;
                    }
                    let n = chunk.len();
                    plain.extend_from_slice(chunk);
                    reader.consume(n);
                }
            }
        }
        self.flush(wire_out);
        Ok(())
    }

    /// Encrypts `plain`, appending the records to `wire_out`. Before the
    /// handshake completes rustls buffers the plaintext and sends it after.
    pub fn encode(&mut self, plain: &[u8], wire_out: &mut Vec<u8>) -> Result<(), LayerError> {
        if !plain.is_empty() {
            self.conn
                .writer()
                .write_all(plain)
                .map_err(|e| LayerError::TlsConfig(format!("TLS write: {e}")))?;
        }
        self.flush(wire_out);
        Ok(())
    }

    /// Queues close_notify.
    pub fn close(&mut self, wire_out: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire_out);
    }
}

/// One connection's TLS as its reader and writer share it (NATS and AMQP):
/// the [`TlsLayer`] plus the records the reader produced (handshake
/// answers, alerts, key updates) that the writer must send before the next
/// sealed bytes. The reader [`TlsSession::open`]s received records into the
/// connection's [`Inbound`]; the writer [`TlsSession::seal`]s.
pub(crate) struct TlsSession {
    layer: TlsLayer,
    /// TLS records produced outside the writer, sent first by the next seal.
    wire: Vec<u8>,
}

impl TlsSession {
    /// Starts a client handshake with the server at `host` (verified against
    /// `config`'s server name if it has one); the ClientHello waits in the
    /// session for the writer.
    pub(crate) fn start(config: &TlsConfig, host: &str) -> Result<Self, LayerError> {
        let built = config.build()?;
        let name = config.name_for(host)?;
        let mut layer = TlsLayer::new(built, name)?;
        let mut wire = Vec::new();
        layer.flush(&mut wire);
        Ok(TlsSession { layer, wire })
    }

    /// Appends to `out` the pending records, then `plain` encrypted.
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), LayerError> {
        out.append(&mut self.wire);
        self.layer.encode(plain, out)
    }

    /// True when records wait for the writer.
    pub(crate) fn has_wire(&self) -> bool {
        !self.wire.is_empty()
    }

    /// Decrypts the records the transport read into `rx` (the session then
    /// parses the plaintext); handshake answers wait for the writer.
    pub(crate) fn open(&mut self, rx: &mut Inbound) -> Result<(), LayerError> {
        let (layer, wire) = (&mut self.layer, &mut self.wire);
        rx.decode(|records, plain| layer.decode(records, plain, wire))?;
        Ok(())
    }
}

/// Before a read on a TLS connection: the wire buffer still holds
/// `capacity` undecrypted bytes, so a record (or the frame inside it) is
/// larger than the receive buffer. What the wire buffer's bound does for
/// plaintext: an error, not unbounded growth.
pub(crate) fn receive_buffer_full(rx: &mut Inbound) -> Option<String> {
    let capacity = rx.wire().capacity();
    (rx.data().len() >= capacity)
        .then(|| format!("receive buffer full: a frame is larger than {capacity} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rustls_configuration_is_built_once_and_shared_by_clones() {
        let config = TlsConfig::new().danger_accept_invalid_certs(true);
        let first = config.build().unwrap();
        let again = config.build().unwrap();
        let from_clone = config.clone().build().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "built twice");
        assert!(Arc::ptr_eq(&first, &from_clone), "a clone rebuilt it");
    }

    #[test]
    fn a_setter_after_build_gives_a_new_configuration() {
        let config = TlsConfig::new().danger_accept_invalid_certs(true);
        let first = config.build().unwrap();
        let changed = config.clone().server_name("other.example");
        let second = changed.build().unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a changed config reused the old build"
        );
        // The original keeps its own.
        assert!(Arc::ptr_eq(&first, &config.build().unwrap()));
    }

    #[test]
    fn a_started_session_hands_its_client_hello_to_the_first_seal_only() {
        let config = TlsConfig::new().danger_accept_invalid_certs(true);
        let mut session = TlsSession::start(&config, "127.0.0.1").unwrap();
        assert!(session.has_wire(), "no ClientHello queued");
        let mut out = Vec::new();
        session.seal(b"", &mut out).unwrap();
        // One TLS handshake record (content type 22), legacy version 3.x.
        assert_eq!(
            &out[..2],
            &[22, 3],
            "not a handshake record: {:?}",
            &out[..5]
        );
        let len = usize::from(u16::from_be_bytes([out[3], out[4]]));
        assert_eq!(out.len(), 5 + len, "more than the ClientHello record");
        assert!(!session.has_wire());
        let mut again = Vec::new();
        session.seal(b"", &mut again).unwrap();
        assert!(again.is_empty(), "the ClientHello was sent twice");
    }

    #[test]
    fn a_session_refuses_an_invalid_server_name() {
        let config = TlsConfig::new().danger_accept_invalid_certs(true);
        assert!(TlsSession::start(&config, "not a host name!").is_err());
    }

    #[test]
    fn no_roots_is_still_an_error_every_time() {
        let config = TlsConfig::new();
        assert!(config.build().is_err());
        assert!(config.build().is_err());
    }
}
