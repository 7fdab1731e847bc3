//! `amqps://`: AMQP inside TLS from the first byte (RabbitMQ's TLS
//! listener, port 5671), on the shared rustls layer
//! ([`crate::layers::TlsLayer`]).
//!
//! Verification is always on unless the test-only
//! [`TlsConfig::danger_accept_invalid_certs`] is set: the server's chain must
//! lead to a configured CA (or, without one, to the Mozilla roots of
//! `webpki-roots`) and its certificate must name the URL's host (or
//! [`TlsConfig::server_name`]). A client certificate makes it mutual TLS;
//! with [`ConnectOptions::external_auth`] the login is SASL EXTERNAL: the
//! broker takes the user from the certificate (RabbitMQ's
//! `rabbitmq_auth_mechanism_ssl` plugin), no password is sent.
//!
//! A refused certificate is [`Error::Tls`] (not retried by reconnect: the
//! same certificate would be refused again).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;

use super::connection::ConnectOptions;
use super::url::AmqpUrl;
use super::Error;
use crate::layers::{receive_buffer_full, LayerError, TlsConfig, TlsSession};
use crate::session_io::Inbound;
use crate::transport::{self, ReadHalf, WriteHalf};

impl ConnectOptions {
    /// Verifies the server with `config` (a CA, the system roots, a client
    /// certificate for mutual TLS). Used for `amqps://` URLs; an `amqp://`
    /// URL with a TLS configuration is refused rather than sent in
    /// plaintext.
    pub fn with_tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Trusts the CA certificate(s) in the PEM file `path` (a client
    /// certificate set before is kept).
    pub fn with_ca_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = read_file(path.as_ref())?;
        let config = self.tls.clone().unwrap_or_default();
        let config = config
            .ca_pem(&pem)
            .map_err(|e| Error::Tls(format!("{}: {e}", path.as_ref().display())))?;
        Ok(self.with_tls(config))
    }

    /// Presents this client certificate chain and key (PEM files): mutual
    /// TLS. Combine with [`ConnectOptions::external_auth`] to log in as the
    /// certificate's user.
    pub fn with_client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let chain = read_file(cert.as_ref())?;
        let key_pem = read_file(key.as_ref())?;
        let config = self.tls.clone().unwrap_or_default();
        let config = config
            .client_cert_pem(&chain, &key_pem)
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(self.with_tls(config))
    }

    /// Logs in with SASL EXTERNAL (the TLS client certificate names the
    /// user) instead of PLAIN with the URL's user and password.
    pub fn external_auth(mut self, on: bool) -> Self {
        self.external = on;
        self
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))
}

/// The configuration to use for `url`, if TLS is wanted.
fn wanted(options: &ConnectOptions, url: &AmqpUrl) -> Result<Option<TlsConfig>, Error> {
    match (&options.tls, url.tls) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(Error::Tls(
            "a TLS configuration was given for an amqp:// URL: use amqps:// (refusing to \
             send credentials in plaintext)"
                .into(),
        )),
        (Some(c), true) if c.has_roots() => Ok(Some(c.clone())),
        // A client certificate alone: verify the server with the system roots.
        (Some(c), true) => Ok(Some(c.clone().system_roots(true))),
        (None, true) => Ok(Some(TlsConfig::new().system_roots(true))),
    }
}

/// Shared by the reader and writer of one connection generation: the
/// shared TLS session ([`TlsSession`], the same one NATS uses).
pub(crate) type SharedTls = Rc<RefCell<TlsSession>>;

fn tls_error(e: LayerError) -> Error {
    Error::Tls(e.to_string())
}

/// Connects to `addr` for `options`: plain TCP, or TCP then TLS (the
/// ClientHello is queued for the writer).
pub(crate) async fn dial(
    options: &ConnectOptions,
    addr: SocketAddr,
) -> Result<(ReadHalf, WriteHalf, Option<SharedTls>), Error> {
    let url = AmqpUrl::parse(&options.url)?;
    let config = wanted(options, &url)?;
    let (read, write) = transport::connect(addr).await?;
    let Some(config) = config else {
        return Ok((read, write, None));
    };
    let tls = TlsSession::start(&config, &url.host).map_err(tls_error)?;
    Ok((read, write, Some(Rc::new(RefCell::new(tls)))))
}

/// Seals `plain` (after any pending handshake records) onto `out`.
pub(crate) fn seal(tls: &mut TlsSession, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    tls.seal(plain, out).map_err(tls_error)
}

/// Reads once into the connection's [`Inbound`] (the receive skeleton NATS
/// and NSQ use too): plaintext stays in the wire buffer and the session
/// parses it in place; TLS records are decrypted into the decoded bytes
/// (handshake answers go to the writer). `Ok(0)` is the end of the stream.
/// The TLS state is not borrowed across the read, so the writer can seal
/// meanwhile.
pub(crate) async fn read(
    tls: Option<&SharedTls>,
    reader: &mut ReadHalf,
    rx: &mut Inbound,
) -> Result<usize, Error> {
    let Some(tls) = tls else {
        return Ok(reader.read(rx.wire()).await?);
    };
    if let Some(full) = receive_buffer_full(rx) {
        return Err(Error::Io(format!(
            "{full} (raise ConnectOptions::rx_capacity)"
        )));
    }
    let n = reader.read(rx.wire()).await?;
    if n == 0 {
        return Ok(0);
    }
    tls.borrow_mut().open(rx).map_err(tls_error)?;
    // Progress even when only handshake records arrived.
    Ok(n)
}
