//! Task bodies larger than one backend item, kept in parts.
//!
//! A task is one backend item while its head and body fit
//! `max-record-bytes` (350 KiB by default, under DynamoDB's 400 KB item
//! cap). A larger body (a result of megabytes, large arguments or
//! answers) is written as **parts**: items of at most that size in a
//! partition of their own beside the owner's (so listings and the quota
//! never see them), named by the task, a nonce drawn for this version of
//! the body, and their index. The task's item then holds a **manifest**
//! (the nonce, the count and the total size) instead of the body.
//!
//! What that guarantees, on every backend, with no more than the
//! `kv-backend` calls every backend has:
//!
//! - **No reader sees a partial or mixed body.** Parts never change once
//!   written (a new version of the body gets a new nonce), and they are
//!   all written before the task's item is switched to them by its usual
//!   compare-and-swap. A reader that finds one of its version's parts gone
//!   (a newer version was written and the old parts removed) reads the
//!   task again.
//! - **Listings read heads only**, as before: the parts are elsewhere.
//! - **Nothing is left behind for long.** A writer that loses its
//!   compare-and-swap removes the parts it wrote; the winner removes the
//!   parts the task pointed to before; deleting a task removes its parts.
//!   Parts expire with their task (the same absolute expiry), so those of
//!   a writer killed between its writes go at the sweep that removes the
//!   task itself.
//! - A write that leaves the body as it was (a status change, a lease
//!   renewal) writes no parts: the manifest is kept.

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::error::StoreError;
use crate::ids::hex;
use crate::kv::Kv;

use super::{Target, TaskStore};

/// Where a body's parts are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The nonce of this version of the body (32 hex digits).
    id: String,
    /// How many parts.
    count: u32,
    /// Their total size, in bytes.
    bytes: u64,
}

/// A manifest as the task's item holds it in place of its body.
#[derive(Serialize, Deserialize)]
struct ManifestBody {
    parts: Manifest,
}

/// How a manifest body begins; a stored body (an object whose first field
/// is `variables`) never does.
const MANIFEST_PREFIX: &[u8] = br#"{"parts":"#;

/// The partition of the parts of `partition`'s tasks (an owner partition
/// is 64 hex digits, so no owner's partition is another's parts').
fn parts_partition(partition: &str) -> String {
    format!("{partition}/parts")
}

fn part_item(task_id: &str, nonce: &str, index: u32) -> String {
    format!("{task_id}/{nonce}/{index}")
}

/// The manifest a stored body is, or `None` for a body kept whole.
fn manifest_of(body: &[u8]) -> Result<Option<Manifest>, StoreError> {
    if !body.starts_with(MANIFEST_PREFIX) {
        return Ok(None);
    }
    let parsed: ManifestBody = crate::record::parse_stored("body manifest", body)?;
    Ok(Some(parsed.parts))
}

/// A task's body as read: its bytes, and the manifest of its parts when
/// it was kept in parts.
pub(super) struct ReadBody {
    pub(super) bytes: Vec<u8>,
    pub(super) manifest: Option<Manifest>,
}

/// What the task's item holds for a body that is being written.
pub(super) struct PlacedBody {
    /// The item's body: the body itself, or its manifest.
    pub(super) item: Vec<u8>,
    /// The parts written for it (to remove if the write loses).
    pub(super) written: Option<Manifest>,
}

/// The item body that points to `manifest`'s parts.
pub(super) fn manifest_body(manifest: &Manifest) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&ManifestBody {
        parts: manifest.clone(),
    })
    .map_err(|e| StoreError::Internal(format!("cannot serialize a body manifest: {e}")))
}

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// The body stored as `item_body` in `target`'s item: itself, or its
    /// parts put together; `None` when a part is gone (a newer version
    /// replaced them: the caller reads the task again).
    pub(super) fn read_body(
        &self,
        target: &Target<'_>,
        item_body: Vec<u8>,
        now: u64,
    ) -> Result<Option<ReadBody>, StoreError> {
        let Some(manifest) = manifest_of(&item_body)? else {
            return Ok(Some(ReadBody {
                bytes: item_body,
                manifest: None,
            }));
        };
        let partition = parts_partition(&target.partition);
        let mut bytes = Vec::with_capacity(usize::try_from(manifest.bytes).unwrap_or(0));
        for index in 0..manifest.count {
            let item = part_item(target.task_id, &manifest.id, index);
            match self.kv.get(&partition, &item)? {
                Some(part) if part.is_live(now) => bytes.extend_from_slice(&part.body),
                _ => return Ok(None),
            }
        }
        if bytes.len() as u64 != manifest.bytes {
            return Err(StoreError::Internal(format!(
                "the parts of task {} add up to {} bytes, not the {} its manifest says",
                target.task_id,
                bytes.len(),
                manifest.bytes
            )));
        }
        Ok(Some(ReadBody {
            bytes,
            manifest: Some(manifest),
        }))
    }

    /// Places `body` for `target`'s item beside a head of `head_len`
    /// bytes: in the item when both fit one, else in parts written now
    /// (each expiring at `expires_at`), the item holding their manifest.
    pub(super) fn place_body(
        &self,
        target: &Target<'_>,
        head_len: usize,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<PlacedBody, StoreError> {
        let item_cap = self.config.max_record_bytes as usize;
        if head_len + body.len() <= item_cap {
            return Ok(PlacedBody {
                item: body,
                written: None,
            });
        }
        let mut nonce = [0u8; 16];
        self.env.fill_random(&mut nonce)?;
        let chunks = body.chunks(item_cap);
        let manifest = Manifest {
            id: hex(&nonce),
            count: u32::try_from(chunks.len()).map_err(|_| {
                StoreError::InvalidParams(format!(
                    "a body of {} bytes has too many parts",
                    body.len()
                ))
            })?,
            bytes: body.len() as u64,
        };
        let partition = parts_partition(&target.partition);
        for (index, chunk) in (0..).zip(chunks) {
            let item = part_item(target.task_id, &manifest.id, index);
            let created = self.kv.create(
                &partition,
                &item,
                Vec::new(),
                chunk.to_vec(),
                expires_at,
                None,
                now,
            );
            if let Err(e) = created {
                self.remove_parts(target, &manifest, index);
                return Err(e.into());
            }
        }
        Ok(PlacedBody {
            item: manifest_body(&manifest)?,
            written: Some(manifest),
        })
    }

    /// Removes every part of `manifest` (best effort: a part left behind
    /// expires with its task).
    pub(super) fn discard_parts(&self, target: &Target<'_>, manifest: &Manifest) {
        self.remove_parts(target, manifest, manifest.count);
    }

    /// Removes the first `count` parts of `manifest`.
    fn remove_parts(&self, target: &Target<'_>, manifest: &Manifest, count: u32) {
        let partition = parts_partition(&target.partition);
        for index in 0..count {
            let item = part_item(target.task_id, &manifest.id, index);
            // A part is written once: its version is the first.
            let _ = self.kv.remove(&partition, &item, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_told_from_a_stored_body() {
        let manifest = Manifest {
            id: "ab".repeat(16),
            count: 3,
            bytes: 1_000_000,
        };
        let stored = manifest_body(&manifest).unwrap();
        assert_eq!(manifest_of(&stored).unwrap(), Some(manifest));
        assert_eq!(manifest_of(br#"{"variables":{}}"#).unwrap(), None);
        assert!(manifest_of(br#"{"parts":1}"#).is_err(), "corrupt");
    }

    #[test]
    fn parts_live_beside_the_owner_s_partition_never_in_it() {
        let owner = "a".repeat(64);
        assert_ne!(parts_partition(&owner), owner);
        assert_eq!(part_item("t", "n", 7), "t/n/7");
    }
}
