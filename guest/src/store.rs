//! The task store: every MCP Tasks rule, over any [`Kv`] and [`Environment`].

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::config::{StoreConfig, MAX_NAME_BYTES};
use crate::cursor;
use crate::env::Environment;
use crate::error::StoreError;
use crate::ids::{is_task_id, task_id, PartitionMemo};
use crate::json::{canonical, merge_variables, parse_limited, JsonLimits};
use crate::kv::{Kv, KvError};
use crate::leases;
use crate::outcome::{
    any_result_kind, check_rpc_error, tool_result_kind, worker_lost, INPUT_METHODS,
};
use crate::record::{
    HeadSummary, InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, StatusView,
    StoredBody, StoredHead, StoredInputRequest, StoredTask, TaskDetail, TaskPage, TaskRecord,
    TaskRequest,
};
use crate::status::TaskStatus;
use crate::time::iso8601_utc;
use pmcp_tasks_contract::trace_parent::is_trace_parent;

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

    /// The clock and randomness in use.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Creates a task in `working` for `owner` (a request with only a
    /// method, no lease).
    pub fn create(
        &self,
        owner: &str,
        request_method: &str,
        ttl: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        let request = TaskRequest {
            method: request_method.to_owned(),
            ..TaskRequest::default()
        };
        self.create_task(owner, &request, ttl, None)
    }

    /// Creates a task in `working` for `owner`, running `request`, leased
    /// to a worker from the start when `lease` is given.
    pub fn create_task(
        &self,
        owner: &str,
        request: &TaskRequest,
        ttl: Option<u64>,
        lease: Option<&LeaseGrant>,
    ) -> Result<TaskRecord, StoreError> {
        self.config.check_owner(owner)?;
        self.check_string(&request.method, "request method")?;
        if let Some(tool) = &request.tool_name {
            check_name(tool, "tool name")?;
        }
        if let Some(trace_parent) = &request.trace_parent {
            check_trace_parent(trace_parent)?;
        }
        if let Some(grant) = lease {
            self.check_grant(grant)?;
        }
        let arguments = request
            .arguments
            .as_deref()
            .map(|text| self.parse_object(text, self.config.max_result_bytes, "arguments"))
            .transpose()?;
        let ttl = self.config.effective_ttl(ttl)?;
        let partition = self.partitions.partition(owner);
        for attempt in 1..=self.config.max_cas_attempts {
            if attempt > 1 {
                self.kv.backoff(attempt - 1);
            }
            let now_us = self.env.now_us();
            let now = now_us / 1_000;
            let mut random = [0u8; 16];
            self.env.fill_random(&mut random)?;
            let stored = StoredTask {
                head: StoredHead {
                    owner_id: owner.to_owned(),
                    task_id: task_id(now_us, random),
                    status: TaskStatus::Working,
                    status_message: None,
                    created_at: now,
                    last_updated_at: now,
                    ttl,
                    request_method: request.method.clone(),
                    tool_name: request.tool_name.clone(),
                    trace_parent: request.trace_parent.clone(),
                    outcome: None,
                    cancel_requested: false,
                    lease: lease.map(|g| Lease {
                        holder: g.holder.clone(),
                        expires_at: now.saturating_add(g.duration),
                    }),
                    pending_input: Vec::new(),
                    answers_waiting: 0,
                },
                body: StoredBody {
                    variables: raw_json("{}".to_owned())?,
                    result: None,
                    arguments: arguments.clone(),
                    input_requests: Default::default(),
                    answers: Default::default(),
                    used_input_keys: Vec::new(),
                },
            };
            let (head, body) = stored.encode(self.config.max_record_bytes)?;
            // The lease's index item goes first: a lease never exists
            // without one, so a crash right after the create is still reaped.
            if let Some(lease) = &stored.head.lease {
                self.index_lease(&stored.head, lease.expires_at)?;
            }
            let quota = self.config.max_tasks_per_owner;
            let expires_at = stored.head.expires_at();
            match self.kv.create(
                &partition,
                &stored.head.task_id,
                head,
                body,
                expires_at,
                quota,
                now,
            ) {
                Ok(version) => {
                    return Ok(stored.into_record(
                        version,
                        self.config.poll_interval,
                        StatusView::Extension,
                    ))
                }
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

    /// Moves a task to `status`, replacing its status message.
    pub fn update_status(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, StoreError> {
        let message = self.checked_message(message)?;
        self.mutate(owner, task_id, None, |task, _| {
            let head = &mut task.head;
            // The same status on a live task is a progress report: only the
            // message changes, and a repeat of it changes nothing.
            if head.status == status && !status.is_terminal() {
                if head.status_message == message {
                    return Ok(Change::None);
                }
            } else {
                transition(head, status)?;
            }
            head.status_message = message.clone();
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
        self.mutate(owner, task_id, expected_version, |task, _| {
            refuse_if_terminal(&task.head, "variables")?;
            let mut variables: Map<String, Value> = serde_json::from_str(task.body.variables.get())
                .map_err(|e| StoreError::Internal(format!("stored variables are corrupt: {e}")))?;
            merge_variables(&mut variables, patch.clone());
            let merged = canonical(&Value::Object(variables))?;
            if merged.get().len() > limits.max_bytes {
                return Err(StoreError::InvalidParams(format!(
                    "variables: the merged object would be {} bytes; the limit is {} bytes",
                    merged.get().len(),
                    limits.max_bytes
                )));
            }
            if merged.get() == task.body.variables.get() {
                return Ok(Change::None);
            }
            task.body.variables = merged;
            Ok(Change::Made)
        })
    }

    /// Stores an interim JSON result on a non-terminal task.
    pub fn set_result(
        &self,
        owner: &str,
        task_id: &str,
        result: &str,
    ) -> Result<TaskRecord, StoreError> {
        let (result, kind) = self.parse_result(result)?;
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the result")?;
            task.body.result = Some(result.clone());
            task.head.outcome = Some(kind);
            Ok(Change::Made)
        })
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
        let (result, kind) = self.parse_result(result)?;
        self.finish_with(owner, task_id, status, result, kind)
    }

    /// Finishes a task with its one outcome, in one write: `completed` for
    /// a tool result (also one with `isError`), `failed` for a JSON-RPC error.
    pub fn finish(
        &self,
        owner: &str,
        task_id: &str,
        outcome: &Outcome,
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.json_limits(self.config.max_result_bytes);
        let (text, status, kind) = match outcome {
            Outcome::ToolResult(text) => {
                let value = parse_limited(text, limits, "result")?;
                let kind = tool_result_kind(&value)
                    .map_err(|why| StoreError::InvalidParams(format!("result: {why}")))?;
                (text, TaskStatus::Completed, kind)
            }
            Outcome::RpcError(text) => {
                let value = parse_limited(text, limits, "error")?;
                check_rpc_error(&value)
                    .map_err(|why| StoreError::InvalidParams(format!("error: {why}")))?;
                (text, TaskStatus::Failed, OutcomeKind::RpcError)
            }
        };
        // Kept as given: a tool result is the tool's, byte for byte.
        let verbatim = raw_json(text.trim().to_owned())?;
        self.finish_with(owner, task_id, status, verbatim, kind)
    }

    /// Cancels a non-terminal task (its worker sees `cancel-requested` and
    /// the terminal status).
    pub fn cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() {
                return Err(StoreError::InvalidTransition(format!(
                    "cannot cancel task {}: it is already {}",
                    head.task_id, head.status
                )));
            }
            head.status = TaskStatus::Cancelled;
            head.cancel_requested = true;
            end_work(task, moved);
            Ok(Change::Made)
        })
    }

    /// Marks a task cancel-requested for its worker; nothing changes on a
    /// terminal or already marked task, and neither is an error.
    pub fn request_cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, _| {
            let head = &mut task.head;
            if head.status.is_terminal() || head.cancel_requested {
                return Ok(Change::None);
            }
            head.cancel_requested = true;
            Ok(Change::Made)
        })
    }

    /// Adds input requests under keys the task never used and moves it to
    /// `input_required`.
    pub fn request_input(
        &self,
        owner: &str,
        task_id: &str,
        requests: &[InputRequest],
    ) -> Result<TaskRecord, StoreError> {
        if requests.is_empty() {
            return Err(StoreError::InvalidParams(
                "request-input needs at least one request".into(),
            ));
        }
        let mut parsed = Vec::with_capacity(requests.len());
        for request in requests {
            self.check_key(&request.key)?;
            if !INPUT_METHODS.contains(&request.method.as_str()) {
                return Err(StoreError::InvalidParams(format!(
                    "input request {:?}: method must be one of {INPUT_METHODS:?}",
                    request.key
                )));
            }
            let params =
                self.parse_object(&request.params, self.config.max_result_bytes, "params")?;
            parsed.push((request.key.clone(), request.method.clone(), params));
        }
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the input requests")?;
            let used = &mut task.body.used_input_keys;
            for (key, method, params) in &parsed {
                if used.contains(key) {
                    return Err(StoreError::InvalidParams(format!(
                        "input key {key:?} was already used on task {task_id}: keys are unique over a task's life"
                    )));
                }
                used.push(key.clone());
                task.body.input_requests.insert(
                    key.clone(),
                    StoredInputRequest {
                        method: method.clone(),
                        params: params.clone(),
                    },
                );
                task.head.pending_input.push(key.clone());
            }
            task.head.status = TaskStatus::InputRequired;
            Ok(Change::Made)
        })
    }

    /// Records the responses whose keys are outstanding (others are
    /// ignored); the task is `working` again once none is outstanding.
    /// Nothing changes on a terminal task.
    pub fn answer_input(
        &self,
        owner: &str,
        task_id: &str,
        responses: &[InputResponse],
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.json_limits(self.config.max_result_bytes);
        let mut parsed = Vec::with_capacity(responses.len());
        for response in responses {
            self.check_key(&response.key)?;
            parse_limited(&response.response, limits, "input response")?;
            parsed.push((
                response.key.clone(),
                raw_json(response.response.trim().to_owned())?,
            ));
        }
        self.mutate(owner, task_id, None, |task, _| {
            if task.head.status.is_terminal() {
                return Ok(Change::None);
            }
            let mut change = Change::None;
            for (key, response) in &parsed {
                // Unknown and already answered keys are ignored (SEP-2663).
                if task.body.input_requests.remove(key).is_none() {
                    continue;
                }
                task.head.pending_input.retain(|k| k != key);
                task.body.answers.insert(key.clone(), response.clone());
                change = Change::Made;
            }
            task.head.answers_waiting = u32::try_from(task.body.answers.len()).unwrap_or(u32::MAX);
            if change == Change::Made
                && task.head.pending_input.is_empty()
                && task.head.status == TaskStatus::InputRequired
            {
                task.head.status = TaskStatus::Working;
            }
            Ok(change)
        })
    }

    /// Removes and returns the answers waiting for the worker.
    pub fn take_answers(
        &self,
        owner: &str,
        task_id: &str,
    ) -> Result<Vec<InputResponse>, StoreError> {
        let taken = std::cell::RefCell::new(Vec::new());
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the answers")?;
            let answers = std::mem::take(&mut task.body.answers);
            *taken.borrow_mut() = answers
                .into_iter()
                .map(|(key, response)| InputResponse {
                    key,
                    response: response.get().to_owned(),
                })
                .collect();
            task.head.answers_waiting = 0;
            Ok(if taken.borrow().is_empty() {
                Change::None
            } else {
                Change::Made
            })
        })?;
        Ok(taken.into_inner())
    }

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
    fn reap_one(&self, index: &leases::IndexEntry, deadline: u64) -> Result<bool, StoreError> {
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
            Ok(())
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
            partition: self.partitions.partition(owner),
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
        let stored = StoredTask::decode(&entry.head, &entry.body)?;
        if stored.head.owner_id != target.owner || stored.head.task_id != target.task_id {
            return Err(not_found());
        }
        Ok(Loaded {
            stored,
            version: entry.version,
        })
    }

    /// Finishes a non-terminal task with `result` of `kind`, in one write.
    fn finish_with(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        result: Box<RawValue>,
        kind: OutcomeKind,
    ) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
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
            let (head_bytes, body_bytes) = stored.encode(self.config.max_record_bytes)?;
            let new_version = self.kv.replace(
                &target.partition,
                task_id,
                version,
                head_bytes,
                body_bytes,
                stored.head.expires_at(),
                now,
            )?;
            let current = stored.head.lease.as_ref().map(|l| l.expires_at);
            if let Some(old) = moved.old.filter(|old| Some(*old) != current) {
                self.unindex_lease(task_id, old);
            }
            Ok(stored.into_record(new_version, poll, StatusView::Extension))
        })
    }

    /// Writes the index item of a lease on `head`'s task lapsing at `deadline`.
    fn index_lease(&self, head: &StoredHead, deadline: u64) -> Result<(), StoreError> {
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
    fn unindex_lease(&self, task_id: &str, deadline: u64) {
        let partition = leases::partition_of(task_id);
        let _ = self
            .kv
            .remove(&partition, &leases::item(deadline, task_id), 1);
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

    /// Parses a generic result: canonical JSON and its kind.
    fn parse_result(&self, text: &str) -> Result<(Box<RawValue>, OutcomeKind), StoreError> {
        let value = parse_limited(
            text,
            self.json_limits(self.config.max_result_bytes),
            "result",
        )?;
        let kind = any_result_kind(&value);
        Ok((canonical(&value)?, kind))
    }

    /// Checks that `text` is a JSON object within `max_bytes`; keeps it as given.
    fn parse_object(
        &self,
        text: &str,
        max_bytes: u32,
        what: &str,
    ) -> Result<Box<RawValue>, StoreError> {
        let value = parse_limited(text, self.json_limits(max_bytes), what)?;
        if !value.is_object() {
            return Err(StoreError::InvalidParams(format!(
                "{what}: must be a JSON object"
            )));
        }
        raw_json(text.trim().to_owned())
    }

    fn check_string(&self, text: &str, what: &str) -> Result<(), StoreError> {
        if text.len() > self.config.max_string_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "{what} exceeds the limit of {} bytes",
                self.config.max_string_bytes
            )));
        }
        Ok(())
    }

    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::InvalidParams(
                "input keys must not be empty".into(),
            ));
        }
        check_name(key, "input key")
    }

    fn check_grant(&self, grant: &LeaseGrant) -> Result<(), StoreError> {
        if grant.holder.is_empty() || grant.duration == 0 {
            return Err(StoreError::InvalidParams(
                "a lease needs a holder and a positive duration".into(),
            ));
        }
        if grant.duration > crate::config::MAX_TTL_MS {
            return Err(StoreError::InvalidParams(format!(
                "a lease of {} ms is longer than any task lives",
                grant.duration
            )));
        }
        check_name(&grant.holder, "lease holder")
    }

    fn checked_message(&self, message: Option<&str>) -> Result<Option<String>, StoreError> {
        if let Some(m) = message {
            self.check_string(m, "status message")?;
        }
        Ok(message.map(str::to_owned))
    }
}

/// Refuses a name longer than [`MAX_NAME_BYTES`].
/// A creating request's `traceparent` must be one (W3C Trace Context).
fn check_trace_parent(text: &str) -> Result<(), StoreError> {
    if is_trace_parent(text) {
        Ok(())
    } else {
        Err(StoreError::InvalidParams(
            "trace parent is not a W3C traceparent (version-traceid-parentid-flags)".into(),
        ))
    }
}

fn check_name(name: &str, what: &str) -> Result<(), StoreError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(StoreError::InvalidParams(format!(
            "{what} is {} bytes; the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

/// A task reached a terminal status: its lease ends and nothing is asked
/// of the client any more (the keys stay used).
fn end_work(task: &mut StoredTask, moved: &mut LeaseMove) {
    if let Some(lease) = task.head.lease.take() {
        moved.old = Some(lease.expires_at);
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
