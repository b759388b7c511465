//! Credentials as HTTP carries them: the [`Authenticate`] trait every
//! verifier implements, why credentials are refused, and the bearer token
//! of a request.

use std::future::Future;
use std::pin::Pin;

use http::{HeaderMap, StatusCode};

use crate::identity::Principal;

/// A boxed future of an authentication.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Principal>, AuthError>> + Send + 'a>>;

/// Turns a request's credentials into the principal it stands for.
pub trait Authenticate: Send + Sync + 'static {
    /// The principal of a request with these headers: `Ok(None)` when it
    /// carries no credentials and the server may serve it as its fallback
    /// identity, an error when it must not be served.
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a>;
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no credentials and this server requires them.
    #[error("this server requires a bearer token")]
    Missing,
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
    /// A bearer token the verifier refuses.
    #[error("the access token is not accepted: {0}")]
    InvalidToken(TokenProblem),
    /// A valid token without every scope this server requires.
    #[error("the access token lacks a required scope ({0})")]
    InsufficientScope(String),
    /// The identity header a trusted proxy sets is missing or unusable.
    #[error("the identity header {0} is missing, repeated or unusable")]
    BadIdentityHeader(String),
    /// The keys that verify tokens could not be had (the server's problem,
    /// answered with 503; the cause is logged).
    #[error("the keys that verify access tokens are unavailable")]
    KeysUnavailable,
}

/// What is wrong with a refused access token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// Not a JWS in compact form, or a header or claims that do not parse.
    #[error("it is not a well-formed JWT")]
    Malformed,
    /// Its header's `typ` is not an access token's (RFC 9068: `at+jwt`):
    /// an ID token, say.
    #[error("it is not an access token (its typ is not at+jwt)")]
    NotAnAccessToken,
    /// Signed with an algorithm outside the allowlist (`none`, HMAC, ...).
    #[error("its signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No key of the issuer's key set matches its `kid` and algorithm.
    #[error("no known key matches it")]
    UnknownKey,
    /// The signature does not verify.
    #[error("its signature does not verify")]
    BadSignature,
    /// Past its `exp` (with the leeway).
    #[error("it has expired")]
    Expired,
    /// Before its `nbf` (with the leeway).
    #[error("it is not valid yet")]
    NotYetValid,
    /// Issued by another issuer.
    #[error("it was issued by another issuer")]
    WrongIssuer,
    /// Issued for another audience (another resource).
    #[error("it was issued for another audience")]
    WrongAudience,
    /// A claim this server requires is missing.
    #[error("it lacks the {0} claim")]
    MissingClaim(String),
    /// Not one of the tokens this server knows.
    #[error("it is not a known token")]
    Unknown,
}

impl AuthError {
    /// The HTTP status of the refusal: 403 for a missing scope, 503 when
    /// the keys are unavailable, 401 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code for `WWW-Authenticate`; none for a request
    /// that carried no credentials (RFC 6750, section 3.1).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing | AuthError::KeysUnavailable => None,
            AuthError::NotAccepted | AuthError::InvalidToken(_) => Some("invalid_token"),
            AuthError::InsufficientScope(_) => Some("insufficient_scope"),
            AuthError::NotBearer
            | AuthError::MalformedToken
            | AuthError::Repeated
            | AuthError::BadIdentityHeader(_) => Some("invalid_request"),
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
pub(super) fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
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
}
