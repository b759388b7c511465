//! The lease index: where a reaper on any replica finds tasks whose worker
//! stopped renewing.
//!
//! Each lease has an index item in one of [`SHARDS`] partitions of its own
//! (never an owner's: those are 64 hex digits), named by its deadline
//! (16 hex digits, so the backend's id order is deadline order) and the
//! task id. The item is written before the task's lease is, and removed
//! after the lease moves on or ends, so every live lease has an index item
//! at its deadline; a stale item (for a lease since renewed, a finished or
//! a deleted task) is dropped by the reaper that finds it.

use serde::{Deserialize, Serialize};

/// Index partitions, so renewals from many workers do not all write one.
pub(crate) const SHARDS: u8 = 8;

/// What an index item holds: enough to load the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexEntry {
    /// The task's owner.
    pub owner_id: String,
    /// The task.
    pub task_id: String,
}

/// The index partition of `shard`.
pub(crate) fn shard_partition(shard: u8) -> String {
    format!("lease-index.{shard}")
}

/// The index partition of a task (by the last digit of its random part).
pub(crate) fn partition_of(task_id: &str) -> String {
    let digit = task_id
        .bytes()
        .last()
        .and_then(|b| char::from(b).to_digit(16))
        .unwrap_or(0);
    shard_partition(u8::try_from(digit).unwrap_or(0) % SHARDS)
}

/// The index item of a lease lapsing at `deadline` on `task_id`.
pub(crate) fn item(deadline: u64, task_id: &str) -> String {
    format!("{deadline:016x}.{task_id}")
}

/// The deadline an index item names; `None` if it is not one of ours.
pub(crate) fn deadline_of(item: &str) -> Option<u64> {
    let (deadline, _) = item.split_once('.')?;
    (deadline.len() == 16)
        .then(|| u64::from_str_radix(deadline, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_order_is_deadline_order() {
        let id = "0".repeat(46);
        let mut items = [item(1 << 40, &id), item(9, &id), item(300, &id)];
        items.sort();
        let deadlines: Vec<u64> = items.iter().filter_map(|i| deadline_of(i)).collect();
        assert_eq!(deadlines, [9, 300, 1 << 40]);
    }

    #[test]
    fn foreign_items_have_no_deadline() {
        assert_eq!(deadline_of("nodot"), None);
        assert_eq!(deadline_of("12.x"), None);
        assert_eq!(deadline_of("zzzzzzzzzzzzzzzz.x"), None);
    }

    #[test]
    fn tasks_spread_over_every_shard() {
        let shards: std::collections::BTreeSet<String> = "0123456789abcdef"
            .chars()
            .map(|c| partition_of(&format!("{}{c}", "0".repeat(45))))
            .collect();
        assert_eq!(shards.len(), usize::from(SHARDS));
        assert!(shards
            .iter()
            .all(|p| !p.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
