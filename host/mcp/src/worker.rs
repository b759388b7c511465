//! [`Worker`]: what a tool running as a task holds, and the loop that runs
//! it: lease renewal, cancellation, and the one outcome at the end.

use std::collections::BTreeMap;
use std::future::Future;

use pmcp_tasks_host::{
    InputRequest, InputResponse, LeaseGrant, Outcome, TaskError, TaskRecord, TaskStatus,
};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use std::sync::Arc;

use crate::progress::ProgressRelay;
use crate::shared::{count_finished, shut_down_error, Shared};
use crate::wake::{Subscription, Wakeups};

/// What a tool returns: its `CallToolResult` (also one with `isError:
/// true`), or how it ended without one.
pub type ToolOutcome = Result<Value, ToolExit>;

/// How a tool ended without a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolExit {
    /// It failed with this JSON-RPC error (the task ends `failed`).
    #[error(transparent)]
    Failed(#[from] RpcError),
    /// It stopped because its task's cancellation was asked for (the task
    /// ends `cancelled`). Returning a result or an error instead, after
    /// cancellation, is allowed: cancellation is cooperative, and the task
    /// then ends with that outcome.
    #[error("the tool stopped on its task's cancellation")]
    Cancelled,
}

impl ToolExit {
    /// The JSON-RPC error of a call that did not run as a task.
    pub fn into_rpc_error(self) -> RpcError {
        match self {
            ToolExit::Failed(error) => error,
            ToolExit::Cancelled => RpcError::internal("the call was cancelled"),
        }
    }
}

/// A tool call running as a task, on this replica. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    owner: String,
    task_id: String,
    grant: LeaseGrant,
    cancel: CancellationToken,
    progress: Arc<ProgressRelay>,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        owner: String,
        task_id: String,
        grant: LeaseGrant,
    ) -> Self {
        Worker {
            shared,
            owner,
            task_id,
            grant,
            cancel: CancellationToken::new(),
            progress: Arc::default(),
        }
    }

    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// Cancelled when the task's cancellation was asked for, on any
    /// replica (seen within the service's `cancel_check`, at once on this
    /// replica). The tool then has the service's `cancel_grace` to return:
    /// [`ToolExit::Cancelled`] to end the task `cancelled`, or any other
    /// outcome to keep it; past the grace its future is dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Reports progress: a new status message, status unchanged (the
    /// host's `TaskHost::update_status` to `working`), as often as the
    /// tool likes. Reports are coalesced (the `progress` module): at most
    /// one write per `ServiceConfig::progress_interval` and one in flight,
    /// the latest message winning, so this returns at once and a flood
    /// costs the store a write per interval. A write the store refuses is
    /// logged, not returned; a task that ended is seen as its cancellation.
    #[doc(alias = "update_status")]
    pub async fn progress(&self, message: &str) -> Result<(), RpcError> {
        if self.progress.offer(message) {
            let worker = self.clone();
            tokio::spawn(async move {
                let interval = worker.shared.config.progress_interval;
                let relay = worker.progress.clone();
                relay
                    .run_writer(interval, |message| worker.write_progress(message))
                    .await;
            });
        }
        Ok(())
    }

    /// Writes one progress message: `false` when the task is past it
    /// (ended, gone, or another worker holds it).
    async fn write_progress(&self, message: String) -> bool {
        let host = &self.shared.host;
        let written = host
            .update_status(
                &self.owner,
                &self.task_id,
                TaskStatus::Working,
                Some(&message),
            )
            .await;
        match written {
            Ok(_) => true,
            Err(e) => self.runs_on_after(&e, "a progress message was not stored"),
        }
    }

    /// Whether the worker runs on after a write of its that failed with
    /// `error`: not when the task is gone (expired or deleted) or another
    /// worker holds it (ours lapsed), which cancels it; yes after a passing
    /// store failure, logged as `what`.
    fn runs_on_after(&self, error: &TaskError, what: &str) -> bool {
        match error {
            TaskError::NotFound(_) | TaskError::InvalidTransition(_) => {
                self.cancel.cancel();
                false
            }
            e => {
                tracing::warn!(task = %self.task_id, error = %e, "{what}");
                true
            }
        }
    }

    /// Asks the client for input and waits until every request is answered
    /// (or the task is cancelled: [`ToolExit::Cancelled`]); returns the
    /// answers in request order (the host's `TaskHost::request_input`,
    /// then `take_answers` as they arrive).
    #[doc(alias = "request_input")]
    pub async fn ask(&self, requests: &[InputRequest]) -> Result<Vec<InputResponse>, ToolExit> {
        let host = &self.shared.host;
        host.request_input(&self.owner, &self.task_id, requests)
            .await
            .map_err(RpcError::from)?;
        let mut answers: BTreeMap<String, InputResponse> = BTreeMap::new();
        let waiter = self.shared.wakeups.subscribe(&self.task_id);
        let poll = self.shared.config.poll_interval;
        loop {
            let woken = waiter.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let taken = host.take_answers(&self.owner, &self.task_id).await;
            for answer in taken.map_err(RpcError::from)? {
                answers.insert(answer.key.clone(), answer);
            }
            if requests.iter().all(|r| answers.contains_key(&r.key)) {
                return Ok(requests
                    .iter()
                    .filter_map(|r| answers.remove(&r.key))
                    .collect());
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(ToolExit::Cancelled),
                _ = &mut woken => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Renews the lease; cancels the token when cancellation was asked for
    /// or the task ended elsewhere. `false` once the task is terminal.
    async fn heartbeat(&self) -> bool {
        let host = &self.shared.host;
        match host
            .renew_lease(&self.owner, &self.task_id, &self.grant)
            .await
        {
            Ok(record) => self.observe(&record),
            // After a passing store failure the lease still holds: the
            // next renewal tries again.
            Err(e) => self.runs_on_after(&e, "lease renewal failed"),
        }
    }

    /// Reads the task (no write) and reacts as to a renewal's answer.
    async fn look(&self) {
        match self.shared.host.get(&self.owner, &self.task_id).await {
            Ok(record) => {
                self.observe(&record);
            }
            Err(TaskError::NotFound(_)) => self.cancel.cancel(),
            Err(_) => {}
        }
    }

    fn observe(&self, record: &TaskRecord) -> bool {
        if record.cancel_requested || record.task.status.is_terminal() {
            self.cancel.cancel();
        }
        !record.task.status.is_terminal()
    }
}

/// Runs a tool as a task to its one outcome: the lease is renewed at a
/// third of its duration (and the task read at once when this replica
/// wakes it); once cancellation is seen the tool has the grace period to
/// return, then its future is dropped; the end is one atomic write.
/// `waiter` was subscribed to the task before its id left this replica,
/// so the task as created is all there is to know until a wake or a look.
pub(crate) async fn run_worker<F, Fut>(worker: Worker, waiter: Subscription<Arc<Wakeups>>, run: F)
where
    F: FnOnce(Worker) -> Fut,
    Fut: Future<Output = ToolOutcome>,
{
    let host = worker.shared.host.clone();
    // Boxed, so that it can be dropped before the outcome is written.
    let mut tool = Box::pin(run(worker.clone()));
    let config = &worker.shared.config;
    let renew_every = worker.grant.duration / 3;
    // Cancellation asked on another replica is seen within `look_every`
    // (on this replica, at once: the request wakes the worker).
    let look_every = config.cancel_check.min(renew_every);
    let mut next_renewal = Instant::now() + renew_every;
    // Set once cancellation is seen: the tool's last moment to return.
    let mut grace_ends: Option<Instant> = None;
    // Read the task after every wake and every `look_every`, and first if
    // a wake came before this loop's first wait was enabled.
    let mut changed = false;
    let mut first_wait = true;
    let outcome = loop {
        let woken = waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if std::mem::take(&mut first_wait) {
            changed = waiter.woken_since_subscribed();
        }
        if Instant::now() >= next_renewal {
            next_renewal = Instant::now() + renew_every;
            worker.heartbeat().await;
        } else if std::mem::take(&mut changed) {
            worker.look().await;
        }
        let wake_at = next_renewal.min(Instant::now() + look_every);
        let far = Instant::now() + renew_every;
        tokio::select! {
            biased;
            _ = worker.shared.abandon.cancelled() => {
                break Err(ToolExit::Failed(shut_down_error()));
            }
            _ = worker.cancel.cancelled(), if grace_ends.is_none() => {
                grace_ends = Some(Instant::now() + config.cancel_grace);
            }
            _ = tokio::time::sleep_until(grace_ends.unwrap_or(far)), if grace_ends.is_some() => {
                break Err(ToolExit::Cancelled);
            }
            outcome = &mut tool => break outcome,
            _ = &mut woken => changed = true,
            _ = tokio::time::sleep_until(wake_at) => changed = true,
        }
    };
    // Past the grace (or done): the tool's future goes now, and its
    // progress with it (the outcome is the last write).
    drop(tool);
    worker.progress.close().await;
    let (owner, id) = (&worker.owner, &worker.task_id);
    let (ended, status) = match outcome {
        Ok(result) => (
            host.finish(owner, id, &Outcome::ToolResult(result)).await,
            "completed",
        ),
        Err(ToolExit::Failed(error)) => (
            host.finish(owner, id, &Outcome::RpcError(error.to_value()))
                .await,
            "failed",
        ),
        Err(ToolExit::Cancelled) => (host.cancel(owner, id).await, "cancelled"),
    };
    // An outcome the store refuses by policy (a result over the size
    // limit, say) fails the task now, saying why, rather than leaving it
    // `working` until its lease lapses and the reaper calls it lost.
    let (ended, status) = match ended {
        Err(TaskError::InvalidParams(why)) if status != "cancelled" => {
            let error =
                RpcError::internal(format!("the tool's outcome could not be stored: {why}"));
            (
                host.finish(owner, id, &Outcome::RpcError(error.to_value()))
                    .await,
                "failed",
            )
        }
        ended => (ended, status),
    };
    match ended {
        Ok(_) => count_finished(status),
        // Already terminal (cancelled at once, or failed by a reaper):
        // terminal stays terminal, counted by whoever ended it.
        Err(TaskError::InvalidTransition(_)) | Err(TaskError::NotFound(_)) => {}
        Err(e) => tracing::warn!(task = %id, error = %e, "the task's outcome could not be stored"),
    }
    worker.shared.wakeups.wake(id);
}
