//! An identity set by a trusted reverse proxy that verified the caller
//! itself: opt-in, with the header named explicitly. Only safe when every
//! request reaches this server through that proxy, which must overwrite
//! the header (never pass a client's own through).

use http::{HeaderMap, HeaderName};

use super::credentials::{AuthError, AuthFuture, Authenticate};
use crate::identity::Principal;

/// The longest identity accepted from the header, in bytes.
const MAX_IDENTITY_BYTES: usize = 1024;

/// Owners from a header a trusted proxy sets; see the module documentation.
#[derive(Debug, Clone)]
pub struct TrustedHeader {
    name: HeaderName,
}

impl TrustedHeader {
    /// Reads the owner from header `name` (`X-Authenticated-User`, say).
    pub fn new(name: &str) -> Result<Self, http::header::InvalidHeaderName> {
        Ok(TrustedHeader {
            name: HeaderName::from_bytes(name.as_bytes())?,
        })
    }

    /// The owner id of an identity the proxy sent.
    pub fn owner_of(identity: &str) -> String {
        format!("proxy:{identity}")
    }

    fn identity<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, AuthError> {
        let refused = || AuthError::BadIdentityHeader(self.name.to_string());
        let mut values = headers.get_all(&self.name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(refused());
        };
        let identity = value.to_str().map_err(|_| refused())?.trim();
        if identity.is_empty() || identity.len() > MAX_IDENTITY_BYTES {
            return Err(refused());
        }
        Ok(identity)
    }
}

impl Authenticate for TrustedHeader {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        let principal = self
            .identity(headers)
            .map(|identity| Some(Principal::new(TrustedHeader::owner_of(identity))));
        Box::pin(std::future::ready(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_usable_value_is_an_owner_anything_else_is_refused() {
        let trusted = TrustedHeader::new("X-Authenticated-User").unwrap();
        let mut headers = HeaderMap::new();
        assert!(trusted.identity(&headers).is_err());
        headers.insert("x-authenticated-user", "alice@example.org".parse().unwrap());
        assert_eq!(trusted.identity(&headers).unwrap(), "alice@example.org");
        headers.append("x-authenticated-user", "mallory".parse().unwrap());
        assert!(trusted.identity(&headers).is_err());
        headers.insert("x-authenticated-user", " ".parse().unwrap());
        assert!(trusted.identity(&headers).is_err());
        headers.insert(
            "x-authenticated-user",
            "a".repeat(MAX_IDENTITY_BYTES + 1).parse().unwrap(),
        );
        assert!(trusted.identity(&headers).is_err());
    }
}
