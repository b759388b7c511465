//! OAuth access tokens in JWT form, validated as a resource server must
//! (MCP authorization, RFC 9068): the header's `typ` (`at+jwt`, so an ID
//! token of the same issuer and audience is no access token), the
//! signature against the issuer's JWKS with an asymmetric algorithm from
//! an allowlist (never `none`, never HMAC, so a public key can never serve
//! as a shared secret), the issuer, this resource as the audience, and the
//! lifetime (`exp` required, `nbf` when present) with a small leeway,
//! against a clock that tests can set (the key set's cache ages by it too).
//!
//! The owner is the issuer and the subject: a refreshed token (new `jti`,
//! later `exp`) is the same owner and sees the same tasks.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::credentials::{bearer_token, AuthError, AuthFuture, Authenticate, TokenProblem};
use super::jwks::{Jwks, JwksError, JwksSource, Lookup};
use crate::identity::Principal;

/// The asymmetric JWS algorithms, all allowed by default.
pub const ASYMMETRIC_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The time tokens are checked against (the system clock by default).
pub type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A verifier configuration that cannot be safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// Not a JWS algorithm name.
    #[error("{0} is not a JWS signing algorithm")]
    UnknownAlgorithm(String),
    /// An HMAC algorithm: a JWKS holds public keys, and a public key must
    /// never be usable as a shared secret.
    #[error("{0} is symmetric (HMAC) and never allowed: the keys come from a public key set")]
    Symmetric(String),
    /// An empty allowlist.
    #[error("no signing algorithm is allowed")]
    NoAlgorithm,
    /// No audience: the server must check tokens were issued for it.
    #[error("no audience: a resource server accepts only tokens issued for it")]
    NoAudience,
}

/// Verifies JWT access tokens; see the module documentation.
pub struct JwtVerifier {
    keys: Jwks,
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    required_scopes: Vec<String>,
    untyped_tokens: bool,
    clock: WallClock,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("required_scopes", &self.required_scopes)
            .field("untyped_tokens", &self.untyped_tokens)
            .finish_non_exhaustive()
    }
}

/// The claims read from a verified token.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: f64,
    nbf: Option<f64>,
    /// RFC 8693 / RFC 9068: space-separated scopes.
    scope: Option<String>,
    /// The array form some issuers use instead.
    scp: Option<Scopes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Listed(Vec<String>),
    Spaced(String),
}

impl Claims {
    fn has_scope(&self, wanted: &str) -> bool {
        let spaced = |s: &str| s.split(' ').any(|scope| scope == wanted);
        self.scope.as_deref().is_some_and(spaced)
            || match &self.scp {
                Some(Scopes::Listed(list)) => list.iter().any(|s| s == wanted),
                Some(Scopes::Spaced(s)) => spaced(s),
                None => false,
            }
    }
}

impl JwtVerifier {
    /// Tokens of `issuer`, signed by a key of `keys`, for `audience` (this
    /// server's resource URI), with any asymmetric algorithm, a 30 s leeway
    /// and no required scope.
    pub fn new(keys: JwksSource, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        JwtVerifier {
            keys: Jwks::new(keys),
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            algorithms: ASYMMETRIC_ALGORITHMS
                .iter()
                .filter_map(|name| Algorithm::from_str(name).ok())
                .collect(),
            leeway: Duration::from_secs(30),
            required_scopes: Vec::new(),
            untyped_tokens: false,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Accepting tokens for any of `audiences` (at least one).
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Result<Self, JwtConfigError> {
        if audiences.is_empty() {
            return Err(JwtConfigError::NoAudience);
        }
        self.audiences = audiences;
        Ok(self)
    }

    /// Allowing only these algorithms (names as in a JWS header).
    pub fn with_algorithms<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, JwtConfigError> {
        let mut algorithms = Vec::new();
        for name in names {
            let name = name.as_ref();
            let algorithm = Algorithm::from_str(name)
                .map_err(|_| JwtConfigError::UnknownAlgorithm(name.to_owned()))?;
            if algorithm.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return Err(JwtConfigError::Symmetric(name.to_owned()));
            }
            algorithms.push(algorithm);
        }
        if algorithms.is_empty() {
            return Err(JwtConfigError::NoAlgorithm);
        }
        self.algorithms = algorithms;
        Ok(self)
    }

    /// With this leeway on `exp` and `nbf` (clock skew).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requiring every one of `scopes` (refused with 403 otherwise).
    pub fn with_required_scopes(mut self, scopes: Vec<String>) -> Self {
        self.required_scopes = scopes;
        self
    }

    /// Also accepting tokens whose header `typ` is `JWT` or absent, when
    /// `accept`. RFC 9068 (section 4) has a resource server refuse every
    /// JWT but `at+jwt` (or `application/at+jwt`), and that is the
    /// default; some authorization servers type their access tokens `JWT`
    /// (Microsoft Entra ID and Keycloak do) or not at all. Accepting them
    /// lets an ID token of the same issuer with this audience pass as an
    /// access token; any other `typ` is refused either way.
    pub fn with_untyped_tokens(mut self, accept: bool) -> Self {
        self.untyped_tokens = accept;
        self
    }

    /// Checking lifetimes (and aging the cached key set) against `clock`
    /// instead of the system clock.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// Reading the key set again at most once per `min_interval` (for a
    /// token naming an unknown key, a URL that says not to cache, a source
    /// that failed), and using it at most `max_age` without reading it
    /// again: a URL's keys live as long as its HTTP caching says within
    /// these bounds, a file is checked for a change every second. A key
    /// the issuer removes stops verifying within `max_age` (a URL) or a
    /// second (a file). Defaults: 10 s and 5 min.
    pub fn with_key_refresh(mut self, min_interval: Duration, max_age: Duration) -> Self {
        self.keys.min_refresh = min_interval;
        self.keys.max_age = max_age;
        self
    }

    /// Reads the key set now: a server checks its configuration at start.
    pub async fn load_keys(&self) -> Result<(), JwksError> {
        self.keys.refresh((self.clock)()).await
    }

    /// The scopes this verifier requires.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The owner id of `subject` at `issuer`: both, the issuer's length
    /// first so no pair of them can spell another's.
    pub fn owner_of(issuer: &str, subject: &str) -> String {
        format!("jwt:{}:{issuer}:{subject}", issuer.len())
    }

    /// The principal of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let invalid = |problem| AuthError::InvalidToken(problem);
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
                invalid(TokenProblem::AlgorithmNotAllowed)
            }
            _ => invalid(TokenProblem::Malformed),
        })?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(TokenProblem::AlgorithmNotAllowed));
        }
        if !accepted_type(header.typ.as_deref(), self.untyped_tokens) {
            return Err(invalid(TokenProblem::NotAnAccessToken));
        }
        // An embedded `jwk`, `jku` or `x5u` in the header is never trusted:
        // the key comes from the configured set only.
        let now = (self.clock)();
        let key = match self.keys.key(header.kid.as_deref(), header.alg, now).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(invalid(TokenProblem::UnknownKey)),
            Lookup::Unavailable => return Err(AuthError::KeysUnavailable),
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Lifetimes are checked below, against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| {
                invalid(match e.into_kind() {
                    ErrorKind::InvalidSignature => TokenProblem::BadSignature,
                    ErrorKind::InvalidIssuer => TokenProblem::WrongIssuer,
                    ErrorKind::InvalidAudience => TokenProblem::WrongAudience,
                    ErrorKind::MissingRequiredClaim(claim) => TokenProblem::MissingClaim(claim),
                    ErrorKind::InvalidAlgorithm => TokenProblem::AlgorithmNotAllowed,
                    _ => TokenProblem::Malformed,
                })
            })?
            .claims;
        self.check_lifetime(&claims)?;
        if claims.sub.is_empty() {
            return Err(invalid(TokenProblem::MissingClaim("sub".to_owned())));
        }
        let missing: Vec<&str> = self
            .required_scopes
            .iter()
            .filter(|scope| !claims.has_scope(scope))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AuthError::InsufficientScope(missing.join(" ")));
        }
        Ok(Principal::new(JwtVerifier::owner_of(
            &claims.iss,
            &claims.sub,
        )))
    }

    fn check_lifetime(&self, claims: &Claims) -> Result<(), AuthError> {
        let now = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let leeway = self.leeway.as_secs_f64();
        if now > claims.exp + leeway {
            return Err(AuthError::InvalidToken(TokenProblem::Expired));
        }
        if claims.nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(AuthError::InvalidToken(TokenProblem::NotYetValid));
        }
        Ok(())
    }
}

/// Whether a token typed `typ` is an access token to this verifier: RFC
/// 9068's type (case-insensitive, with or without `application/`), and
/// `JWT` or no type when `untyped` tokens are accepted.
fn accepted_type(typ: Option<&str>, untyped: bool) -> bool {
    match typ {
        Some(typ) => {
            let typ = typ.to_ascii_lowercase();
            let typ = typ.strip_prefix("application/").unwrap_or(&typ);
            typ == "at+jwt" || (untyped && typ == "jwt")
        }
        None => untyped,
    }
}

impl Authenticate for JwtVerifier {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async move {
            match bearer_token(headers)? {
                Some(token) => self.verify(token).await.map(Some),
                None => Err(AuthError::Missing),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_is_never_allowed_and_an_allowlist_is_never_empty() {
        let verifier = || {
            JwtVerifier::new(
                JwksSource::File("jwks.json".into()),
                "https://issuer.test",
                "http://127.0.0.1/mcp",
            )
        };
        assert_eq!(
            verifier().with_algorithms(&["HS256"]).err(),
            Some(JwtConfigError::Symmetric("HS256".into()))
        );
        assert_eq!(
            verifier().with_algorithms(&["none"]).err(),
            Some(JwtConfigError::UnknownAlgorithm("none".into()))
        );
        assert_eq!(
            verifier().with_algorithms::<&str>(&[]).err(),
            Some(JwtConfigError::NoAlgorithm)
        );
        assert_eq!(
            verifier().with_audiences(Vec::new()).err(),
            Some(JwtConfigError::NoAudience)
        );
        assert!(verifier().with_algorithms(&ASYMMETRIC_ALGORITHMS).is_ok());
    }

    #[test]
    fn only_access_tokens_are_accepted_unless_untyped_ones_are_allowed() {
        for typ in [
            "at+jwt",
            "application/at+jwt",
            "AT+JWT",
            "Application/At+Jwt",
        ] {
            assert!(accepted_type(Some(typ), false), "{typ}");
            assert!(accepted_type(Some(typ), true), "{typ}");
        }
        for typ in [Some("JWT"), Some("jwt"), Some("application/jwt"), None] {
            assert!(!accepted_type(typ, false), "{typ:?}");
            assert!(accepted_type(typ, true), "{typ:?}");
        }
        for typ in [
            "JOSE",
            "dpop+jwt",
            "logout+jwt",
            "secevent+jwt",
            "",
            "at+jwt ",
        ] {
            assert!(!accepted_type(Some(typ), false), "{typ}");
            assert!(!accepted_type(Some(typ), true), "{typ}");
        }
    }

    #[test]
    fn no_issuer_and_subject_pair_spells_another() {
        assert_ne!(
            JwtVerifier::owner_of("https://a", "b:c"),
            JwtVerifier::owner_of("https://a:b", "c")
        );
        assert_eq!(
            JwtVerifier::owner_of("https://a", "alice"),
            "jwt:9:https://a:alice"
        );
    }

    #[test]
    fn scopes_are_read_in_both_forms() {
        let claims = |scope: Option<&str>, scp: Option<Scopes>| Claims {
            iss: String::new(),
            sub: String::new(),
            exp: 0.0,
            nbf: None,
            scope: scope.map(str::to_owned),
            scp,
        };
        assert!(claims(Some("tasks:read tasks:write"), None).has_scope("tasks:write"));
        assert!(!claims(Some("tasks:readx"), None).has_scope("tasks:read"));
        assert!(claims(None, Some(Scopes::Listed(vec!["a".into()]))).has_scope("a"));
        assert!(claims(None, Some(Scopes::Spaced("a b".into()))).has_scope("b"));
        assert!(!claims(None, None).has_scope("a"));
    }
}
