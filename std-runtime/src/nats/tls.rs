//! NATS over TLS on the shared rustls layer ([`crate::layers::TlsLayer`]).
//!
//! Two ways in, as nats.go:
//! - **upgrade after INFO** (the default): the server's INFO arrives in
//!   plaintext; if it says `tls_required`, or the client wants TLS (a
//!   `tls://` URL or [`ConnectOptions::tls`]), the client starts the TLS
//!   handshake before anything else is written. CONNECT (with the
//!   credentials) is only ever written inside TLS.
//! - **TLS first** ([`ConnectOptions::tls_first`], for servers configured
//!   with `handshake_first`): the handshake starts as soon as TCP connects
//!   and INFO arrives inside TLS.
//!
//! A client that wants TLS never falls back to plaintext: a server that
//! does not offer TLS is an [`Error::Tls`]. A server that requires TLS
//! while the client has no TLS configuration is an [`Error::Tls`] naming
//! the option to set.
//!
//! Verification is always on unless the test-only
//! [`TlsConfig::danger_accept_invalid_certs`] is set: the chain must lead to
//! a configured CA (or, for `tls://` URLs without a CA, to the Mozilla
//! roots of `webpki-roots`), and the certificate must name the host of the
//! URL being dialled (also for servers learned from INFO `connect_urls`;
//! an IP address is checked against the certificate's IP addresses).

use std::cell::RefCell;
use std::path::Path;

use super::options::ConnectOptions;
use super::url::ServerAddr;
use super::Error;
use crate::layers::{receive_buffer_full, TlsConfig, TlsSession};
use crate::session_io::Inbound;
use crate::transport::ReadHalf;

/// The TLS part of [`ConnectOptions`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsOptions {
    /// Verification and client certificate; `Some` means TLS is wanted.
    config: Option<TlsConfig>,
    /// Handshake before INFO.
    first: bool,
}

impl ConnectOptions {
    /// Uses TLS with every server, verified with `config` (a CA, the system
    /// roots, a client certificate for mutual TLS). Without this, TLS is
    /// used for `tls://` URLs (verified against the system roots), and a
    /// server that requires TLS is refused.
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls.config = Some(config);
        self
    }

    /// Uses TLS, trusting the CA certificate(s) in the PEM file `path`
    /// (the client certificate set before is kept).
    pub fn tls_ca_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = read_file("tls_ca_file", path.as_ref())?;
        let config = self.tls.config.clone().unwrap_or_default();
        let config = config.ca_pem(&pem).map_err(|e| Error::InvalidOption {
            option: "tls_ca_file",
            reason: format!("{}: {e}", path.as_ref().display()),
        })?;
        Ok(self.tls(config))
    }

    /// Uses TLS and presents this client certificate chain and key (PEM
    /// files) for mutual TLS.
    pub fn tls_client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let chain = read_file("tls_client_cert", cert.as_ref())?;
        let key_pem = read_file("tls_client_key", key.as_ref())?;
        let config = self.tls.config.clone().unwrap_or_default();
        let config =
            config
                .client_cert_pem(&chain, &key_pem)
                .map_err(|e| Error::InvalidOption {
                    option: "tls_client_cert",
                    reason: e.to_string(),
                })?;
        Ok(self.tls(config))
    }

    /// Starts the TLS handshake right after TCP connects, before the
    /// server's INFO (nats-server's `handshake_first`). Implies TLS.
    pub fn tls_first(mut self, on: bool) -> Self {
        self.tls.first = on;
        self
    }
}

fn read_file(option: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::InvalidOption {
        option,
        reason: format!("cannot read {}: {e}", path.display()),
    })
}

/// The TLS configuration to use with `server`, if TLS is wanted there.
fn wanted(options: &TlsOptions, tls_url: bool) -> Option<TlsConfig> {
    match &options.config {
        Some(c) if c.has_roots() => Some(c.clone()),
        // A client certificate alone: verify the server with the system roots.
        Some(c) => Some(c.clone().system_roots(true)),
        None if tls_url || options.first => Some(TlsConfig::new().system_roots(true)),
        None => None,
    }
}

fn tls_error(server: &ServerAddr, reason: impl Into<String>) -> Error {
    Error::Tls {
        server: server.to_string(),
        reason: reason.into(),
    }
}

/// Per-connection TLS state shared by the reader and the writer: the
/// plaintext-or-TLS decision, then the shared [`TlsSession`] (the same one
/// AMQP uses).
pub(crate) struct NatsTls {
    server: ServerAddr,
    config: Option<TlsConfig>,
    first: bool,
    session: Option<TlsSession>,
    /// Set once the plaintext-or-TLS decision was made for this connection.
    decided: bool,
}

impl NatsTls {
    /// TLS state for a new connection to `server`; with TLS first the
    /// ClientHello is queued at once.
    /// `any_tls`: some configured URL is `tls://`, so servers learned from
    /// INFO (listed without a scheme) are dialled with TLS too.
    pub(crate) fn new(
        options: &ConnectOptions,
        server: &ServerAddr,
        any_tls: bool,
    ) -> Result<Self, Error> {
        let mut tls = NatsTls {
            server: server.clone(),
            config: wanted(&options.tls, server.is_tls() || any_tls),
            first: options.tls.first,
            session: None,
            decided: false,
        };
        if tls.first {
            tls.start()?;
        }
        Ok(tls)
    }

    fn start(&mut self) -> Result<(), Error> {
        let config = self.config.as_ref().ok_or_else(|| {
            tls_error(&self.server, "TLS was started without a TLS configuration")
        })?;
        let session = TlsSession::start(config, self.server.host())
            .map_err(|e| tls_error(&self.server, e.to_string()))?;
        self.session = Some(session);
        self.decided = true;
        Ok(())
    }

    /// True once this connection is decided to stay plaintext (after INFO,
    /// no TLS wanted or required): bytes may then skip [`NatsTls::seal`].
    pub(crate) fn is_plaintext(&self) -> bool {
        self.decided && self.session.is_none()
    }

    /// True once TLS is in use on this connection.
    pub(crate) fn is_active(&self) -> bool {
        self.session.is_some()
    }

    /// Decides, once the session has parsed INFO, between TLS and
    /// plaintext. Must run before the writer sees the CONNECT the session
    /// queued (the caller holds the shared state without awaiting).
    pub(crate) fn after_info(
        &mut self,
        server_requires_tls: bool,
        server_offers_tls: bool,
        rx_left: usize,
    ) -> Result<(), Error> {
        if self.decided {
            return Ok(());
        }
        self.decided = true;
        match (&self.config, server_requires_tls) {
            (None, false) => Ok(()),
            (None, true) => Err(tls_error(
                &self.server,
                "the server requires TLS but the client has none configured: use a tls:// \
                 URL or set ConnectOptions::tls / tls_ca_file (CLI: --tls-ca)",
            )),
            (Some(_), _) if !server_requires_tls && !server_offers_tls => Err(tls_error(
                &self.server,
                "TLS is configured but the server does not offer TLS (no tls block in its \
                 configuration); refusing to continue in plaintext",
            )),
            (Some(_), _) if rx_left > 0 => Err(tls_error(
                &self.server,
                "the server sent more plaintext after INFO where the TLS handshake should start",
            )),
            (Some(_), _) => self.start(),
        }
    }

    /// Appends to `out` what the writer must send: pending handshake
    /// records, then `plain` (encrypted when TLS is active).
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        match &mut self.session {
            Some(session) => session
                .seal(plain, out)
                .map_err(|e| tls_error(&self.server, e.to_string())),
            None => {
                out.extend_from_slice(plain);
                Ok(())
            }
        }
    }

    /// True when handshake records wait for the writer.
    pub(crate) fn has_wire(&self) -> bool {
        self.session.as_ref().is_some_and(TlsSession::has_wire)
    }
}

/// Reads once into the connection's [`Inbound`]: plaintext stays in the
/// wire buffer (the session parses it in place), TLS records are decrypted
/// into the decoded bytes (handshake answers go to the writer). `Ok(0)` is
/// the end of the stream. The state is never borrowed across the read, so
/// the writer can seal meanwhile.
pub(crate) async fn read(
    tls: &RefCell<NatsTls>,
    reader: &mut ReadHalf,
    rx: &mut Inbound,
) -> Result<usize, Error> {
    let active = tls.borrow().session.is_some();
    if active {
        if let Some(full) = receive_buffer_full(rx) {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                full,
            )));
        }
    }
    let n = reader.read(rx.wire()).await?;
    if !active || n == 0 {
        return Ok(n);
    }
    let mut t = tls.borrow_mut();
    let t = &mut *t;
    if let Some(session) = &mut t.session {
        session
            .open(rx)
            .map_err(|e| tls_error(&t.server, e.to_string()))?;
    }
    // Progress even when only handshake records arrived.
    Ok(n)
}
