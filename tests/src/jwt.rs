//! An OAuth issuer for the identity tests: its own P-256 signing key, its
//! JWKS written to a file a server reads (or served at a loopback URL),
//! and access tokens minted with any claims, including the forged kinds a
//! server must refuse.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The `typ` of a JWT access token (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

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

    /// `claims` signed by this key, typed as an access token (`at+jwt`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_typed(claims, Some(ACCESS_TOKEN_TYPE))
    }

    /// `claims` signed by this key, with `typ` in the header (`None`: no
    /// `typ` at all).
    pub fn sign_typed(&self, claims: &Value, typ: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = typ.map(str::to_owned);
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

    /// Writes the published keys to the JWKS file, whole (a new file
    /// renamed over the old one, as a careful operator does), so a server
    /// never reads half of it.
    fn publish(&mut self) {
        let set = JwkSet {
            keys: self.published.clone(),
        };
        let fresh = self.jwks_path.with_extension("new");
        std::fs::write(&fresh, serde_json::to_vec(&set).expect("JSON")).expect("JWKS");
        std::fs::rename(&fresh, &self.jwks_path).expect("JWKS");
    }

    /// The JWKS document of the published keys.
    pub fn jwks_document(&self) -> Vec<u8> {
        std::fs::read(&self.jwks_path).expect("JWKS")
    }

    /// Rotates to a new signing key, published beside the old ones.
    pub fn rotate(&mut self) {
        self.key = SigningKey::generate();
        self.published.push(self.key.jwk.clone());
        self.publish();
    }

    /// Stops publishing every key but the current one (a key removed from
    /// the set: revoked).
    pub fn retire_old_keys(&mut self) {
        self.published = vec![self.key.jwk.clone()];
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

    /// An access token of `claims`, signed with the current key.
    pub fn token(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }

    /// A token of `claims` signed with the current key, typed `typ`.
    pub fn token_typed(&self, claims: &Value, typ: Option<&str>) -> String {
        self.key.sign_typed(claims, typ)
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

/// An issuer's key set served over HTTP on a free loopback port, as an
/// authorization server publishes it (`jwks_uri`), with the caching
/// headers the test chooses; it serves the JWKS file as it is at each
/// request, so the issuer's rotations show. Stops when dropped.
pub struct JwksServer {
    /// The key set's URL.
    pub url: String,
    /// The `Cache-Control` header of every answer (none when empty).
    pub cache_control: Arc<Mutex<String>>,
    /// How many times the key set was fetched.
    pub fetches: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Serves `issuer`'s JWKS file with `cache_control`.
    pub async fn start(issuer: &Issuer, cache_control: &str) -> JwksServer {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the JWKS server");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        let path = issuer.jwks_path.clone();
        let cache_control = Arc::new(Mutex::new(cache_control.to_owned()));
        let fetches = Arc::new(AtomicU64::new(0));
        let (header, count) = (cache_control.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (path, header, count) = (path.clone(), header.clone(), count.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let body = std::fs::read(&path).unwrap_or_default();
                        let mut response =
                            hyper::Response::builder().header("content-type", "application/json");
                        let cache = header.lock().expect("header").clone();
                        if !cache.is_empty() {
                            response = response.header("cache-control", cache);
                        }
                        let response = response
                            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                            .expect("a response");
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        JwksServer {
            url,
            cache_control,
            fetches,
            task,
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
