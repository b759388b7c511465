//! [`LeasedTask`]: the writes of one worker on the task it runs, each
//! fenced by its lease, and [`ReapReport`].

use std::time::Duration;

use serde_json::Value;

use super::TaskHost;
use crate::error::TaskError;
use crate::task::{
    InputRequest, InputResponse, LeaseGrant, Outcome, TaskDetail, TaskRecord, TaskStatus,
};

/// One worker's hold on one task (see [`TaskHost::leased`]): every write
/// names the worker, and the store refuses it with
/// [`TaskError::InvalidTransition`] once the lease passed on (the task was
/// handed off, or its lease lapsed and the task went back to the queue or
/// to another worker), so a run that was taken over writes nothing.
/// Cheap to clone.
#[derive(Clone)]
pub struct LeasedTask {
    host: TaskHost,
    owner: String,
    task_id: String,
    holder: String,
}

/// A task a worker claimed ([`TaskHost::claim`]): whose it is, and
/// what its run needs (its arguments, attempt and checkpoint).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClaimedTask {
    /// The task's owner: every later call on it names it.
    pub owner: String,
    /// The task, leased to the claimer.
    pub detail: TaskDetail,
    /// How long it waited for a worker: from when it could first be
    /// claimed (its creation, or the end of its backoff) to the claim.
    pub waited: std::time::Duration,
}

/// What one pass of [`TaskHost::reap_lost_workers`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReapReport {
    /// Tasks failed: their worker was lost and they may not run again.
    pub failed: u64,
    /// Tasks queued to run again under their retry policy.
    pub requeued: u64,
}

impl LeasedTask {
    pub(super) fn new(host: TaskHost, owner: &str, task_id: &str, holder: &str) -> Self {
        LeasedTask {
            host,
            owner: owner.to_owned(),
            task_id: task_id.to_owned(),
            holder: holder.to_owned(),
        }
    }

    /// The task's owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The task.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The worker holding it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Renews the lease for `duration` from now (see [`TaskHost::renew_lease`]).
    pub async fn renew(&self, duration: Duration) -> Result<TaskRecord, TaskError> {
        let grant = LeaseGrant::new(self.holder.clone(), duration);
        self.host
            .renew_lease(&self.owner, &self.task_id, &grant)
            .await
    }

    /// Replaces the status message, status `status` (a progress report is
    /// `working` again).
    pub async fn update_status(
        &self,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, TaskError> {
        let (owner, id, holder) = (&self.owner, &self.task_id, Some(self.holder.as_str()));
        self.host
            .update_status_by(owner, id, holder, status, message)
            .await
    }

    /// Ends the task with its one outcome (see [`TaskHost::finish`]).
    pub async fn finish(&self, outcome: &Outcome) -> Result<TaskRecord, TaskError> {
        let (owner, id, holder) = (&self.owner, &self.task_id, Some(self.holder.as_str()));
        self.host.finish_by(owner, id, holder, outcome).await
    }

    /// Asks the client for input (see [`TaskHost::request_input`]). A key
    /// an earlier run of the task asked is not asked again: its answer
    /// waits for [`take_answers`](Self::take_answers) once more.
    pub async fn request_input(&self, requests: &[InputRequest]) -> Result<TaskRecord, TaskError> {
        let (owner, id, holder) = (&self.owner, &self.task_id, Some(self.holder.as_str()));
        self.host
            .request_input_by(owner, id, holder, requests)
            .await
    }

    /// Takes the answers waiting for the worker.
    pub async fn take_answers(&self) -> Result<Vec<InputResponse>, TaskError> {
        let (owner, id, holder) = (&self.owner, &self.task_id, Some(self.holder.as_str()));
        self.host.take_answers_by(owner, id, holder).await
    }

    /// Stores `value` as the task's checkpoint, durable when this returns:
    /// the next run of the task (after a hand-off or a lost worker) gets
    /// it, to resume from. Bounded as variables are (64 KiB by default).
    pub async fn checkpoint(&self, value: &Value) -> Result<TaskRecord, TaskError> {
        self.host
            .checkpoint(&self.owner, &self.task_id, &self.holder, value)
            .await
    }

    /// Gives the lease up on a retryable task: it waits for another worker
    /// from now on, and any replica's [`TaskHost::claim`] takes it at once.
    /// A hand-off uses no attempt of the retry policy. Refused for a task
    /// without one (it runs at most once); a terminal task comes back
    /// unchanged.
    pub async fn hand_off(&self) -> Result<TaskRecord, TaskError> {
        self.host
            .hand_off(&self.owner, &self.task_id, &self.holder)
            .await
    }
}
