//! Verifying an HTTP request's credentials: the `Authorization` header
//! read as RFC 9110 and RFC 6750 say (the scheme case-insensitive), and
//! turned into a [`Principal`] by an [`Authenticate`] implementation.
//!
//! A request without credentials is the server's to serve as its fallback
//! identity; a request with credentials that cannot be used (another
//! scheme, no token, a token the verifier refuses) gets 401 and is never
//! served as anybody else.

use std::future::Future;
use std::pin::Pin;

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::identity::Principal;

/// A boxed future of an authentication.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Principal>, AuthError>> + Send + 'a>>;

/// Turns a request's credentials into the principal it stands for.
pub trait Authenticate: Send + Sync + 'static {
    /// The principal of a request with these headers: `Ok(None)` when it
    /// carries no credentials, an error when it carries unusable ones.
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a>;
}

/// Why a request's credentials were refused (answered with HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The `Authorization` header is not a bearer credential (`Basic`, ...).
    #[error("the Authorization header is not a Bearer credential")]
    NotBearer,
    /// `Bearer` with no token, or a token with characters RFC 6750 excludes.
    #[error("the Authorization header carries no well-formed bearer token")]
    MalformedToken,
    /// More than one `Authorization` header.
    #[error("the request has more than one Authorization header")]
    Repeated,
    /// Credentials came, but this server verifies none.
    #[error("this server accepts no credentials")]
    NotAccepted,
}

impl AuthError {
    /// The RFC 6750 error code for `WWW-Authenticate`.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            AuthError::NotAccepted => "invalid_token",
            _ => "invalid_request",
        }
    }
}

/// The bearer token of a request: `None` without an `Authorization`
/// header; the scheme is matched case-insensitively (`bearer` is what
/// OAuth's `token_type` says).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Repeated);
    }
    let value = value.to_str().map_err(|_| AuthError::MalformedToken)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim_matches(' ');
    if is_token68(token) {
        Ok(Some(token))
    } else {
        Err(AuthError::MalformedToken)
    }
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Every bearer token is an owner of its own, known by a keyed digest of
/// the token (HMAC-SHA-256), never by the token: whoever reads the store
/// or a backup learns no token. Nothing verifies the token: anyone who
/// sends the same string is the same owner, so this is for development
/// and for deployments whose proxy already verified the token.
///
/// Every replica of one deployment needs the same key, or each sees
/// different owners.
#[derive(Clone)]
pub struct TokenDigest {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest { .. }")
    }
}

impl TokenDigest {
    /// Digests keyed by `secret` (any length; the deployment's secret).
    pub fn new(secret: &[u8]) -> Self {
        let mut key = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // One secret may key other things too: this use has its own label.
        key.update(b"pmcp-tasks bearer owner v1\0");
        TokenDigest { key }
    }

    /// Digests keyed by a random secret of this process: owners hold only
    /// until it exits, and only on this replica.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).unwrap_or_else(|e| panic!("no randomness for a key: {e}"));
        TokenDigest::new(&secret)
    }

    /// The owner id of `token`: `token-sha256:` and 64 hex digits.
    pub fn owner_of(&self, token: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(token.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut owner = String::with_capacity(13 + 64);
        owner.push_str("token-sha256:");
        for byte in digest {
            owner.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            owner.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        owner
    }
}

impl Authenticate for TokenDigest {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        let principal =
            bearer_token(headers).map(|token| token.map(|t| Principal::new(self.owner_of(t))));
        Box::pin(std::future::ready(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc "] {
            assert_eq!(bearer_token(&headers(&[value])), Ok(Some("abc")), "{value}");
        }
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
    }

    #[test]
    fn unusable_credentials_are_refused_never_anonymous() {
        let cases = [
            ("Basic dXNlcjpwYXNz", AuthError::NotBearer),
            ("Bearer", AuthError::MalformedToken),
            ("Bearer ", AuthError::MalformedToken),
            ("Bearer a b", AuthError::MalformedToken),
            ("Bearer ===", AuthError::MalformedToken),
            ("Token abc", AuthError::NotBearer),
        ];
        for (value, error) in cases {
            assert_eq!(bearer_token(&headers(&[value])), Err(error), "{value}");
        }
        let twice = headers(&["Bearer a", "Bearer b"]);
        assert_eq!(bearer_token(&twice), Err(AuthError::Repeated));
    }

    #[test]
    fn owners_are_keyed_digests_not_tokens() {
        let digest = TokenDigest::new(b"deployment secret");
        let owner = digest.owner_of("secret-token-123");
        assert!(!owner.contains("secret-token-123"));
        assert_eq!(owner.len(), 13 + 64);
        assert_eq!(
            owner,
            TokenDigest::new(b"deployment secret").owner_of("secret-token-123")
        );
        assert_ne!(
            owner,
            TokenDigest::new(b"another secret").owner_of("secret-token-123")
        );
        assert_ne!(owner, digest.owner_of("secret-token-124"));
    }
}
