//! The task store: every MCP Tasks rule, over any [`Kv`] and [`Environment`].
//!
//! This module holds the store and its compare-and-swap engine (load,
//! mutate, the one retry policy); each family of operations lives in a
//! module of its own.

mod create;
mod input;
mod lease;
mod outcome;
mod parts;
mod queued;
mod read;
mod runs;
mod validation;

pub use lease::ReapReport;

use serde_json::value::RawValue;

use crate::config::StoreConfig;
use crate::env::Environment;
use crate::error::StoreError;
use crate::ids::{is_task_id, PartitionMemo};
use crate::kv::{Entry, Kv, KvError};
use crate::record::{OutcomeKind, StatusView, StoredHead, StoredTask, TaskRecord};
use crate::status::{can_transition, TaskStatus};

/// A task store bound to one configuration.
#[derive(Debug)]
pub struct TaskStore<K, E> {
    kv: K,
    env: E,
    config: StoreConfig,
    partitions: PartitionMemo,
}

/// A live task as read from the backend.
struct Loaded {
    stored: StoredTask,
    version: u64,
    /// For a body kept in parts: the parts, and the body's bytes (so that
    /// a write leaving the body as it was keeps them).
    parts: Option<(parts::Manifest, Vec<u8>)>,
}

impl From<KvError> for StoreError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Conflict => {
                StoreError::Conflict("a concurrent update changed the task; retry".into())
            }
            KvError::QuotaExceeded => {
                StoreError::QuotaExceeded("the owner has reached its task quota".into())
            }
            KvError::TooLarge(m) => StoreError::InvalidParams(format!(
                "the task record is too large for the backend: {m}"
            )),
            KvError::Unavailable(m) => {
                StoreError::Backend(format!("storage backend unavailable: {m}"))
            }
        }
    }
}

/// Owner, partition and task id of one addressed task.
struct Target<'a> {
    owner: &'a str,
    partition: String,
    task_id: &'a str,
}

/// What a mutation did to the task's lease, so the index follows it.
#[derive(Debug, Default)]
struct LeaseMove {
    /// The index item of the lease the write replaced or ended.
    old: Option<u64>,
    /// The task left the queue of tasks waiting for room: its item goes.
    left_queue: bool,
}

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Opens a store, refusing an inconsistent configuration.
    pub fn open(kv: K, env: E, config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        Ok(TaskStore {
            kv,
            env,
            config,
            partitions: PartitionMemo::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The storage in use.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// The clock and randomness in use.
    pub fn env(&self) -> &E {
        &self.env
    }

    fn target<'a>(&self, owner: &'a str, task_id: &'a str) -> Result<Target<'a>, StoreError> {
        self.config.check_owner(owner)?;
        if !is_task_id(task_id) {
            return Err(StoreError::task_not_found(task_id));
        }
        Ok(Target {
            owner,
            partition: self.partitions.partition(owner),
            task_id,
        })
    }

    /// Reads a task the owner can see; anything else is the same not-found.
    /// A body kept in parts is put together; one whose parts a newer
    /// version replaced meanwhile is read again.
    fn load(&self, target: &Target<'_>) -> Result<Loaded, StoreError> {
        for attempt in 1..=self.config.max_cas_attempts {
            if attempt > 1 {
                self.kv.backoff(attempt - 1);
            }
            let (entry, head) = self.live_head(target)?;
            let now = self.env.now_ms();
            let Some(body) = self.read_body(target, entry.body, now)? else {
                continue;
            };
            let stored = StoredTask {
                head,
                body: crate::record::parse_stored("body", &body.bytes)?,
            };
            return Ok(Loaded {
                stored,
                version: entry.version,
                parts: body.manifest.map(|m| (m, body.bytes)),
            });
        }
        Err(StoreError::Conflict(format!(
            "task {} changed while its parts were read; retry",
            target.task_id
        )))
    }

    /// Reads only the head of a live task of `owner` (no body, no parts).
    fn get_head(&self, owner: &str, task_id: &str) -> Result<StoredHead, StoreError> {
        let target = self.target(owner, task_id)?;
        Ok(self.live_head(&target)?.1)
    }

    /// The entry of a live task the owner can see, and its head parsed;
    /// anything else is the same not-found.
    fn live_head(&self, target: &Target<'_>) -> Result<(Entry, StoredHead), StoreError> {
        let not_found = || StoreError::task_not_found(target.task_id);
        let entry = self
            .kv
            .get(&target.partition, target.task_id)?
            .ok_or_else(not_found)?;
        if !entry.is_live(self.env.now_ms()) {
            return Err(not_found());
        }
        let head = StoredHead::decode(&entry.head)?;
        if head.owner_id != target.owner || head.task_id != target.task_id {
            return Err(not_found());
        }
        Ok((entry, head))
    }

    /// Finishes a non-terminal task with `result` of `kind`, in one write.
    /// A `worker`'s write is refused once its lease passed on.
    fn finish_with(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        status: TaskStatus,
        result: Box<RawValue>,
        kind: OutcomeKind,
    ) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
            runs::check_fence(&task.head, worker)?;
            transition(&mut task.head, status)?;
            task.body.result = Some(result.clone());
            task.head.outcome = Some(kind);
            end_work(task, moved);
            Ok(Change::Made)
        })
    }

    /// Read-validate-write with compare-and-swap, retried on conflict unless
    /// the caller pinned `expected_version`. The index item of a lease the
    /// write replaced or ended is removed after the write.
    fn mutate(
        &self,
        owner: &str,
        task_id: &str,
        expected_version: Option<u64>,
        apply: impl Fn(&mut StoredTask, &mut LeaseMove) -> Result<Change, StoreError>,
    ) -> Result<TaskRecord, StoreError> {
        let target = self.target(owner, task_id)?;
        self.retrying(expected_version, || {
            let Loaded {
                mut stored,
                version,
                parts,
            } = self.load(&target)?;
            if expected_version.is_some_and(|v| v != version) {
                return Err(StoreError::Conflict(format!(
                    "task {task_id} is at version {version}, not the expected {}",
                    expected_version.unwrap_or_default()
                )));
            }
            let poll = self.config.poll_interval;
            let mut moved = LeaseMove::default();
            if apply(&mut stored, &mut moved)? == Change::None {
                // Nothing to write: no new version, no new lastUpdatedAt.
                return Ok(stored.into_record(version, poll, StatusView::Extension));
            }
            let now = self.env.now_ms();
            let head = &mut stored.head;
            head.last_updated_at = now.max(head.last_updated_at);
            let (head_bytes, body_bytes) = stored.encode(self.config.max_task_bytes)?;
            let expires_at = stored.head.expires_at();
            // A body as it was keeps its parts; a changed one gets new
            // ones, and the old ones go once the task points elsewhere.
            let (item_body, written, replaced_parts) = match parts {
                Some((manifest, old)) if old == body_bytes => {
                    (parts::manifest_body(&manifest)?, None, None)
                }
                old => {
                    let placed =
                        self.place_body(&target, head_bytes.len(), body_bytes, expires_at, now)?;
                    (placed.item, placed.written, old.map(|(m, _)| m))
                }
            };
            let replaced = self.kv.replace(
                &target.partition,
                task_id,
                version,
                head_bytes,
                item_body,
                expires_at,
                now,
            );
            let new_version = match replaced {
                Ok(new_version) => new_version,
                Err(e) => {
                    if let Some(written) = &written {
                        self.discard_parts(&target, written);
                    }
                    return Err(e.into());
                }
            };
            if let Some(old) = &replaced_parts {
                self.discard_parts(&target, old);
            }
            // The task's index item now: its lease's deadline, or the time
            // it may be claimed.
            let current =
                (stored.head.lease.as_ref().map(|l| l.expires_at)).or(stored.head.runs.ready_at);
            if let Some(old) = moved.old.filter(|old| Some(*old) != current) {
                self.unindex_lease(task_id, old);
            }
            if moved.left_queue {
                self.unqueue(&target.partition, task_id);
            }
            Ok(stored.into_record(new_version, poll, StatusView::Extension))
        })
    }

    /// Runs `attempt` until it does not conflict, at most the configured
    /// number of times (once when the caller pinned a version).
    fn retrying<T>(
        &self,
        expected_version: Option<u64>,
        mut attempt: impl FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let attempts = if expected_version.is_some() {
            1
        } else {
            self.config.max_cas_attempts
        };
        let mut last = None;
        for n in 1..=attempts {
            if n > 1 {
                self.kv.backoff(n - 1);
            }
            match attempt() {
                Err(StoreError::Conflict(m)) => last = Some(m),
                other => return other,
            }
        }
        let why = last.unwrap_or_default();
        Err(StoreError::Conflict(if attempts > 1 {
            format!("gave up after {attempts} attempts under concurrent updates: {why}")
        } else {
            why
        }))
    }
}

/// A task reached a terminal status: its lease ends and nothing is asked
/// of the client any more (the keys stay used).
fn end_work(task: &mut StoredTask, moved: &mut LeaseMove) {
    if let Some(lease) = task.head.lease.take() {
        moved.old = Some(lease.expires_at);
    }
    if let Some(ready_at) = task.head.runs.ready_at.take() {
        moved.old = Some(ready_at);
    }
    if std::mem::take(&mut task.head.runs.awaiting_room) {
        moved.left_queue = true;
    }
    task.head.pending_input.clear();
    task.body.input_requests.clear();
}

/// Whether a mutation changed the task (and so must be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Something changed: write a new version.
    Made,
    /// Nothing changed: keep the stored version and `lastUpdatedAt`.
    None,
}

/// Applies a status change the state machine allows.
fn transition(task: &mut StoredHead, next: TaskStatus) -> Result<(), StoreError> {
    if !can_transition(task.status, next) {
        let why = if task.status.is_terminal() {
            "terminal tasks never change"
        } else {
            "not a legal transition"
        };
        return Err(StoreError::InvalidTransition(format!(
            "cannot move task {} from {} to {next}: {why}",
            task.task_id, task.status
        )));
    }
    task.status = next;
    Ok(())
}

fn refuse_if_terminal(task: &StoredHead, what: &str) -> Result<(), StoreError> {
    if task.status.is_terminal() {
        return Err(StoreError::InvalidTransition(format!(
            "cannot change {what} of task {}: it is {} and terminal tasks never change",
            task.task_id, task.status
        )));
    }
    Ok(())
}

fn raw_json(text: String) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(text)
        .map_err(|e| StoreError::Internal(format!("invalid canonical JSON: {e}")))
}
