//! The task store: every MCP Tasks rule, over any [`Kv`] and [`Environment`].

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::StoreConfig;
use crate::cursor;
use crate::env::Environment;
use crate::error::StoreError;
use crate::ids::{is_task_id, owner_partition, task_id};
use crate::json::{canonical, merge_variables, parse_limited, JsonLimits};
use crate::kv::{Kv, KvError};
use crate::record::{StoredTask, TaskPage, TaskRecord};
use crate::status::TaskStatus;

/// A task store bound to one configuration.
#[derive(Debug)]
pub struct TaskStore<K, E> {
    kv: K,
    env: E,
    config: StoreConfig,
}

/// A live task as read from the backend.
struct Loaded {
    stored: StoredTask,
    version: u64,
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

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Opens a store, refusing an inconsistent configuration.
    pub fn open(kv: K, env: E, config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        Ok(TaskStore { kv, env, config })
    }

    /// The configuration in force.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The clock and randomness in use.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Creates a task in `working` for `owner`.
    pub fn create(
        &self,
        owner: &str,
        request_method: &str,
        ttl: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        self.config.check_owner(owner)?;
        if request_method.len() > self.config.max_string_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "request method exceeds the limit of {} bytes",
                self.config.max_string_bytes
            )));
        }
        let ttl = self.config.effective_ttl(ttl)?;
        let partition = owner_partition(owner);
        for attempt in 1..=self.config.max_cas_attempts {
            if attempt > 1 {
                self.kv.backoff(attempt - 1);
            }
            let now_us = self.env.now_us();
            let now = now_us / 1_000;
            let mut random = [0u8; 16];
            self.env.fill_random(&mut random)?;
            let stored = StoredTask {
                owner_id: owner.to_owned(),
                task_id: task_id(now_us, random),
                status: TaskStatus::Working,
                status_message: None,
                created_at: now,
                last_updated_at: now,
                ttl,
                request_method: request_method.to_owned(),
                variables: raw_json("{}".to_owned())?,
                result: None,
            };
            let bytes = stored.encode(self.config.max_record_bytes)?;
            let quota = self.config.max_tasks_per_owner;
            match self.kv.create(
                &partition,
                &stored.task_id,
                bytes,
                stored.expires_at(),
                quota,
                now,
            ) {
                Ok(version) => return Ok(stored.record(version, self.config.poll_interval)),
                // An id collision or a lost race on the quota step: try again.
                Err(KvError::Conflict) => continue,
                Err(KvError::QuotaExceeded) => {
                    return Err(StoreError::QuotaExceeded(format!(
                        "task quota reached: the owner already has {} live tasks",
                        quota.unwrap_or_default()
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!(
            "the task could not be created in {} attempts under concurrent writes; retry",
            self.config.max_cas_attempts
        )))
    }

    /// Reads a live task of `owner`.
    pub fn get(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        let target = self.target(owner, task_id)?;
        let loaded = self.load(&target)?;
        Ok(loaded
            .stored
            .record(loaded.version, self.config.poll_interval))
    }

    /// Moves a task to `status`, replacing its status message.
    pub fn update_status(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, StoreError> {
        let message = self.checked_message(message)?;
        self.mutate(owner, task_id, None, |task| {
            // The same status on a live task is a progress report: only the
            // message changes, and a repeat of it changes nothing.
            if task.status == status && !status.is_terminal() {
                if task.status_message == message {
                    return Ok(Change::None);
                }
            } else {
                transition(task, status)?;
            }
            task.status_message = message.clone();
            Ok(Change::Made)
        })
    }

    /// Merges a JSON object into the variables (`null` deletes a key). With
    /// `expected_version`, applies only at that version, without retrying.
    pub fn set_variables(
        &self,
        owner: &str,
        task_id: &str,
        patch: &str,
        expected_version: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.json_limits(self.config.max_variables_bytes);
        let Value::Object(patch) = parse_limited(patch, limits, "variables")? else {
            return Err(StoreError::InvalidParams(
                "variables: must be a JSON object".into(),
            ));
        };
        self.mutate(owner, task_id, expected_version, |task| {
            refuse_if_terminal(task, "variables")?;
            let mut variables: Map<String, Value> = serde_json::from_str(task.variables.get())
                .map_err(|e| StoreError::Internal(format!("stored variables are corrupt: {e}")))?;
            merge_variables(&mut variables, patch.clone());
            let text = canonical(&Value::Object(variables));
            if text.len() > limits.max_bytes {
                return Err(StoreError::InvalidParams(format!(
                    "variables: the merged object would be {} bytes; the limit is {} bytes",
                    text.len(),
                    limits.max_bytes
                )));
            }
            if text == task.variables.get() {
                return Ok(Change::None);
            }
            task.variables = raw_json(text)?;
            Ok(Change::Made)
        })
    }

    /// Stores a JSON result on a non-terminal task.
    pub fn set_result(
        &self,
        owner: &str,
        task_id: &str,
        result: &str,
    ) -> Result<TaskRecord, StoreError> {
        let result = self.parse_result(result)?;
        self.mutate(owner, task_id, None, |task| {
            refuse_if_terminal(task, "the result")?;
            task.result = Some(result.clone());
            Ok(Change::Made)
        })
    }

    /// Returns the stored JSON result.
    pub fn get_result(&self, owner: &str, task_id: &str) -> Result<String, StoreError> {
        let target = self.target(owner, task_id)?;
        let loaded = self.load(&target)?;
        loaded
            .stored
            .result
            .map(|r| r.get().to_owned())
            .ok_or_else(|| {
                StoreError::InvalidParams(format!(
                    "task {task_id} has no result yet (status {})",
                    loaded.stored.status
                ))
            })
    }

    /// Moves to `completed` or `failed` and stores `result`, in one write.
    pub fn complete_with_result(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        result: &str,
    ) -> Result<TaskRecord, StoreError> {
        if !matches!(status, TaskStatus::Completed | TaskStatus::Failed) {
            return Err(StoreError::InvalidParams(format!(
                "complete-with-result needs status completed or failed, not {status}"
            )));
        }
        let result = self.parse_result(result)?;
        self.mutate(owner, task_id, None, |task| {
            transition(task, status)?;
            task.result = Some(result.clone());
            Ok(Change::Made)
        })
    }

    /// Cancels a non-terminal task.
    pub fn cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task| {
            if task.status.is_terminal() {
                return Err(StoreError::InvalidTransition(format!(
                    "cannot cancel task {}: it is already {}",
                    task.task_id, task.status
                )));
            }
            task.status = TaskStatus::Cancelled;
            Ok(Change::Made)
        })
    }

    /// Deletes a task whatever its status.
    pub fn delete(&self, owner: &str, task_id: &str) -> Result<(), StoreError> {
        let target = self.target(owner, task_id)?;
        self.retrying(None, || {
            let loaded = self.load(&target)?;
            self.kv
                .remove(&target.partition, task_id, loaded.version)
                .map_err(StoreError::from)
        })
    }

    /// Lists `owner`'s live tasks in creation order, one page at a time.
    pub fn list(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<TaskPage, StoreError> {
        self.config.check_owner(owner)?;
        let page_size = self.config.page_size(limit)?;
        let secret = &self.config.cursor_secret;
        let after = cursor
            .map(|c| cursor::decode(secret, owner, c))
            .transpose()?;
        let partition = owner_partition(owner);
        let now = self.env.now_ms();
        // One extra item tells whether another page exists.
        let mut entries = self
            .kv
            .list(&partition, after.as_deref(), page_size + 1, now)?;
        let more = entries.len() > page_size as usize;
        entries.truncate(page_size as usize);
        let mut tasks = Vec::with_capacity(entries.len());
        for (_, entry) in &entries {
            let stored = StoredTask::decode(&entry.value)?;
            // Defence in depth: a partition holds one owner's tasks only.
            if stored.owner_id == owner && entry.is_live(now) {
                tasks.push(stored.task(self.config.poll_interval));
            }
        }
        let next_cursor = match entries.last() {
            Some((last, _)) if more => Some(cursor::encode(secret, owner, last)),
            _ => None,
        };
        Ok(TaskPage { tasks, next_cursor })
    }

    /// Physically removes up to `limit` expired records; returns the count.
    pub fn cleanup_expired(&self, limit: u32) -> Result<u64, StoreError> {
        Ok(self.kv.sweep(self.env.now_ms(), limit)?)
    }

    fn target<'a>(&self, owner: &'a str, task_id: &'a str) -> Result<Target<'a>, StoreError> {
        self.config.check_owner(owner)?;
        if !is_task_id(task_id) {
            return Err(StoreError::task_not_found(task_id));
        }
        Ok(Target {
            owner,
            partition: owner_partition(owner),
            task_id,
        })
    }

    /// Reads a task the owner can see; anything else is the same not-found.
    fn load(&self, target: &Target<'_>) -> Result<Loaded, StoreError> {
        let not_found = || StoreError::task_not_found(target.task_id);
        let entry = self
            .kv
            .get(&target.partition, target.task_id)?
            .ok_or_else(not_found)?;
        if !entry.is_live(self.env.now_ms()) {
            return Err(not_found());
        }
        let stored = StoredTask::decode(&entry.value)?;
        if stored.owner_id != target.owner || stored.task_id != target.task_id {
            return Err(not_found());
        }
        Ok(Loaded {
            stored,
            version: entry.version,
        })
    }

    /// Read-validate-write with compare-and-swap, retried on conflict unless
    /// the caller pinned `expected_version`.
    fn mutate(
        &self,
        owner: &str,
        task_id: &str,
        expected_version: Option<u64>,
        apply: impl Fn(&mut StoredTask) -> Result<Change, StoreError>,
    ) -> Result<TaskRecord, StoreError> {
        let target = self.target(owner, task_id)?;
        self.retrying(expected_version, || {
            let Loaded {
                mut stored,
                version,
            } = self.load(&target)?;
            if expected_version.is_some_and(|v| v != version) {
                return Err(StoreError::Conflict(format!(
                    "task {task_id} is at version {version}, not the expected {}",
                    expected_version.unwrap_or_default()
                )));
            }
            if apply(&mut stored)? == Change::None {
                // Nothing to write: no new version, no new lastUpdatedAt.
                return Ok(stored.record(version, self.config.poll_interval));
            }
            let now = self.env.now_ms();
            stored.last_updated_at = now.max(stored.last_updated_at);
            let bytes = stored.encode(self.config.max_record_bytes)?;
            let new_version = self.kv.replace(
                &target.partition,
                task_id,
                version,
                bytes,
                stored.expires_at(),
                now,
            )?;
            Ok(stored.record(new_version, self.config.poll_interval))
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

    fn json_limits(&self, max_bytes: u32) -> JsonLimits {
        JsonLimits {
            max_bytes: max_bytes as usize,
            max_depth: self.config.max_json_depth as usize,
            max_string_bytes: self.config.max_string_bytes as usize,
        }
    }

    fn parse_result(&self, text: &str) -> Result<Box<RawValue>, StoreError> {
        let value = parse_limited(
            text,
            self.json_limits(self.config.max_result_bytes),
            "result",
        )?;
        raw_json(canonical(&value))
    }

    fn checked_message(&self, message: Option<&str>) -> Result<Option<String>, StoreError> {
        match message {
            Some(m) if m.len() > self.config.max_string_bytes as usize => {
                Err(StoreError::InvalidParams(format!(
                    "status message exceeds the limit of {} bytes",
                    self.config.max_string_bytes
                )))
            }
            m => Ok(m.map(str::to_owned)),
        }
    }
}

/// Applies a status change the state machine allows.
/// Whether a mutation changed the task (and so must be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Something changed: write a new version.
    Made,
    /// Nothing changed: keep the stored version and `lastUpdatedAt`.
    None,
}

fn transition(task: &mut StoredTask, next: TaskStatus) -> Result<(), StoreError> {
    if !task.status.can_transition_to(next) {
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

fn refuse_if_terminal(task: &StoredTask, what: &str) -> Result<(), StoreError> {
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
