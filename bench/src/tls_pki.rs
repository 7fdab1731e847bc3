//! A throw-away PKI for the TLS scenarios (rcgen, generated at run time, as
//! the integration tests do): a CA and a server certificate for `localhost`
//! and `127.0.0.1` signed by it. Every client trusts the CA file; nobody
//! skips verification.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::path::PathBuf;

/// Files of the generated PKI (removed when dropped).
pub struct BenchPki {
    /// Holds the files.
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM): what every client is told to trust.
    pub ca_file: PathBuf,
    /// Server certificate (PEM) for localhost / 127.0.0.1.
    pub server_cert: PathBuf,
    /// Its private key (PEM).
    pub server_key: PathBuf,
}

impl BenchPki {
    /// Generates the CA and the server certificate (a few milliseconds).
    pub fn generate() -> Result<Self, String> {
        let e = |e: rcgen::Error| format!("rcgen: {e}");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "courier-bench CA");
        let ca_key = KeyPair::generate().map_err(e)?;
        let ca = ca_params.self_signed(&ca_key).map_err(e)?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()]).map_err(e)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(e)?;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let write = |name: &str, data: String| -> Result<PathBuf, String> {
            let path = dir.path().join(name);
            std::fs::write(&path, data).map_err(|e| format!("write {}: {e}", path.display()))?;
            Ok(path)
        };
        Ok(BenchPki {
            ca_file: write("ca.pem", ca.pem())?,
            server_cert: write("server.pem", cert.pem())?,
            server_key: write("server.key", key.serialize_pem())?,
            _dir: dir,
        })
    }

    /// nats-server configuration lines: a TLS listener on the client port
    /// that also accepts plaintext clients (`allow_non_tls`), so the TLS
    /// and plaintext series run against the same server.
    pub fn nats_config(&self) -> String {
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 5\n}}\nallow_non_tls: true\n",
            self.server_cert, self.server_key
        )
    }
}
