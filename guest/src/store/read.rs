//! Reading tasks: one task, its stored result, a page of an owner's
//! tasks; deleting one and removing expired ones.

use crate::cursor;
use crate::env::Environment;
use crate::error::StoreError;
use crate::kv::Kv;
use crate::record::{HeadSummary, StatusView, TaskDetail, TaskPage, TaskRecord};

use super::TaskStore;

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Reads a live task of `owner` (statuses as stored).
    pub fn get(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        let target = self.target(owner, task_id)?;
        let loaded = self.load(&target)?;
        Ok(loaded.stored.into_record(
            loaded.version,
            self.config.poll_interval,
            StatusView::Extension,
        ))
    }

    /// Reads a task with its outcome, arguments and open input requests,
    /// its status in `view`.
    pub fn inspect(
        &self,
        owner: &str,
        task_id: &str,
        view: StatusView,
    ) -> Result<TaskDetail, StoreError> {
        let target = self.target(owner, task_id)?;
        let loaded = self.load(&target)?;
        Ok(loaded
            .stored
            .into_detail(loaded.version, self.config.poll_interval, view))
    }

    /// Returns the stored JSON result (or JSON-RPC error).
    pub fn get_result(&self, owner: &str, task_id: &str) -> Result<String, StoreError> {
        let target = self.target(owner, task_id)?;
        let loaded = self.load(&target)?;
        loaded
            .stored
            .body
            .result
            .map(|r| r.get().to_owned())
            .ok_or_else(|| {
                StoreError::InvalidParams(format!(
                    "task {task_id} has no result yet (status {})",
                    loaded.stored.head.status
                ))
            })
    }

    /// Lists `owner`'s live tasks in creation order, one page at a time,
    /// statuses in `view`. Reads heads only.
    pub fn list(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
        view: StatusView,
    ) -> Result<TaskPage, StoreError> {
        self.config.check_owner(owner)?;
        let page_size = self.config.page_size(limit)?;
        let secret = &self.config.cursor_secret;
        let after = cursor
            .map(|c| cursor::decode(secret, owner, c))
            .transpose()?;
        let partition = self.partitions.partition(owner);
        let now = self.env.now_ms();
        // One extra item tells whether another page exists.
        let listing = self
            .kv
            .list(&partition, after.as_deref(), page_size + 1, now)?;
        let more = listing.len() > page_size as usize;
        let mut tasks = Vec::with_capacity(listing.len().min(page_size as usize));
        let mut last = None;
        for listed in listing.iter().take(page_size as usize) {
            let head = HeadSummary::decode(listed.head)?;
            // Defence in depth: a partition holds one owner's tasks only.
            if head.owner_id == owner && listed.is_live(now) {
                tasks.push(head.into_task(self.config.poll_interval, view));
            }
            last = Some(listed.item);
        }
        let next_cursor = match last {
            Some(last) if more => Some(cursor::encode(secret, owner, last)),
            _ => None,
        };
        Ok(TaskPage { tasks, next_cursor })
    }

    /// Deletes a task whatever its status.
    pub fn delete(&self, owner: &str, task_id: &str) -> Result<(), StoreError> {
        let target = self.target(owner, task_id)?;
        self.retrying(None, || {
            let loaded = self.load(&target)?;
            self.kv
                .remove(&target.partition, task_id, loaded.version)
                .map_err(StoreError::from)?;
            if let Some(lease) = &loaded.stored.head.lease {
                self.unindex_lease(&loaded.stored.head.task_id, lease.expires_at);
            }
            if let Some((manifest, _)) = &loaded.parts {
                self.discard_parts(&target, manifest);
            }
            Ok(())
        })
    }

    /// Physically removes up to `limit` expired records; returns the count.
    pub fn cleanup_expired(&self, limit: u32) -> Result<u64, StoreError> {
        Ok(self.kv.sweep(self.env.now_ms(), limit)?)
    }
}
