//! The development mode: every bearer token is an owner of its own,
//! verified by nobody.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use super::credentials::{bearer_token, AuthFuture, Authenticate};
use crate::http::keys::{labelled_mac, lower_hex, random_secret};
use crate::identity::Principal;

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
        TokenDigest {
            key: labelled_mac(secret, b"pmcp-tasks bearer owner v1"),
        }
    }

    /// Digests keyed by a random secret of this process: owners hold only
    /// until it exits, and only on this replica.
    pub fn random() -> Self {
        TokenDigest::new(&random_secret())
    }

    /// The owner id of `token`: `token-sha256:` and 64 hex digits.
    pub fn owner_of(&self, token: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(token.as_bytes());
        format!("token-sha256:{}", lower_hex(&mac.finalize().into_bytes()))
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
