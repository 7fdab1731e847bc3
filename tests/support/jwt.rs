//! Operator, account and user JWTs for nats-server's decentralized auth,
//! built at test time: claims as JSON, signed with the issuer's NKey
//! (`ed25519-nkey`), as the `nats-io/jwt` library encodes them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Encodes and signs `claims` (the `nats` section) issued by `issuer` for
/// `subject`.
pub fn encode(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "jti": format!("JTI{now}{}", &subject[..8]),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = issuer.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An operator, one account and its server configuration lines.
pub struct Operator {
    /// The operator's key.
    pub key: KeyPair,
    /// The account's key.
    pub account: KeyPair,
    /// The operator JWT.
    pub jwt: String,
    /// The account JWT (signed by the operator).
    pub account_jwt: String,
}

impl Operator {
    /// A fresh operator with one account without limits.
    pub fn generate() -> Self {
        let key = KeyPair::new_operator();
        let jwt = encode(
            &key,
            &key.public_key(),
            "op",
            json!({"type": "operator", "version": 2}),
        );
        let account = KeyPair::new_account();
        let account_jwt = encode(
            &key,
            &account.public_key(),
            "acct",
            json!({
                "type": "account",
                "version": 2,
                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1},
            }),
        );
        Operator {
            key,
            account,
            jwt,
            account_jwt,
        }
    }

    /// nats-server configuration: this operator, the account preloaded in
    /// a memory resolver.
    pub fn server_config(&self) -> String {
        format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n}}\n",
            self.jwt,
            self.account.public_key(),
            self.account_jwt
        )
    }

    /// A user of the account: its JWT and `.creds` text.
    pub fn user(&self, name: &str) -> (KeyPair, String) {
        let user = KeyPair::new_user();
        let creds = self.user_creds_signed_by(&self.account, &user, name);
        (user, creds)
    }

    /// A `.creds` file text for `user` with a JWT issued by `issuer`.
    pub fn user_creds_signed_by(&self, issuer: &KeyPair, user: &KeyPair, name: &str) -> String {
        let jwt = encode(
            issuer,
            &user.public_key(),
            name,
            json!({"type": "user", "version": 2, "pub": {}, "sub": {},
                   "subs": -1, "data": -1, "payload": -1}),
        );
        creds(&jwt, &user.seed().unwrap())
    }
}

/// The text of a `.creds` file as `nsc` writes it.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}
