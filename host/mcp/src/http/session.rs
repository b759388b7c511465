//! MCP 2025-11-25 sessions that every replica can serve with no session
//! state anywhere: the `Mcp-Session-Id` is sealed. It is a random nonce
//! and an HMAC-SHA-256 (keyed by the deployment's secret) of the nonce
//! and the owner that opened the session, so
//!
//! - any replica with the same secret checks it, with no store read and
//!   nothing to replicate (a load balancer needs no affinity);
//! - a session is bound to its owner: the same id presented by another
//!   identity fails the check, exactly like an id never issued (404, as
//!   the transport says for an unknown session);
//! - the id carries no owner id, token or other secret.
//!
//! What a 2025 session negotiates needs no memory either: the task layer
//! keeps all task state in the shared store, and the one thing a client
//! declares at `initialize` that changes later answers (the tasks
//! extension, which rmcp's client declares) is sealed into the id with
//! the owner: a session of the extension has its own prefix, covered by
//! the HMAC, so it cannot be turned into the other kind.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::{labelled_mac, lower_hex, random_secret};

/// The prefix of sealed session ids (the format's version).
const PREFIX: &str = "s1-";

/// The prefix of the sealed ids of sessions whose client declared the
/// tasks extension at `initialize`.
const EXTENSION_PREFIX: &str = "s1x-";

/// Seals and checks session ids; every replica of a deployment needs the
/// same secret.
#[derive(Clone)]
pub struct SessionSeal {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSeal { .. }")
    }
}

impl SessionSeal {
    /// Seals keyed by `secret` (the deployment's secret).
    pub fn new(secret: &[u8]) -> Self {
        SessionSeal {
            key: labelled_mac(secret, b"pmcp-tasks session v1"),
        }
    }

    /// Seals keyed by a random secret of this process: its sessions are
    /// served by this replica only.
    pub fn random() -> Self {
        SessionSeal::new(&random_secret())
    }

    fn mac(&self, nonce: &str, owner: &str, extension: bool) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(owner.as_bytes());
        if extension {
            mac.update(b"\0tasks-extension");
        }
        mac
    }

    /// A new session id for `owner`.
    pub fn open(&self, owner: &str) -> String {
        self.open_session(owner, false)
    }

    /// A new session id for `owner`, whose client declared the tasks
    /// extension when `extension`.
    pub(crate) fn open_session(&self, owner: &str, extension: bool) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("no randomness for a nonce: {e}"));
        let nonce = lower_hex(&nonce);
        let tag = lower_hex(&self.mac(&nonce, owner, extension).finalize().into_bytes());
        let prefix = if extension { EXTENSION_PREFIX } else { PREFIX };
        format!("{prefix}{nonce}-{tag}")
    }

    /// Whether `id` is a session this deployment opened for `owner`
    /// (compared in constant time).
    pub fn admits(&self, id: &str, owner: &str) -> bool {
        self.session_of(id, owner).is_some()
    }

    /// The session `id` is, when this deployment opened it for `owner`:
    /// `Some(true)` for one whose client declared the tasks extension.
    pub(crate) fn session_of(&self, id: &str, owner: &str) -> Option<bool> {
        let (extension, rest) = match id.strip_prefix(EXTENSION_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, id.strip_prefix(PREFIX)?),
        };
        let (nonce, tag) = rest.split_once('-')?;
        let tag = unhex(tag)?;
        let sealed =
            nonce.len() == 32 && self.mac(nonce, owner, extension).verify_slice(&tag).is_ok();
        sealed.then_some(extension)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_admitted_for_its_owner_on_every_replica_and_no_one_else() {
        let a = SessionSeal::new(b"deployment secret");
        let b = SessionSeal::new(b"deployment secret");
        let id = a.open("alice");
        assert!(id.starts_with(PREFIX) && id.is_ascii());
        assert!(!id.contains("alice"));
        assert!(b.admits(&id, "alice"), "another replica");
        assert!(!b.admits(&id, "bob"), "another owner");
        assert!(
            !SessionSeal::new(b"other").admits(&id, "alice"),
            "another deployment"
        );
        assert_ne!(a.open("alice"), id, "each session its own");
        let mut forged = id.clone();
        forged.pop();
        forged.push(if id.ends_with('0') { '1' } else { '0' });
        assert!(!a.admits(&forged, "alice"));
        for junk in ["", "s1-", "s1-zz-zz", "mcp-session-1", &id[..id.len() - 1]] {
            assert!(!a.admits(junk, "alice"), "{junk}");
        }
    }

    #[test]
    fn the_extension_is_sealed_into_the_id_and_cannot_be_added_or_removed() {
        let seal = SessionSeal::new(b"deployment secret");
        let plain = seal.open("alice");
        let extension = seal.open_session("alice", true);
        assert_eq!(seal.session_of(&plain, "alice"), Some(false));
        assert_eq!(seal.session_of(&extension, "alice"), Some(true));
        assert_eq!(seal.session_of(&extension, "bob"), None);
        let promoted = plain.replacen(PREFIX, EXTENSION_PREFIX, 1);
        let demoted = extension.replacen(EXTENSION_PREFIX, PREFIX, 1);
        assert_eq!(seal.session_of(&promoted, "alice"), None);
        assert_eq!(seal.session_of(&demoted, "alice"), None);
    }
}
