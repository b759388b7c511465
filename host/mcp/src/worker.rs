//! [`Worker`]: what a tool running as a task holds, and the loop that runs
//! it: lease renewal, cancellation, the hand-off of a retryable task when
//! the replica stops, and the one outcome at the end.
//!
//! Every write a worker makes is fenced by its lease
//! ([`LeasedTask`]): once the lease passed on (its replica was cut off
//! and the task went to another), the store refuses them and the worker
//! sees its cancellation, so a run that was taken over writes no outcome,
//! progress, question or checkpoint.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use pmcp_tasks_host::{
    InputRequest, InputResponse, LeaseGrant, LeasedTask, Outcome, TaskError, TaskRecord, TaskStatus,
};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::capacity::Slot;
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
    /// It stopped because its replica is stopping
    /// ([`Worker::stopping`]), having stored a checkpoint if it has one:
    /// a retryable task is handed off and runs again on another replica;
    /// any other ends `failed` ("the replica shut down").
    #[error("the tool stopped because its replica is stopping")]
    Interrupted,
}

impl ToolExit {
    /// The JSON-RPC error of a call that did not run as a task.
    pub fn into_rpc_error(self) -> RpcError {
        match self {
            ToolExit::Failed(error) => error,
            ToolExit::Cancelled => RpcError::internal("the call was cancelled"),
            ToolExit::Interrupted => crate::shared::shut_down_error(),
        }
    }
}

/// A tool call running as a task, on this replica. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    leased: LeasedTask,
    grant: LeaseGrant,
    run: Arc<Run>,
    /// Set when a write found the lease passed on (or the task gone).
    lost: Arc<AtomicBool>,
    cancel: CancellationToken,
    progress: Arc<ProgressRelay>,
}

/// Which run of its task a worker is, and what the last one left.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Runs started, this one included.
    pub(crate) attempt: u32,
    /// Whether the task may run again (it has a retry policy).
    pub(crate) retryable: bool,
    /// The checkpoint the previous run stored.
    pub(crate) checkpoint: Option<Value>,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        owner: &str,
        task_id: &str,
        grant: LeaseGrant,
        run: Run,
    ) -> Self {
        let leased = shared.host.leased(owner, task_id, &grant.holder);
        Worker {
            shared,
            leased,
            grant,
            run: Arc::new(run),
            lost: Arc::default(),
            cancel: CancellationToken::new(),
            progress: Arc::default(),
        }
    }

    /// The task's id.
    pub fn task_id(&self) -> &str {
        self.leased.task_id()
    }

    /// The name of the replica this run is on (`ServiceConfig::replica`).
    pub fn replica(&self) -> &str {
        &self.shared.config.replica
    }

    /// Which run of the task this is: 1 for the first, more after a
    /// hand-off or a lost worker (of a task whose tool is retryable).
    pub fn attempt(&self) -> u32 {
        self.run.attempt
    }

    /// Whether the task may run again after this run (its tool has a
    /// retry policy): only then does a checkpoint serve.
    pub fn may_run_again(&self) -> bool {
        self.run.retryable
    }

    /// The checkpoint an earlier run stored ([`Self::checkpoint`]), to
    /// resume from; `None` on a first run or when none was stored.
    pub fn checkpoint_value(&self) -> Option<&Value> {
        self.run.checkpoint.as_ref()
    }

    /// Stores `value` (JSON, at most 64 KiB by default) as the task's
    /// checkpoint, durable when this returns: a later run of a retryable
    /// task (after a hand-off or a lost replica) gets it from
    /// [`Self::checkpoint_value`] and resumes there, instead of starting
    /// over. Store it as often as losing the work since costs.
    pub async fn checkpoint(&self, value: &Value) -> Result<(), RpcError> {
        match self.leased.checkpoint(value).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.runs_on_after(&e, "a checkpoint was not stored");
                Err(e.into())
            }
        }
    }

    /// Cancelled when this replica starts shutting down (SIGTERM): a
    /// signal distinct from [`Self::cancellation`]. A tool of a retryable
    /// task has the service's `handoff_grace` to store a checkpoint and
    /// return [`ToolExit::Interrupted`] (or its outcome, if it has one);
    /// then its future is dropped and the task is handed off to another
    /// replica. A tool that is not retryable has the shutdown grace to
    /// finish, as before.
    pub fn stopping(&self) -> &CancellationToken {
        &self.shared.stopping
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
        let written = self
            .leased
            .update_status(TaskStatus::Working, Some(&message))
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
                self.lost.store(true, Ordering::SeqCst);
                self.cancel.cancel();
                false
            }
            e => {
                tracing::warn!(task = %self.task_id(), error = %e, "{what}");
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
        if let Err(e) = self.leased.request_input(requests).await {
            self.runs_on_after(&e, "input could not be asked");
            return Err(RpcError::from(e).into());
        }
        let mut answers: BTreeMap<String, InputResponse> = BTreeMap::new();
        let waiter = self.shared.wakeups.subscribe(self.task_id());
        let poll = self.shared.config.poll_interval;
        loop {
            let woken = waiter.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let taken = self.leased.take_answers().await;
            if let Err(e) = &taken {
                self.runs_on_after(e, "answers could not be taken");
            }
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
        match self.leased.renew(self.grant.duration).await {
            Ok(record) => self.observe(&record),
            // After a passing store failure the lease still holds: the
            // next renewal tries again.
            Err(e) => self.runs_on_after(&e, "lease renewal failed"),
        }
    }

    /// Reads the task (no write) and reacts as to a renewal's answer.
    async fn look(&self) {
        let leased = &self.leased;
        match self.shared.host.get(leased.owner(), leased.task_id()).await {
            Ok(record) => {
                self.observe(&record);
            }
            Err(TaskError::NotFound(_)) => self.cancel.cancel(),
            Err(_) => {}
        }
    }

    fn observe(&self, record: &TaskRecord) -> bool {
        let terminal = record.task.status.is_terminal();
        let ours = record
            .lease
            .as_ref()
            .is_some_and(|l| l.holder == self.grant.holder);
        if !terminal && !ours {
            // Handed to the queue or to another worker: not ours to end.
            self.lost.store(true, Ordering::SeqCst);
        }
        if record.cancel_requested || terminal || !ours {
            self.cancel.cancel();
        }
        !terminal
    }
}

/// Runs a tool as a task to its one outcome: the lease is renewed at a
/// third of its duration (and the task read at once when this replica
/// wakes it); once cancellation is seen the tool has the grace period to
/// return, then its future is dropped; the end is one atomic write. When
/// the replica stops, a retryable task's tool has the hand-off grace to
/// checkpoint and return, then the task is handed off.
/// `waiter` was subscribed to the task before its id left this replica,
/// so the task as created is all there is to know until a wake or a look.
/// The worker's `slot` is freed when it ends (after its last write).
pub(crate) async fn run_worker<F, Fut>(
    worker: Worker,
    waiter: Subscription<Arc<Wakeups>>,
    slot: Option<Slot>,
    run: F,
) where
    F: FnOnce(Worker) -> Fut,
    Fut: Future<Output = ToolOutcome>,
{
    // Boxed, so that it can be dropped before the outcome is written.
    let mut tool = Box::pin(run(worker.clone()));
    let config = &worker.shared.config;
    let retryable = worker.run.retryable;
    let renew_every = worker.grant.duration / 3;
    // Cancellation asked on another replica is seen within `look_every`
    // (on this replica, at once: the request wakes the worker).
    let look_every = config.cancel_check.min(renew_every);
    let mut next_renewal = Instant::now() + renew_every;
    // Set once cancellation is seen: the tool's last moment to return.
    let mut grace_ends: Option<Instant> = None;
    // Set once the replica stops, for a retryable task: the moment it is
    // handed off.
    let mut handoff_at: Option<Instant> = None;
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
                break Err(ToolExit::Interrupted);
            }
            _ = worker.cancel.cancelled(), if grace_ends.is_none() => {
                grace_ends = Some(Instant::now() + config.cancel_grace);
            }
            _ = tokio::time::sleep_until(grace_ends.unwrap_or(far)), if grace_ends.is_some() => {
                break Err(ToolExit::Cancelled);
            }
            _ = worker.shared.stopping.cancelled(), if retryable && handoff_at.is_none() => {
                handoff_at = Some(Instant::now() + config.handoff_grace);
            }
            _ = tokio::time::sleep_until(handoff_at.unwrap_or(far)), if handoff_at.is_some() => {
                break Err(ToolExit::Interrupted);
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
    let id = worker.task_id().to_owned();
    if worker.lost.load(Ordering::SeqCst) {
        // The lease passed on: the task is another worker's (or ended
        // elsewhere), and this run writes nothing more.
        metrics::counter!("pmcp_tasks_attempts_superseded_total").increment(1);
    } else {
        end_run(&worker, outcome).await;
    }
    worker.shared.wakeups.wake(&id);
    drop(slot);
}

/// Stores how a run ended: the task's outcome, or its hand-off.
async fn end_run(worker: &Worker, outcome: ToolOutcome) {
    let (leased, host) = (&worker.leased, &worker.shared.host);
    let (ended, status) = match outcome {
        Ok(result) => (
            leased.finish(&Outcome::ToolResult(result)).await,
            "completed",
        ),
        Err(ToolExit::Failed(error)) => (
            leased.finish(&Outcome::RpcError(error.to_value())).await,
            "failed",
        ),
        Err(ToolExit::Cancelled) => (
            host.cancel(leased.owner(), leased.task_id()).await,
            "cancelled",
        ),
        Err(ToolExit::Interrupted) if worker.run.retryable => match leased.hand_off().await {
            Ok(_) => {
                metrics::counter!("pmcp_tasks_handoffs_total").increment(1);
                worker.shared.handed_off.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => (Err(e), "handed off"),
        },
        Err(ToolExit::Interrupted) => (
            leased
                .finish(&Outcome::RpcError(shut_down_error().to_value()))
                .await,
            "failed",
        ),
    };
    // An outcome the store refuses by policy (a result over the size
    // limit, say) fails the task now, saying why, rather than leaving it
    // `working` until its lease lapses and the reaper calls it lost.
    let (ended, status) = match ended {
        Err(TaskError::InvalidParams(why)) if status != "cancelled" => {
            let error =
                RpcError::internal(format!("the tool's outcome could not be stored: {why}"));
            (
                leased.finish(&Outcome::RpcError(error.to_value())).await,
                "failed",
            )
        }
        ended => (ended, status),
    };
    match ended {
        Ok(_) => count_finished(status),
        // Already terminal (cancelled at once, or failed by a reaper), or
        // the lease passed on: terminal stays terminal, counted by
        // whoever ended it.
        Err(TaskError::InvalidTransition(_)) | Err(TaskError::NotFound(_)) => {}
        Err(e) => {
            tracing::warn!(task = %leased.task_id(), error = %e, "the task's end ({status}) could not be stored")
        }
    }
}
