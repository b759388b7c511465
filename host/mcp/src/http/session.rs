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

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::auth::WallClock;
use super::keys::{labelled_mac, lower_hex, random_secret};

/// The prefix of sealed session ids (the format's version: v2 seals the
/// time the session was opened).
const PREFIX: &str = "s2-";

/// The prefix of the sealed ids of extension sessions (whose client
/// declared the tasks extension and asked for a revision that has it).
const EXTENSION_PREFIX: &str = "s2x-";

/// How long a session lives by default.
const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Seals and checks session ids; every replica of a deployment needs the
/// same secret.
///
/// A session lives at most its maximum age from its `initialize`
/// ([`SessionSeal::with_max_age`], a day by default): the time is sealed
/// into the id, so every replica ends it at the same moment with nothing
/// stored, and the client is answered 404 and opens a new one, as the
/// transport has it. Use does not renew it: the id a client holds cannot
/// change, and renewal would need per-session state in the store.
#[derive(Clone)]
pub struct SessionSeal {
    key: Hmac<Sha256>,
    max_age: Duration,
    clock: WallClock,
}

impl std::fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSeal")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// What a sealed id says.
struct Sealed<'a> {
    extension: bool,
    nonce: &'a str,
    opened: &'a str,
    tag: Vec<u8>,
}

impl<'a> Sealed<'a> {
    fn parse(id: &'a str) -> Option<Sealed<'a>> {
        let (extension, rest) = match id.strip_prefix(EXTENSION_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, id.strip_prefix(PREFIX)?),
        };
        let mut parts = rest.splitn(3, '-');
        let (nonce, opened, tag) = (parts.next()?, parts.next()?, unhex(parts.next()?)?);
        let well_formed = nonce.len() == 32
            && !opened.is_empty()
            && opened.len() <= 16
            && opened.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(Sealed {
            extension,
            nonce,
            opened,
            tag,
        })
    }
}

impl SessionSeal {
    /// Seals keyed by `secret` (the deployment's secret).
    pub fn new(secret: &[u8]) -> Self {
        SessionSeal {
            key: labelled_mac(secret, b"pmcp-tasks session v2"),
            max_age: DEFAULT_SESSION_MAX_AGE,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Seals keyed by a random secret of this process: its sessions are
    /// served by this replica only.
    pub fn random() -> Self {
        SessionSeal::new(&random_secret())
    }

    /// Sessions living `max_age` from their `initialize` (every replica of
    /// a deployment should say the same).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Ageing sessions by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    fn now_s(&self) -> u64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn mac(&self, nonce: &str, opened: &str, owner: &str, extension: bool) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(opened.as_bytes());
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

    /// A new session id for `owner`, an extension session when
    /// `extension`.
    pub(crate) fn open_session(&self, owner: &str, extension: bool) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("no randomness for a nonce: {e}"));
        let nonce = lower_hex(&nonce);
        let opened = format!("{:x}", self.now_s());
        let tag = self.mac(&nonce, &opened, owner, extension).finalize();
        let tag = lower_hex(&tag.into_bytes());
        let prefix = if extension { EXTENSION_PREFIX } else { PREFIX };
        format!("{prefix}{nonce}-{opened}-{tag}")
    }

    /// Whether `id` is a live session this deployment opened for `owner`
    /// (compared in constant time).
    pub fn admits(&self, id: &str, owner: &str) -> bool {
        self.session_of(id, owner).is_some()
    }

    /// The session `id` is, when this deployment opened it for `owner`
    /// and it has not outlived its maximum age: `Some(true)` for an
    /// extension session.
    pub(crate) fn session_of(&self, id: &str, owner: &str) -> Option<bool> {
        let sealed = Sealed::parse(id)?;
        self.mac(sealed.nonce, sealed.opened, owner, sealed.extension)
            .verify_slice(&sealed.tag)
            .ok()?;
        // A replica whose clock is behind the opener's sees an age of 0.
        let opened = u64::from_str_radix(sealed.opened, 16).ok()?;
        let age = Duration::from_secs(self.now_s().saturating_sub(opened));
        (age < self.max_age).then_some(sealed.extension)
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
        for junk in [
            "",
            "s2-",
            "s2-zz-zz",
            "s2-zz-zz-zz",
            "mcp-session-1",
            &id[..id.len() - 1],
        ] {
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

    #[test]
    fn a_session_ends_at_its_maximum_age_on_every_replica() {
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_800_000_000));
        let seal = |now: &Arc<std::sync::atomic::AtomicU64>| {
            let now = now.clone();
            SessionSeal::new(b"deployment secret")
                .with_max_age(Duration::from_secs(3600))
                .with_clock(Arc::new(move || {
                    UNIX_EPOCH + Duration::from_secs(now.load(std::sync::atomic::Ordering::SeqCst))
                }))
        };
        let (a, b) = (seal(&now), seal(&now));
        let id = a.open_session("alice", true);
        let at = |s: u64| now.store(1_800_000_000 + s, std::sync::atomic::Ordering::SeqCst);
        at(3599);
        assert_eq!(
            b.session_of(&id, "alice"),
            Some(true),
            "an hour less a second"
        );
        at(3600);
        assert_eq!(a.session_of(&id, "alice"), None, "an hour old: ended");
        assert_eq!(b.session_of(&id, "alice"), None, "on every replica");
        // The opening time is sealed: a later one written in is a forgery.
        let (head, tag) = id.rsplit_once('-').unwrap();
        let (nonce, _) = head.rsplit_once('-').unwrap();
        let younger = format!("{nonce}-{:x}-{tag}", 1_800_000_000u64 + 3000);
        assert_eq!(a.session_of(&younger, "alice"), None);
        // A replica whose clock is behind the opener's admits it.
        at(0);
        let ahead = a.open_session("alice", false);
        now.store(1_800_000_000 - 60, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(b.session_of(&ahead, "alice"), Some(false));
    }
}
