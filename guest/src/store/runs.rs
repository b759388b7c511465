//! A task's runs: claiming one that waits for a worker, handing one off,
//! the checkpoint a run leaves for the next, and the fence that keeps a
//! run whose lease passed on from writing.
//!
//! A task waits for a worker (is *queued*) with no lease and a
//! `ready_at` time, which has an item in the lease index like a lease's
//! deadline; once it is due, any replica's [`TaskStore::claim`] takes it
//! with a compare-and-swap, so exactly one worker runs each attempt.

use crate::env::Environment;
use crate::error::StoreError;
use crate::kv::Kv;
use crate::leases;
use crate::record::{
    ClaimedTask, Lease, LeaseGrant, StatusView, StoredHead, StoredTask, TaskDetail, TaskRecord,
};
use crate::retry::HANDED_OFF;
use crate::status::TaskStatus;

use super::lease::Due;
use super::{end_work, Change, LeaseMove, TaskStore};

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Claims up to `limit` tasks waiting for a worker, leased to
    /// `grant.holder`: first those whose time to run again came (oldest
    /// first within each index shard, shards from a random one), then
    /// those created while their replica had no room, owner after owner.
    /// Each comes back with its arguments, its attempt and its checkpoint,
    /// for the claimer to run. A task whose cancellation was asked for
    /// meanwhile ends `cancelled` instead.
    pub fn claim(&self, grant: &LeaseGrant, limit: u32) -> Result<Vec<ClaimedTask>, StoreError> {
        self.check_grant(grant)?;
        let mut claimed = Vec::new();
        if limit == 0 {
            return Ok(claimed);
        }
        let mut first = [0u8; 1];
        self.env.fill_random(&mut first)?;
        // Due items that are lapsed leases are the reaper's: the budget
        // covers them too, so a pass looks a little further than `limit`.
        let budget = limit.saturating_mul(4).max(16);
        self.for_due_items(budget, first[0] % leases::SHARDS, |index, ready_at| {
            if claimed.len() >= limit as usize {
                return Ok(Due::Left);
            }
            match self.claim_one(&index.owner_id, &index.task_id, ready_at, grant) {
                Ok(Some(detail)) => {
                    claimed.push(ClaimedTask {
                        owner: index.owner_id.clone(),
                        detail,
                        waited_ms: self.env.now_ms().saturating_sub(ready_at),
                    });
                    Ok(Due::Handled)
                }
                Ok(None) => Ok(Due::Handled),
                Err(StoreError::NotFound(_)) => Ok(Due::Stale),
                Err(StoreError::InvalidTransition(_)) => Ok(Due::Left),
                Err(e) => Err(e),
            }
        })?;
        let room = (limit as usize).saturating_sub(claimed.len());
        claimed.extend(self.claim_waiting(grant, room)?);
        Ok(claimed)
    }

    /// Claims one task queued at `ready_at`: `Some` with what to run,
    /// `None` when it ended instead (cancelled); refused
    /// (`InvalidTransition`) when it is not queued there: a lapsed
    /// lease's item, left for the reaper, or a stale one.
    fn claim_one(
        &self,
        owner: &str,
        task_id: &str,
        ready_at: u64,
        grant: &LeaseGrant,
    ) -> Result<Option<TaskDetail>, StoreError> {
        self.claim_with(owner, task_id, grant, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() || head.runs.ready_at != Some(ready_at) {
                // The item is a lease's deadline: the reaper's to handle.
                if head
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.expires_at == ready_at)
                {
                    return Err(StoreError::InvalidTransition(format!(
                        "task {task_id} is not queued"
                    )));
                }
                return Err(StoreError::NotFound(task_id.to_owned()));
            }
            // The queue's item goes with the claim, as a lease's does.
            moved.old = Some(ready_at);
            head.runs.ready_at = None;
            Ok(())
        })
    }

    /// Claims one waiting task for `grant.holder`: `take` checks that it
    /// still waits where the claimer found it and takes it out of there
    /// (its error refuses the claim); then the task ends `cancelled` if
    /// its cancellation was asked for, or is leased for its next run.
    /// `Some` with what to run, `None` when it ended instead.
    pub(super) fn claim_with(
        &self,
        owner: &str,
        task_id: &str,
        grant: &LeaseGrant,
        take: impl Fn(&mut StoredTask, &mut LeaseMove) -> Result<(), StoreError>,
    ) -> Result<Option<TaskDetail>, StoreError> {
        let cancelled = std::cell::Cell::new(false);
        self.mutate(owner, task_id, None, |task, moved| {
            cancelled.set(false);
            take(task, moved)?;
            if task.head.cancel_requested {
                task.head.status = TaskStatus::Cancelled;
                end_work(task, moved);
                cancelled.set(true);
            } else {
                self.start_run(&mut task.head, grant)?;
            }
            Ok(Change::Made)
        })?;
        if cancelled.get() {
            return Ok(None);
        }
        self.inspect(owner, task_id, StatusView::Extension)
            .map(Some)
    }

    /// Leases a claimed task to `grant.holder` for its next run.
    pub(super) fn start_run(
        &self,
        head: &mut StoredHead,
        grant: &LeaseGrant,
    ) -> Result<(), StoreError> {
        let expires_at = self.env.now_ms().saturating_add(grant.duration);
        self.index_lease(head, expires_at)?;
        head.lease = Some(Lease {
            holder: grant.holder.clone(),
            expires_at,
        });
        head.runs.attempt = head.runs.attempt.saturating_add(1);
        Ok(())
    }

    /// Hands a retryable task off: `holder` gives its lease up, and the
    /// task waits for another worker from now on (a hand-off is not a
    /// loss: no attempt is used). Refused when `holder` does not hold it
    /// or it is not retryable (it runs at most once); a terminal task comes
    /// back unchanged.
    pub fn hand_off(
        &self,
        owner: &str,
        task_id: &str,
        holder: &str,
    ) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() {
                return Ok(Change::None);
            }
            check_fence(head, Some(holder))?;
            if head.runs.retry.is_none() {
                return Err(StoreError::InvalidTransition(format!(
                    "task {task_id} has no retry policy: it runs at most once, where it started"
                )));
            }
            let now = self.env.now_ms();
            if let Some(lease) = head.lease.take() {
                moved.old = Some(lease.expires_at);
            }
            head.runs.ready_at = Some(now);
            head.status_message = Some(HANDED_OFF.to_owned());
            self.index_lease(head, now)?;
            Ok(Change::Made)
        })
    }

    /// Stores `value` (JSON, bounded as variables are) as the task's
    /// checkpoint, for its next attempt; only `holder`, the worker
    /// holding the lease, may. Durable when this returns.
    pub fn checkpoint(
        &self,
        owner: &str,
        task_id: &str,
        holder: &str,
        value: &str,
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.variables_limits();
        crate::json::parse_limited(value, limits, "checkpoint")?;
        let raw = super::raw_json(value.trim().to_owned())?;
        let size = u32::try_from(raw.get().len()).unwrap_or(u32::MAX);
        self.mutate(owner, task_id, None, |task, _| {
            super::refuse_if_terminal(&task.head, "the checkpoint")?;
            check_fence(&task.head, Some(holder))?;
            task.body.checkpoint = Some(raw.clone());
            task.head.runs.checkpoint_bytes = size;
            Ok(Change::Made)
        })
    }
}

/// Refuses a worker's write once its lease passed on: to another worker,
/// or back to the queue. `None` is a write that is no worker's (a client's,
/// an operator's), never fenced.
pub(super) fn check_fence(head: &StoredHead, holder: Option<&str>) -> Result<(), StoreError> {
    let Some(holder) = holder else {
        return Ok(());
    };
    if head.status.is_terminal() {
        return Ok(()); // The write's own rules refuse it.
    }
    match &head.lease {
        Some(lease) if lease.holder == holder => Ok(()),
        _ => Err(StoreError::InvalidTransition(format!(
            "task {} is no longer run by worker {holder}: its lease passed on",
            head.task_id
        ))),
    }
}
