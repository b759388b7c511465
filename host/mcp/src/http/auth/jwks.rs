//! The issuer's public keys (a JWKS), from a file or an HTTPS URL, cached
//! and fetched again when a token names a key the cache lacks (the issuer
//! rotated its keys) or the cache is old, never more often than a floor.
//!
//! Only signing keys of asymmetric families are kept: a symmetric (`oct`)
//! key in the set is ignored, so no token can be verified with an HMAC
//! keyed by anything in it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

/// The largest key set read, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// The longest a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the issuer's key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksSource {
    /// A JSON file, read again on refresh.
    File(PathBuf),
    /// An `https://` URL (`http://` only to a loopback host).
    Url(Url),
}

impl JwksSource {
    /// `https://...` or `http://<loopback>...` as a URL, anything else as
    /// a file path.
    pub fn parse(source: &str) -> Result<Self, JwksError> {
        if !(source.starts_with("https://") || source.starts_with("http://")) {
            return Ok(JwksSource::File(PathBuf::from(source)));
        }
        let url = Url::parse(source).map_err(|_| JwksError::InsecureUrl(source.to_owned()))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() != "https" && !loopback {
            return Err(JwksError::InsecureUrl(source.to_owned()));
        }
        Ok(JwksSource::Url(url))
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Url(url) => write!(f, "{url}"),
        }
    }
}

/// Why the key set could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The file could not be read.
    #[error("reading the key set {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// The URL could not be fetched.
    #[error("fetching the key set from {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// What the client said.
        #[source]
        source: reqwest::Error,
    },
    /// The URL answered with an error status.
    #[error("the key set at {url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Larger than the limit (1 MiB).
    #[error("the key set is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not a JWKS document.
    #[error("the key set is not a JWKS document")]
    Parse(#[source] serde_json::Error),
    /// An `http://` URL to a host other than loopback, or no URL at all.
    #[error("the key set URL {0} is refused: use https (plain http only to a loopback host)")]
    InsecureUrl(String),
    /// Not one key the server can verify signatures with.
    #[error("the key set holds no asymmetric signing key")]
    NoUsableKey,
}

/// One usable key.
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when it names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl Key {
    /// A signing key of an asymmetric family, or `None`.
    fn of(jwk: &Jwk) -> Option<Key> {
        if matches!(
            jwk.algorithm,
            AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
        ) {
            return None;
        }
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return None;
        }
        let alg = match jwk.common.key_algorithm {
            None => None,
            // KeyAlgorithm spells the signing algorithms as Algorithm does;
            // the encryption ones do not parse and drop the key.
            Some(named) => Some(Algorithm::from_str(&format!("{named:?}")).ok()?),
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        })
    }

    fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|own| own == alg)
    }
}

/// The keys as last read.
#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
    read_at: Option<Instant>,
}

impl KeySet {
    /// The key for a token's `kid` and `alg`: the one with that id, or,
    /// for a token without `kid`, the only key that fits.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
        match kid {
            Some(kid) => fitting
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            None => match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only.key.clone()),
                _ => None,
            },
        }
    }
}

/// The cached key set and how to read it again.
pub(super) struct Jwks {
    source: JwksSource,
    client: reqwest::Client,
    current: RwLock<Arc<KeySet>>,
    /// Held while reading the set, so concurrent misses read it once.
    reading: tokio::sync::Mutex<()>,
    /// The least time between two reads prompted by unknown keys.
    pub(super) min_refresh: Duration,
    /// The oldest a set may be before it is read again.
    pub(super) max_age: Duration,
}

/// The outcome of looking a key up.
pub(super) enum Lookup {
    Found(DecodingKey),
    Unknown,
    /// No key is known and the set could not be read.
    Unavailable,
}

impl Jwks {
    pub(super) fn new(source: JwksSource) -> Self {
        Jwks {
            source,
            client: reqwest::Client::new(),
            current: RwLock::new(Arc::new(KeySet::default())),
            reading: tokio::sync::Mutex::new(()),
            min_refresh: Duration::from_secs(10),
            max_age: Duration::from_secs(3600),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the set now and keeps it.
    pub(super) async fn refresh(&self) -> Result<(), JwksError> {
        let bytes = self.read_source().await?;
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(JwksError::Parse)?;
        let keys: Vec<Key> = set.keys.iter().filter_map(Key::of).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        let fresh = Arc::new(KeySet {
            keys,
            read_at: Some(Instant::now()),
        });
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// The key for a token, reading the set again when the token names a
    /// key it lacks or the set is old (at most once per `min_refresh`).
    pub(super) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let set = self.snapshot();
        let fresh = set.read_at.is_some_and(|at| at.elapsed() < self.max_age);
        if fresh {
            if let Some(key) = set.find(kid, alg) {
                return Lookup::Found(key);
            }
        }
        let _reading = self.reading.lock().await;
        // Someone else may have read it while this one waited.
        let set = self.snapshot();
        let due = set
            .read_at
            .is_none_or(|at| at.elapsed() >= self.min_refresh);
        if due {
            if let Err(e) = self.refresh().await {
                tracing::warn!(source = %self.source, error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "reading the JWKS failed");
            }
        }
        let set = self.snapshot();
        match set.find(kid, alg) {
            Some(key) => Lookup::Found(key),
            None if set.keys.is_empty() => Lookup::Unavailable,
            None => Lookup::Unknown,
        }
    }

    async fn read_source(&self) -> Result<Vec<u8>, JwksError> {
        match &self.source {
            JwksSource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::Read {
                        path: path.clone(),
                        source,
                    })?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(JwksError::TooLarge);
                }
                Ok(bytes)
            }
            JwksSource::Url(url) => {
                let fetch_error = |source| JwksError::Fetch {
                    url: url.to_string(),
                    source,
                };
                let mut response = self
                    .client
                    .get(url.clone())
                    .timeout(FETCH_TIMEOUT)
                    .send()
                    .await
                    .map_err(fetch_error)?;
                if !response.status().is_success() {
                    return Err(JwksError::Status {
                        url: url.to_string(),
                        status: response.status().as_u16(),
                    });
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
                    if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(JwksError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(bytes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_urls_travel_encrypted_except_to_loopback() {
        assert!(matches!(
            JwksSource::parse("https://issuer.example/jwks.json"),
            Ok(JwksSource::Url(_))
        ));
        for loopback in [
            "http://127.0.0.1:9/jwks",
            "http://localhost/jwks",
            "http://[::1]/jwks",
        ] {
            assert!(
                matches!(JwksSource::parse(loopback), Ok(JwksSource::Url(_))),
                "{loopback}"
            );
        }
        for refused in ["http://issuer.example/jwks", "http://10.0.0.1/jwks"] {
            assert!(
                matches!(JwksSource::parse(refused), Err(JwksError::InsecureUrl(_))),
                "{refused}"
            );
        }
        assert_eq!(
            JwksSource::parse("keys/jwks.json").ok(),
            Some(JwksSource::File(PathBuf::from("keys/jwks.json")))
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]}))
        .unwrap();
        let keys: Vec<Key> = set.keys.iter().filter_map(Key::of).collect();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("sig")]);
        let set = KeySet {
            keys,
            read_at: None,
        };
        assert!(set.find(Some("sig"), Algorithm::ES256).is_some());
        assert!(set.find(None, Algorithm::ES256).is_some());
        assert!(set.find(Some("sig"), Algorithm::RS256).is_none());
        assert!(set.find(Some("hmac"), Algorithm::HS256).is_none());
    }
}
