//! The queue of tasks created while their replica had no room to run
//! them: any replica with room claims them, owner after owner.
//!
//! One partition of its own holds an item per waiting task, named by the
//! owner's partition (64 hex digits, never the owner id) and the task id,
//! so the backend's id order groups each owner's tasks in creation order
//! (task ids begin with their creation time). A claim takes the first task
//! of the owner after the one served last, then of the next owner, and so
//! on (round robin over owners), so one owner's thousand waiting calls
//! hold another owner's one call behind at most one of theirs. Where the
//! last claim stopped is one more item, in a partition of its own.
//!
//! The item is written before its task and removed after the task leaves
//! the queue (claimed, cancelled, expired); a stale one is dropped by the
//! claimer that meets it.

/// The partition of the waiting tasks' items.
pub(crate) const PARTITION: &str = "task-queue";

/// The partition of the round robin's position, and its one item.
pub(crate) const CURSOR_PARTITION: &str = "task-queue-cursor";
/// The round robin's position: its head is the owner partition served last.
pub(crate) const CURSOR_ITEM: &str = "served";

/// The status message of a task waiting in the queue.
pub(crate) const WAITING: &str = "queued: waiting for a replica with room to run it";

/// The item of `task_id`, a task of the owner whose partition is
/// `owner_partition`.
pub(crate) fn item(owner_partition: &str, task_id: &str) -> String {
    format!("{owner_partition}.{task_id}")
}

/// The owner partition an item belongs to; `None` if it is not one of ours.
pub(crate) fn owner_of(item: &str) -> Option<&str> {
    let (owner, task) = item.split_once('.')?;
    (is_owner_partition(owner) && !task.is_empty()).then_some(owner)
}

/// Whether `text` has the shape of an owner partition (64 hex digits).
pub(crate) fn is_owner_partition(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A listing position after every item of `owner_partition` (`~` sorts
/// after every character of a task id).
pub(crate) fn past_owner(owner_partition: &str) -> String {
    format!("{owner_partition}.~")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    const B: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn an_owner_s_items_sort_together_and_past_owner_skips_them_all() {
        let mut items = [item(B, "1"), item(A, "2"), item(A, "1zz"), past_owner(A)];
        items.sort();
        assert_eq!(
            items,
            [item(A, "1zz"), item(A, "2"), past_owner(A), item(B, "1")]
        );
    }

    #[test]
    fn items_name_their_owner_partition_and_nothing_else_does() {
        assert_eq!(owner_of(&item(A, "t")), Some(A));
        assert_eq!(owner_of("served"), None);
        assert_eq!(owner_of(&format!("{A}.")), None);
        assert_eq!(owner_of("abc.t"), None);
        assert_eq!(owner_of(&item(&"g".repeat(64), "t")), None);
    }
}
