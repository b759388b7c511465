//! The issuer's public keys (a JWKS), from a file or an HTTPS URL, cached,
//! so that a key the issuer removes stops verifying within a stated time:
//!
//! - a file is checked for a change every second (`FILE_CHECK`, one
//!   `stat`) and read again when it changed;
//! - a URL's keys are used as long as its HTTP caching says (`max-age`,
//!   `Expires`), within the operator's floor and ceiling (10 s and 5 min
//!   by default), then fetched again;
//! - a token naming a key the cache lacks (the issuer added one) reads the
//!   set again, at most once per the floor.
//!
//! A source that cannot be read keeps the keys read before in use (logged,
//! tried again after the floor): an issuer that is down does not lock
//! every caller out.
//!
//! Only signing keys of asymmetric families are kept: a symmetric (`oct`)
//! key in the set is ignored, so no token can be verified with an HMAC
//! keyed by anything in it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

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

/// How often a key set file is checked for a change (one `stat`).
pub(super) const FILE_CHECK: Duration = Duration::from_secs(1);

/// What tells one version of a key set file from another: rewriting it
/// changes its length or modification time, replacing it (a rename over
/// it) its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: (u64, u64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let inode = (0, 0);
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        }
    }
}

/// The keys as last read, and until when they are used without a check.
#[derive(Default)]
struct KeySet {
    keys: Arc<Vec<Key>>,
    /// When the keys were read.
    read_at: Option<SystemTime>,
    /// When the source was last read or checked, with or without success.
    tried_at: Option<SystemTime>,
    /// Until when the keys are used as they are.
    fresh_until: Option<SystemTime>,
    /// The file's version the keys were read from.
    stamp: Option<FileStamp>,
}

impl KeySet {
    fn is_fresh(&self, now: SystemTime) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
            && self.tried_at.is_some_and(|tried| tried <= now)
    }

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

/// The time from `then` to `now`; unbounded when the clock went back, so
/// whatever waits on it is due.
fn since(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::MAX)
}

/// How long an HTTP response may be used, as its caching headers say
/// (RFC 9111): `no-store` or `no-cache` none, else `max-age` less `Age`,
/// else `Expires` less `Date`; `None` when they say nothing.
pub(super) fn cache_lifetime(headers: &http::HeaderMap) -> Option<Duration> {
    let directives = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|directive| directive.trim().to_ascii_lowercase());
    let mut max_age = None;
    for directive in directives {
        if directive == "no-store" || directive == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = Some(seconds.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
    }
    let header_time = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    if let Some(max_age) = max_age {
        let age = headers
            .get(http::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        return Some(Duration::from_secs(max_age.saturating_sub(age)));
    }
    let expires = headers.get(http::header::EXPIRES)?;
    let Some(expires) = expires
        .to_str()
        .ok()
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        // An Expires that does not parse means already expired.
        return Some(Duration::ZERO);
    };
    let date = header_time(http::header::DATE).unwrap_or_else(SystemTime::now);
    Some(expires.duration_since(date).unwrap_or(Duration::ZERO))
}

/// A key set as read from its source.
struct Read {
    bytes: Vec<u8>,
    /// A URL's caching lifetime.
    lifetime: Option<Duration>,
    /// A file's version.
    stamp: Option<FileStamp>,
}

/// The cached key set and how to read it again.
pub(super) struct Jwks {
    source: JwksSource,
    client: reqwest::Client,
    current: RwLock<Arc<KeySet>>,
    /// Held while reading the set, so concurrent misses read it once.
    reading: tokio::sync::Mutex<()>,
    /// The least time between two reads (a token naming an unknown key, a
    /// URL that says not to cache, a source that failed).
    pub(super) min_refresh: Duration,
    /// The longest a set is used without reading it again.
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
            max_age: Duration::from_secs(300),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn keep(&self, set: KeySet) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
    }

    /// How long keys read at `now` are used as they are: a file's until
    /// its next check, a URL's as long as its caching says, within
    /// `min_refresh` and `max_age`.
    fn freshness(&self, read: &Read) -> Duration {
        match self.source {
            JwksSource::File(_) => FILE_CHECK.min(self.max_age),
            JwksSource::Url(_) => read
                .lifetime
                .unwrap_or(self.max_age)
                .clamp(self.min_refresh.min(self.max_age), self.max_age),
        }
    }

    /// Reads the set at `now` and keeps it.
    pub(super) async fn refresh(&self, now: SystemTime) -> Result<(), JwksError> {
        let read = self.read_source().await?;
        self.keep_read(read, now)
    }

    fn keep_read(&self, read: Read, now: SystemTime) -> Result<(), JwksError> {
        let set: JwkSet = serde_json::from_slice(&read.bytes).map_err(JwksError::Parse)?;
        let keys: Vec<Key> = set.keys.iter().filter_map(Key::of).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        let fresh_until = now.checked_add(self.freshness(&read));
        self.keep(KeySet {
            keys: Arc::new(keys),
            read_at: Some(now),
            tried_at: Some(now),
            fresh_until,
            stamp: read.stamp,
        });
        Ok(())
    }

    /// Brings the set up to date at `now`: a file is read again only when
    /// it changed (or the set is `max_age` old), a URL always. A source
    /// that fails leaves the keys as they were, tried again after
    /// `min_refresh`.
    async fn revalidate(&self, set: &KeySet, now: SystemTime) {
        let outcome = async {
            let old = set.read_at.is_none_or(|at| since(now, at) >= self.max_age);
            if let (JwksSource::File(path), Some(stamp), false) = (&self.source, set.stamp, old) {
                let metadata =
                    tokio::fs::metadata(path)
                        .await
                        .map_err(|source| JwksError::Read {
                            path: path.clone(),
                            source,
                        })?;
                if FileStamp::of(&metadata) == stamp {
                    self.keep(KeySet {
                        keys: set.keys.clone(),
                        read_at: set.read_at,
                        tried_at: Some(now),
                        fresh_until: now.checked_add(FILE_CHECK.min(self.max_age)),
                        stamp: Some(stamp),
                    });
                    return Ok(());
                }
            }
            self.refresh(now).await
        };
        if let Err(e) = outcome.await {
            tracing::warn!(source = %self.source, error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "reading the JWKS failed; the keys read before stay in use");
            self.keep(KeySet {
                keys: set.keys.clone(),
                read_at: set.read_at,
                tried_at: Some(now),
                fresh_until: now.checked_add(self.min_refresh),
                stamp: set.stamp,
            });
        }
    }

    /// The key for a token at `now`, bringing the set up to date first when
    /// it is no longer fresh, or when the token names a key it lacks (at
    /// most once per `min_refresh`).
    pub(super) async fn key(&self, kid: Option<&str>, alg: Algorithm, now: SystemTime) -> Lookup {
        let set = self.snapshot();
        if set.is_fresh(now) {
            if let Some(key) = set.find(kid, alg) {
                return Lookup::Found(key);
            }
        }
        let _reading = self.reading.lock().await;
        // Someone else may have read it while this one waited.
        let set = self.snapshot();
        let stale = !set.is_fresh(now);
        let unknown = set.find(kid, alg).is_none();
        let may_read = set
            .tried_at
            .is_none_or(|at| since(now, at) >= self.min_refresh);
        if stale || (unknown && may_read) {
            self.revalidate(&set, now).await;
        }
        let set = self.snapshot();
        match set.find(kid, alg) {
            Some(key) => Lookup::Found(key),
            None if set.keys.is_empty() => Lookup::Unavailable,
            None => Lookup::Unknown,
        }
    }

    async fn read_source(&self) -> Result<Read, JwksError> {
        match &self.source {
            JwksSource::File(path) => {
                let read_error = |source| JwksError::Read {
                    path: path.clone(),
                    source,
                };
                // The version is taken first: a change while reading is
                // seen at the next check.
                let metadata = tokio::fs::metadata(path).await.map_err(read_error)?;
                if metadata.len() > MAX_JWKS_BYTES as u64 {
                    return Err(JwksError::TooLarge);
                }
                let bytes = tokio::fs::read(path).await.map_err(read_error)?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(JwksError::TooLarge);
                }
                Ok(Read {
                    bytes,
                    lifetime: None,
                    stamp: Some(FileStamp::of(&metadata)),
                })
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
                let lifetime = cache_lifetime(response.headers());
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
                    if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(JwksError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Read {
                    bytes,
                    lifetime,
                    stamp: None,
                })
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
            keys: Arc::new(keys),
            ..KeySet::default()
        };
        assert!(set.find(Some("sig"), Algorithm::ES256).is_some());
        assert!(set.find(None, Algorithm::ES256).is_some());
        assert!(set.find(Some("sig"), Algorithm::RS256).is_none());
        assert!(set.find(Some("hmac"), Algorithm::HS256).is_none());
    }

    #[test]
    fn a_response_s_caching_headers_give_its_lifetime() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(cache_lifetime(&headers(&[])), None);
        assert_eq!(
            cache_lifetime(&headers(&[(
                "cache-control",
                "public, max-age=600, must-revalidate"
            )])),
            secs(600)
        );
        assert_eq!(
            cache_lifetime(&headers(&[
                ("cache-control", "max-age=600"),
                ("age", "100")
            ])),
            secs(500)
        );
        assert_eq!(
            cache_lifetime(&headers(&[("cache-control", "max-age=60"), ("age", "100")])),
            secs(0)
        );
        for refused in ["no-store", "No-Cache", "max-age=60, no-cache"] {
            assert_eq!(
                cache_lifetime(&headers(&[("cache-control", refused)])),
                secs(0),
                "{refused}"
            );
        }
        assert_eq!(
            cache_lifetime(&headers(&[
                ("date", "Mon, 07 Dec 2026 12:00:00 GMT"),
                ("expires", "Mon, 07 Dec 2026 12:30:00 GMT"),
            ])),
            secs(1800)
        );
        assert_eq!(
            cache_lifetime(&headers(&[
                ("date", "Mon, 07 Dec 2026 12:00:00 GMT"),
                ("expires", "0"),
            ])),
            secs(0)
        );
        assert_eq!(
            cache_lifetime(&headers(&[
                ("cache-control", "max-age=10"),
                ("expires", "Mon, 07 Dec 2026 12:30:00 GMT"),
            ])),
            secs(10),
            "max-age wins over Expires"
        );
    }
}
