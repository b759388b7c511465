//! Task ids, owner partitions and hex helpers.
//!
//! A task id is 14 hex digits of its creation time in microseconds followed
//! by 32 hex digits (128 bits) of randomness: unguessable, and ordered by
//! creation time, so a backend that orders items by id lists in creation
//! order (ties within one microsecond fall back to the random part: still a
//! stable order).
//! An owner's partition is the SHA-256 of the owner id, so every owner id,
//! however crafted, maps to a fixed-size token that cannot alias another.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Length of a task id in characters.
pub(crate) const TASK_ID_LEN: usize = 46;
const TIME_DIGITS: usize = 14;

/// Builds a task id from the creation time (µs) and 16 random bytes.
pub(crate) fn task_id(created_at_us: u64, random: [u8; 16]) -> String {
    // 14 hex digits of microseconds hold times up to the year 4253.
    let mut id = format!(
        "{:0width$x}",
        created_at_us & 0xff_ffff_ffff_ffff,
        width = TIME_DIGITS
    );
    id.push_str(&hex(&random));
    id
}

/// Whether `id` has the shape of a task id (no backend is asked otherwise).
pub(crate) fn is_task_id(id: &str) -> bool {
    id.len() == TASK_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The creation time (µs) encoded in a well-formed task id.
#[cfg(test)]
fn task_id_time(id: &str) -> Option<u64> {
    is_task_id(id)
        .then(|| u64::from_str_radix(&id[..TIME_DIGITS], 16).ok())
        .flatten()
}

/// The backend partition of an owner: lowercase hex SHA-256 of the owner id.
pub(crate) fn owner_partition(owner: &str) -> String {
    hex(&Sha256::digest(owner.as_bytes()))
}

/// Owners whose partitions one store keeps at hand.
const REMEMBERED_OWNERS: usize = 64;

/// The partitions of the owners a store served last, so a run of calls for
/// one owner hashes its id once (SHA-256 in wasm has no CPU extensions).
/// Bounded: when full it starts over.
#[derive(Debug, Default)]
pub(crate) struct PartitionMemo {
    recent: Mutex<BTreeMap<String, String>>,
}

impl PartitionMemo {
    /// [`owner_partition`] of `owner`, computed at most once while remembered.
    pub(crate) fn partition(&self, owner: &str) -> String {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(partition) = recent.get(owner) {
            return partition.clone();
        }
        let partition = owner_partition(owner);
        if recent.len() >= REMEMBERED_OWNERS {
            recent.clear();
        }
        recent.insert(owner.to_owned(), partition.clone());
        partition
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Decodes lowercase or uppercase hex; `None` when malformed.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_answers_what_the_hash_does_and_stays_bounded() {
        let memo = PartitionMemo::default();
        for round in 0..2 {
            for n in 0..(REMEMBERED_OWNERS + 5) {
                let owner = format!("owner-{n}");
                assert_eq!(
                    memo.partition(&owner),
                    owner_partition(&owner),
                    "round {round}"
                );
            }
        }
        let remembered = memo.recent.lock().map(|r| r.len()).unwrap_or_default();
        assert!(remembered <= REMEMBERED_OWNERS, "{remembered} owners kept");
    }

    #[test]
    fn ids_sort_by_creation_time_and_validate() {
        let early = task_id(1_000, [0xff; 16]);
        let late = task_id(1_001, [0; 16]);
        assert!(early < late);
        assert!(is_task_id(&early) && is_task_id(&late));
        assert_eq!(task_id_time(&late), Some(1_001));
        assert!(!is_task_id("../etc/passwd"));
        assert!(!is_task_id(&early.to_uppercase()));
        assert!(!is_task_id(&format!("{early}0")));
    }

    #[test]
    fn partitions_are_fixed_size_and_distinct_for_look_alike_owners() {
        let owners = ["a", "a:b", "a:", ":a", "{a}", "*", "", "ä"];
        let parts: std::collections::HashSet<String> =
            owners.iter().map(|o| owner_partition(o)).collect();
        assert_eq!(parts.len(), owners.len());
        assert!(parts
            .iter()
            .all(|p| p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é1"), None);
    }
}
