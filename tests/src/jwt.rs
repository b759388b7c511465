//! An OAuth issuer for the identity tests: its own P-256 signing key, its
//! JWKS written to a file a server reads, and access tokens minted with
//! any claims, including the forged kinds a server must refuse.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// Unique names for key ids and files.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// One signing key and its public JWK.
pub struct SigningKey {
    key: EncodingKey,
    /// The key id tokens name.
    pub kid: String,
    /// The public half, as published.
    pub jwk: Jwk,
}

impl SigningKey {
    /// A fresh ES256 key.
    pub fn generate() -> SigningKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
        let der = pair.to_pkcs8v1().expect("PKCS#8");
        let key = EncodingKey::from_ec_der(der.as_ref());
        let kid = format!(
            "k{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("a JWK");
        jwk.common.key_id = Some(kid.clone());
        SigningKey { key, kid, jwk }
    }

    /// `claims` signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing")
    }
}

/// An issuer: its URL, its current keys, and the JWKS file it publishes.
pub struct Issuer {
    /// The `iss` of its tokens.
    pub url: String,
    /// The key new tokens are signed with.
    pub key: SigningKey,
    /// The JWKS file (the public keys published so far).
    pub jwks_path: PathBuf,
    published: Vec<Jwk>,
}

impl Issuer {
    /// An issuer named `url` with one key, published.
    pub fn new(url: &str) -> Issuer {
        let key = SigningKey::generate();
        let jwks_path = std::env::temp_dir().join(format!(
            "pmcp-tasks-jwks-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut issuer = Issuer {
            url: url.to_owned(),
            published: vec![key.jwk.clone()],
            key,
            jwks_path,
        };
        issuer.publish();
        issuer
    }

    fn publish(&mut self) {
        let set = JwkSet {
            keys: self.published.clone(),
        };
        std::fs::write(&self.jwks_path, serde_json::to_vec(&set).expect("JSON")).expect("JWKS");
    }

    /// Rotates to a new signing key, published beside the old ones.
    pub fn rotate(&mut self) {
        self.key = SigningKey::generate();
        self.published.push(self.key.jwk.clone());
        self.publish();
    }

    /// The claims of a token for `sub` and `aud`, valid from now for
    /// `lifetime_s` seconds (negative: expired that long ago).
    pub fn claims(&self, sub: &str, aud: &str, lifetime_s: i64) -> Value {
        let now = now_s();
        json!({
            "iss": self.url,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime_s,
            "jti": format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        })
    }

    /// A token of `claims`, signed with the current key.
    pub fn token(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }

    /// The forgery that confuses a public key with an HMAC secret: `claims`
    /// signed HS256, keyed by the current key's public coordinates.
    pub fn hmac_signed_with_public_key(&self, claims: &Value) -> String {
        let public = serde_json::to_vec(&self.key.jwk).expect("JSON");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key.kid.clone());
        let key = EncodingKey::from_secret(&public).expect("an HMAC key");
        jsonwebtoken::encode(&header, claims, &key).expect("signing")
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jwks_path);
    }
}

/// An unsigned token (`alg: none`), which no server may accept.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("JSON"));
    format!("{header}.{body}.")
}

/// A token whose signature is another token's: the claims changed after
/// signing.
pub fn tampered(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next(), parts.next(), parts.next());
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("JSON"));
    format!(
        "{}.{body}.{}",
        header.unwrap_or_default(),
        signature.unwrap_or_default()
    )
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
