//! Creating a task: validation of the request, then one conditional
//! create of its record (a fresh id on each attempt).

use crate::env::Environment;
use crate::error::StoreError;
use crate::ids::task_id;
use crate::kv::{Kv, KvError};
use crate::record::{
    Lease, LeaseGrant, StatusView, StoredBody, StoredHead, StoredRuns, StoredTask, TaskRecord,
    TaskRequest,
};
use crate::status::TaskStatus;

use super::validation::{check_name, check_trace_parent};
use super::{raw_json, Target, TaskStore};

/// How a new task starts.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// With no worker (its creator works it, if anyone).
    Unleased,
    /// Leased to a worker of the creating replica.
    Leased(&'a LeaseGrant),
    /// Waiting in the queue for any replica with room.
    Queued,
}

impl<K: Kv, E: Environment> TaskStore<K, E> {
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
        let start = lease.map_or(Start::Unleased, Start::Leased);
        self.create_started(owner, request, ttl, start)
    }

    /// Creates a task in `working` for `owner`, running `request`, that
    /// waits in the queue for a replica with room to claim it (the creating
    /// replica had none): `queued`, its status message saying so.
    pub fn create_queued(
        &self,
        owner: &str,
        request: &TaskRequest,
        ttl: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        self.create_started(owner, request, ttl, Start::Queued)
    }

    fn create_started(
        &self,
        owner: &str,
        request: &TaskRequest,
        ttl: Option<u64>,
        start: Start<'_>,
    ) -> Result<TaskRecord, StoreError> {
        let lease = match start {
            Start::Leased(grant) => Some(grant),
            Start::Unleased | Start::Queued => None,
        };
        let queued = matches!(start, Start::Queued);
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
        if let Some(policy) = &request.retry {
            crate::retry::check_policy(policy).map_err(StoreError::InvalidParams)?;
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
                    status_message: queued.then(|| crate::queue::WAITING.to_owned()),
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
                    runs: StoredRuns {
                        retry: request.retry,
                        attempt: u32::from(lease.is_some()),
                        awaiting_room: queued,
                        ..StoredRuns::default()
                    },
                },
                body: StoredBody {
                    variables: raw_json("{}".to_owned())?,
                    result: None,
                    arguments: arguments.clone(),
                    input_requests: Default::default(),
                    answers: Default::default(),
                    used_input_keys: Vec::new(),
                    taken_answers: Default::default(),
                    checkpoint: None,
                },
            };
            let (head, body) = stored.encode(self.config.max_task_bytes)?;
            // The lease's index item goes first: a lease never exists
            // without one, so a crash right after the create is still reaped.
            if let Some(lease) = &stored.head.lease {
                self.index_lease(&stored.head, lease.expires_at)?;
            }
            // So is a waiting task's queue item.
            if queued {
                self.enqueue(&partition, &stored.head)?;
            }
            let quota = self.config.max_tasks_per_owner;
            let expires_at = stored.head.expires_at();
            let target = Target {
                owner,
                partition: partition.clone(),
                task_id: &stored.head.task_id,
            };
            let placed = self.place_body(&target, head.len(), body, expires_at, now)?;
            let created = self.kv.create(
                &partition,
                &stored.head.task_id,
                head,
                placed.item,
                expires_at,
                quota,
                now,
            );
            if let (Err(_), Some(written)) = (&created, &placed.written) {
                self.discard_parts(&target, written);
            }
            if created.is_err() && queued {
                self.unqueue(&partition, &stored.head.task_id);
            }
            match created {
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
}
