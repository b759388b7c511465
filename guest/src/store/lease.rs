//! Workers' leases: renewal, the index of their deadlines, and the
//! reaper that fails the tasks of lost workers.

use crate::env::Environment;
use crate::error::StoreError;
use crate::kv::{Kv, KvError};
use crate::leases;
use crate::outcome::worker_lost;
use crate::record::{Lease, LeaseGrant, OutcomeKind, StoredHead, TaskRecord};
use crate::status::TaskStatus;
use crate::time::iso8601_utc;

use super::{end_work, raw_json, Change, TaskStore};

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Takes or renews `grant.holder`'s lease on a non-terminal task;
    /// refused while another holder's lease is live. A terminal task comes
    /// back unchanged: the worker's signal to stop.
    pub fn renew_lease(
        &self,
        owner: &str,
        task_id: &str,
        grant: &LeaseGrant,
    ) -> Result<TaskRecord, StoreError> {
        self.check_grant(grant)?;
        self.mutate(owner, task_id, None, |task, moved| {
            let now = self.env.now_ms();
            let head = &mut task.head;
            if head.status.is_terminal() {
                return Ok(Change::None);
            }
            if let Some(lease) = &head.lease {
                if lease.holder != grant.holder && now < lease.expires_at {
                    return Err(StoreError::InvalidTransition(format!(
                        "task {task_id} is leased to another worker until {}",
                        iso8601_utc(lease.expires_at)
                    )));
                }
                moved.old = Some(lease.expires_at);
            }
            let expires_at = now.saturating_add(grant.duration);
            self.index_lease(head, expires_at)?;
            head.lease = Some(Lease {
                holder: grant.holder.clone(),
                expires_at,
            });
            Ok(Change::Made)
        })
    }

    /// Fails up to `limit` non-terminal tasks whose lease lapsed; returns
    /// how many it failed. Any replica may run it; a renewal racing it
    /// either lands first (the task is not failed) or finds the task failed.
    pub fn reap_lost_workers(&self, limit: u32) -> Result<u64, StoreError> {
        let now = self.env.now_ms();
        let mut budget = limit;
        let mut reaped = 0;
        for shard in 0..leases::SHARDS {
            if budget == 0 {
                break;
            }
            let partition = leases::shard_partition(shard);
            for listed in self.kv.list(&partition, None, budget, now)?.iter() {
                let Some(deadline) = leases::deadline_of(listed.item).filter(|d| *d <= now) else {
                    break; // Items are in deadline order: the rest are later.
                };
                budget -= 1;
                let index = serde_json::from_slice::<leases::IndexEntry>(listed.head);
                if let Ok(index) = index {
                    if self.reap_one(&index, deadline)? {
                        // The write that failed the task dropped the item
                        // (best effort: a stale one is dropped below, later).
                        reaped += 1;
                        continue;
                    }
                }
                // A stale or unreadable item: done with it.
                match self.kv.remove(&partition, listed.item, listed.version) {
                    Ok(()) | Err(KvError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(reaped)
    }

    /// Fails the task of one due index item if its lease is still the one
    /// lapsed at `deadline`; `false` when it moved on or the task is gone.
    pub(super) fn reap_one(
        &self,
        index: &leases::IndexEntry,
        deadline: u64,
    ) -> Result<bool, StoreError> {
        let failed_it = std::cell::Cell::new(false);
        let lost = self.mutate(&index.owner_id, &index.task_id, None, |task, moved| {
            failed_it.set(false);
            let lapsed_holder = match &task.head.lease {
                Some(lease) if lease.expires_at == deadline => lease.holder.clone(),
                _ => return Ok(Change::None),
            };
            if task.head.status.is_terminal() {
                return Ok(Change::None);
            }
            let error = worker_lost(&lapsed_holder, &iso8601_utc(deadline));
            task.head.status = TaskStatus::Failed;
            task.head.outcome = Some(OutcomeKind::RpcError);
            task.body.result = Some(raw_json(error)?);
            end_work(task, moved);
            failed_it.set(true);
            Ok(Change::Made)
        });
        match lost {
            Ok(_) => Ok(failed_it.get()),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes the index item of a lease on `head`'s task lapsing at `deadline`.
    pub(super) fn index_lease(&self, head: &StoredHead, deadline: u64) -> Result<(), StoreError> {
        let entry = leases::IndexEntry {
            owner_id: head.owner_id.clone(),
            task_id: head.task_id.clone(),
        };
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| StoreError::Internal(format!("cannot serialize a lease: {e}")))?;
        let item = leases::item(deadline, &head.task_id);
        let partition = leases::partition_of(&head.task_id);
        let now = self.env.now_ms();
        match self.kv.create(
            &partition,
            &item,
            bytes,
            Vec::new(),
            head.expires_at(),
            None,
            now,
        ) {
            // Renewed twice in one millisecond: the item is already there.
            Ok(_) | Err(KvError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops the index item of a lease that moved on or ended. Best effort:
    /// an item left behind is stale, and the reaper drops stale items.
    pub(super) fn unindex_lease(&self, task_id: &str, deadline: u64) {
        let partition = leases::partition_of(task_id);
        let _ = self
            .kv
            .remove(&partition, &leases::item(deadline, task_id), 1);
    }
}
