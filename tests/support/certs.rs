//! Test PKI for TLS tests (rcgen, generated at test time): a CA, a server
//! certificate for `localhost`/`127.0.0.1` and a client certificate signed
//! by it, a second unrelated CA, and a server certificate naming another
//! host. Files live in a temp dir removed on drop.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// Paths and PEM texts of the generated certificates.
pub struct TestPki {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The CA that signs everything below (PEM file).
    pub ca_file: PathBuf,
    /// Server certificate for localhost and 127.0.0.1, and its key.
    pub server_cert: PathBuf,
    /// Key of `server_cert`.
    pub server_key: PathBuf,
    /// Server certificate signed by the CA but naming only `other.example`.
    pub wrong_name_cert: PathBuf,
    /// Key of `wrong_name_cert`.
    pub wrong_name_key: PathBuf,
    /// Client certificate (clientAuth) signed by the CA.
    pub client_cert: PathBuf,
    /// Key of `client_cert`.
    pub client_key: PathBuf,
    /// An unrelated CA (PEM file): trusting it must not verify the server.
    pub other_ca_file: PathBuf,
    /// The CA certificate as PEM text.
    pub ca_pem: String,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> (Certificate, KeyPair) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("client"),
    );
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    (cert, key)
}

impl TestPki {
    /// Generates everything (a few milliseconds).
    pub fn generate() -> Self {
        let (ca_cert, ca_key) = ca("courier test CA");
        let (other_ca, _) = ca("some other CA");
        let server_auth = || ExtendedKeyUsagePurpose::ServerAuth;
        let (server, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            server_auth(),
            &ca_cert,
            &ca_key,
        );
        let (wrong, wrong_key) = leaf(&["other.example"], server_auth(), &ca_cert, &ca_key);
        let (client, client_key) =
            leaf(&[], ExtendedKeyUsagePurpose::ClientAuth, &ca_cert, &ca_key);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, data: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            p
        };
        TestPki {
            ca_file: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server.pem()),
            server_key: write("server.key", &server_key.serialize_pem()),
            wrong_name_cert: write("wrong.pem", &wrong.pem()),
            wrong_name_key: write("wrong.key", &wrong_key.serialize_pem()),
            client_cert: write("client.pem", &client.pem()),
            client_key: write("client.key", &client_key.serialize_pem()),
            other_ca_file: write("other-ca.pem", &other_ca.pem()),
            ca_pem: ca_cert.pem(),
            dir,
        }
    }

    /// Writes a nats-server configuration file with a `tls` block using
    /// the server certificate (`wrong_name`: the one naming another host),
    /// plus `extra` lines (auth blocks, cluster...); returns its path.
    pub fn nats_config(
        &self,
        name: &str,
        tls_extra: &str,
        wrong_name: bool,
        extra: &str,
    ) -> PathBuf {
        let (cert, key) = if wrong_name {
            (&self.wrong_name_cert, &self.wrong_name_key)
        } else {
            (&self.server_cert, &self.server_key)
        };
        let text = format!(
            "tls {{\n  cert_file: {cert:?}\n  key_file: {key:?}\n  ca_file: {ca:?}\n  timeout: 2\n{tls_extra}\n}}\n{extra}\n",
            ca = self.ca_file,
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}
