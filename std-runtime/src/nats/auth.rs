//! NKey and JWT (`.creds`) credentials for the async client: the
//! [`Authenticator`] the core session calls with each server's nonce,
//! signing with the `nkeys` crate (Ed25519).

use std::path::Path;
use std::sync::Arc;

use courier_core::nats::auth::{Authenticator, SIGNATURE_LEN};
use courier_core::nats::ServerErrorKind;

use super::options::{ConnectOptions, Event};
use super::url::ServerAddr;
use super::Error;

/// Longest user JWT accepted: the whole CONNECT line must fit the core's
/// [`CONNECT_MAX`](courier_core::nats::CONNECT_MAX).
pub const MAX_JWT_LEN: usize = 1600;

/// Signed credentials: an NKey seed, and for decentralized (operator /
/// account / user) auth the user JWT. `Debug` shows only the public key.
#[derive(Clone)]
pub struct NkeyAuth {
    keys: Arc<nkeys::KeyPair>,
    public: String,
    jwt: Option<String>,
}

impl std::fmt::Debug for NkeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NkeyAuth")
            .field("public", &self.public)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

fn invalid(option: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        option,
        reason: reason.into(),
    }
}

impl NkeyAuth {
    /// NKey auth with a user seed (`SU...`): CONNECT carries the public key
    /// and the signed nonce.
    pub fn from_seed(seed: &str) -> Result<Self, Error> {
        let seed = seed.trim();
        let keys = nkeys::KeyPair::from_seed(seed).map_err(|e| {
            invalid(
                "nkey",
                format!("not a valid NKey seed (expected SU...): {e}"),
            )
        })?;
        let public = keys.public_key();
        Ok(NkeyAuth {
            keys: Arc::new(keys),
            public,
            jwt: None,
        })
    }

    /// NKey auth from a seed file (as `nk -gen user` writes it: the first
    /// line starting with `S` is the seed).
    pub fn from_seed_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let text = read("nkey", path.as_ref())?;
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('S'))
            .ok_or_else(|| {
                invalid(
                    "nkey",
                    format!("{}: no NKey seed (a line SU...)", path.as_ref().display()),
                )
            })?;
        Self::from_seed(seed)
    }

    /// JWT auth from the text of a `.creds` file (as `nsc` writes it: a
    /// `NATS USER JWT` block, then a `USER NKEY SEED` block).
    pub fn from_creds(text: &str) -> Result<Self, Error> {
        let mut blocks = Vec::new();
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if line.starts_with("---") && line.contains("BEGIN") {
                if let Some(item) = lines.by_ref().find(|l| !l.is_empty()) {
                    blocks.push(item);
                }
            }
        }
        let [jwt, seed, ..] = blocks[..] else {
            return Err(invalid(
                "creds",
                "expected a -----BEGIN NATS USER JWT----- block and a -----BEGIN USER NKEY \
                 SEED----- block (a .creds file written by nsc)",
            ));
        };
        if jwt.len() > MAX_JWT_LEN {
            return Err(invalid(
                "creds",
                format!(
                    "the user JWT has {} bytes, at most {MAX_JWT_LEN} fit in CONNECT",
                    jwt.len()
                ),
            ));
        }
        if jwt.split('.').count() != 3 {
            return Err(invalid(
                "creds",
                "the first block is not a JWT (header.claims.signature)",
            ));
        }
        let mut auth = Self::from_seed(seed).map_err(|e| invalid("creds", e.to_string()))?;
        auth.jwt = Some(jwt.to_string());
        Ok(auth)
    }

    /// JWT auth from a `.creds` file.
    pub fn from_creds_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let text = read("creds", path.as_ref())?;
        Self::from_creds(&text).map_err(|e| match e {
            Error::InvalidOption { option, reason } => Error::InvalidOption {
                option,
                reason: format!("{}: {reason}", path.as_ref().display()),
            },
            e => e,
        })
    }

    /// The public NKey (`U...`).
    pub fn public_key(&self) -> &str {
        &self.public
    }
}

fn read(option: &'static str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| invalid(option, format!("cannot read {}: {e}", path.display())))
}

impl Authenticator for NkeyAuth {
    fn jwt(&self) -> Option<&str> {
        self.jwt.as_deref()
    }

    fn nkey(&self) -> Option<&str> {
        Some(&self.public)
    }

    fn sign(&self, nonce: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0; SIGNATURE_LEN];
        // Signing with a seed cannot fail; a wrong signature would be
        // refused by the server as an Authorization Violation.
        if let Ok(sig) = self.keys.sign(nonce) {
            if let (Some(dst), Some(src)) = (out.get_mut(..), sig.get(..SIGNATURE_LEN)) {
                dst.copy_from_slice(src);
            }
        }
        out
    }
}

/// `Permissions Violation for Publish to "x"` / `... Subscription to "x"`
/// as a typed event; `None` for any other server error.
pub(crate) fn permission_violation(kind: ServerErrorKind, message: &str) -> Option<Event> {
    if kind != ServerErrorKind::PermissionsViolation {
        return None;
    }
    let lower = message.to_ascii_lowercase();
    let operation = if lower.contains(" for publish to ") {
        "publish"
    } else if lower.contains(" for subscription to ") {
        "subscribe"
    } else {
        return None;
    };
    let (_, rest) = message.split_once('"')?;
    let (subject, _) = rest.split_once('"')?;
    Some(Event::PermissionViolation {
        operation: operation.to_string(),
        subject: subject.to_string(),
    })
}

/// Reports an Authorization Violation as [`Event::AuthorizationViolation`]
/// once per server (until it accepts the credentials again): a reconnect
/// loop against a server that refuses keeps backing off with jitter
/// ([`Event::ConnectFailed`] per attempt) without repeating the error.
pub(crate) fn report_refusal(
    inner: &super::shared::Inner,
    refused_by: &mut Vec<ServerAddr>,
    server: &ServerAddr,
    error: &Error,
) {
    if !matches!(error, Error::AuthorizationViolation { .. }) {
        // Reached (or failed otherwise): a later refusal is news again.
        refused_by.retain(|s| !s.same_endpoint(server));
        return;
    }
    if refused_by.iter().any(|s| s.same_endpoint(server)) {
        return;
    }
    refused_by.push(server.clone());
    inner
        .shared
        .borrow_mut()
        .emit(Event::AuthorizationViolation {
            server: server.to_string(),
        });
    inner.dispatch_events();
}

/// The signed-credentials part of [`ConnectOptions`].
pub(crate) type AuthOptions = Option<NkeyAuth>;

impl ConnectOptions {
    /// Signs each server's nonce with these credentials (NKey or JWT).
    pub fn nkey_auth(mut self, auth: NkeyAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// NKey auth with the seed in the file at `path`.
    pub fn nkey_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(self.nkey_auth(NkeyAuth::from_seed_file(path)?))
    }

    /// Decentralized JWT auth with the `.creds` file at `path`.
    pub fn credentials_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(self.nkey_auth(NkeyAuth::from_creds_file(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_file_is_parsed_and_signs_verifiably() {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJhbGciOiJlZDI1NTE5In0.e30.c2ln\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let auth = NkeyAuth::from_creds(&creds).unwrap();
        assert_eq!(auth.jwt(), Some("eyJhbGciOiJlZDI1NTE5In0.e30.c2ln"));
        assert_eq!(auth.public_key(), user.public_key());
        let sig = auth.sign(b"nonce-1");
        user.verify(b"nonce-1", &sig).unwrap();
        assert!(user.verify(b"nonce-2", &sig).is_err());
        assert!(!format!("{auth:?}").contains(&seed));
    }

    #[test]
    fn permission_violations_name_operation_and_subject() {
        let kind = ServerErrorKind::PermissionsViolation;
        assert_eq!(
            permission_violation(kind, "Permissions Violation for Publish to \"a.b\""),
            Some(Event::PermissionViolation {
                operation: "publish".into(),
                subject: "a.b".into()
            })
        );
        assert_eq!(
            permission_violation(
                kind,
                "Permissions Violation for Subscription to \"s.>\" using queue \"q\""
            ),
            Some(Event::PermissionViolation {
                operation: "subscribe".into(),
                subject: "s.>".into()
            })
        );
        assert_eq!(
            permission_violation(ServerErrorKind::Other, "x \"y\""),
            None
        );
    }

    #[test]
    fn bad_material_is_a_clear_error() {
        for (text, needle) in [
            ("nothing here", "NATS USER JWT"),
            (
                "-----BEGIN NATS USER JWT-----\nnot-a-jwt\n---END---\n-----BEGIN USER NKEY SEED-----\nSUAX\n",
                "not a JWT",
            ),
            (
                "-----BEGIN NATS USER JWT-----\na.b.c\n---END---\n-----BEGIN USER NKEY SEED-----\nSUAX\n",
                "not a valid NKey seed",
            ),
        ] {
            let e = NkeyAuth::from_creds(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
