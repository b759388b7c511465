//! Opaque, owner-bound list cursors.
//!
//! A cursor is the hex of `[version, task id bytes.., tag(16)]` where the tag
//! is a truncated SHA-256 over the configured secret, the owner id and the
//! position. A cursor made for one owner, or altered in any way, is refused.

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::ids::{hex, is_task_id, unhex, TASK_ID_LEN};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = 1 + TASK_ID_LEN + TAG_LEN;

/// Encodes the position after `last_task_id` in `owner`'s listing.
pub(crate) fn encode(secret: &[u8], owner: &str, last_task_id: &str) -> String {
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.push(VERSION);
    raw.extend_from_slice(last_task_id.as_bytes());
    raw.extend_from_slice(&tag(secret, owner, last_task_id));
    hex(&raw)
}

/// Decodes a cursor for `owner`, returning the task id to continue after.
pub(crate) fn decode(secret: &[u8], owner: &str, cursor: &str) -> Result<String, StoreError> {
    let invalid = || {
        StoreError::InvalidParams(
            "invalid cursor: it is malformed, altered, or was not issued for this owner".into(),
        )
    };
    let raw = unhex(cursor)
        .filter(|raw| raw.len() == RAW_LEN && raw[0] == VERSION)
        .ok_or_else(invalid)?;
    let (position, given_tag) = raw[1..].split_at(TASK_ID_LEN);
    let position = std::str::from_utf8(position)
        .ok()
        .filter(|id| is_task_id(id))
        .ok_or_else(invalid)?;
    let expected = tag(secret, owner, position);
    // Compare without an early exit so timing does not reveal the tag.
    let diff = expected
        .iter()
        .zip(given_tag)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(invalid());
    }
    Ok(position.to_owned())
}

fn tag(secret: &[u8], owner: &str, position: &str) -> [u8; TAG_LEN] {
    let mut hasher = Sha256::new();
    for part in [secret, owner.as_bytes(), position.as_bytes()] {
        // Length-prefix each part so no two (secret, owner) splits collide.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&digest[..TAG_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::task_id;

    #[test]
    fn round_trips_for_the_same_owner_only() {
        let id = task_id(42, [7; 16]);
        let c = encode(b"", "alice", &id);
        assert_eq!(decode(b"", "alice", &c), Ok(id.clone()));
        assert!(decode(b"", "bob", &c).is_err());
        assert!(decode(b"other secret", "alice", &c).is_err());
    }

    #[test]
    fn refuses_malformed_and_tampered_cursors() {
        let c = encode(b"k", "alice", &task_id(42, [7; 16]));
        for bad in ["", "zz", "00", &c[..c.len() - 2], &format!("{c}00")] {
            assert!(decode(b"k", "alice", bad).is_err(), "{bad}");
        }
        let mut tampered = c.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert!(decode(b"k", "alice", std::str::from_utf8(&tampered).unwrap()).is_err());
    }

    #[test]
    fn only_the_canonical_spelling_decodes() {
        let c = encode(b"k", "alice", &task_id(42, [0xab; 16]));
        assert!(c.starts_with("01"), "{c}");
        let plus = format!("+1{}", &c[2..]);
        let upper = c.to_uppercase();
        for variant in [plus, upper] {
            assert_ne!(variant, c);
            assert!(decode(b"k", "alice", &variant).is_err(), "{variant}");
        }
    }
}
