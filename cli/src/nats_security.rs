//! The NATS TLS and NKey/JWT flags turned into client options.

use courier::nats::{ConnectOptions, Error};

use crate::args::{AuthArgs, TlsArgs};

/// Applies `--tls-ca`, `--tls-cert/--tls-key`, `--tls-first`, `--nkey` and
/// `--creds`. A bad file is an [`Error::InvalidOption`] naming it.
pub fn apply(
    mut options: ConnectOptions,
    auth: &AuthArgs,
    tls: &TlsArgs,
) -> Result<ConnectOptions, Error> {
    if let Some(ca) = &tls.tls_ca {
        options = options.tls_ca_file(ca)?;
    }
    if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
        options = options.tls_client_cert_files(cert, key)?;
    }
    if auth.tls_first {
        options = options.tls_first(true);
    }
    if let Some(seed) = &auth.nkey {
        options = options.nkey_file(seed)?;
    }
    if let Some(creds) = &auth.creds {
        options = options.credentials_file(creds)?;
    }
    Ok(options)
}
