//! [`TaskService`]: the task methods of both revisions over one store.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::{
    ClaimedTask, InputRequest, InputResponse, LeaseGrant, Outcome, RetryPolicy, TaskDetail,
    TaskHost, TaskRecord, TaskRequest, TaskStatus,
};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capacity::{Capacity, Slot};
use crate::error::RpcError;
use crate::params;
use crate::revision::Revision;
use crate::shared::{count_finished, ServiceConfig, Shared};
use crate::trace;
use crate::wire;
use crate::worker::{run_worker, Run, ToolOutcome, Worker};

/// Who sends a request, and in which revision: built by the transports
/// from a verified identity, or by an embedder that has its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated identity: every task call is scoped to it.
    pub(crate) owner: String,
    /// The revision the request speaks.
    pub(crate) revision: Revision,
    /// Whether the request declared the `io.modelcontextprotocol/tasks`
    /// extension capability (2026-07-28).
    pub(crate) declares_tasks_extension: bool,
}

impl Caller {
    /// `owner` (a verified identity: a token's issuer and subject, a
    /// configured identity for stdio) speaking `revision`, without the
    /// tasks extension declared.
    pub fn new(owner: impl Into<String>, revision: Revision) -> Self {
        Caller {
            owner: owner.into(),
            revision,
            declares_tasks_extension: false,
        }
    }

    /// The same caller, declaring (or not) the
    /// `io.modelcontextprotocol/tasks` extension capability (2026-07-28).
    pub fn with_tasks_extension(mut self, declared: bool) -> Self {
        self.declares_tasks_extension = declared;
        self
    }

    /// The identity every task call is scoped to.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The revision the request speaks.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Whether the request declared the tasks extension capability.
    pub fn declares_tasks_extension(&self) -> bool {
        self.declares_tasks_extension
    }
}

/// How [`TaskService::start_task`] starts a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskStart {
    /// Its ttl (ms); `None` takes the store's default.
    pub ttl_ms: Option<u64>,
    /// Whether, and how, it runs again when its worker is lost or hands
    /// it off (`None`: at most once, where it started).
    pub retry: Option<RetryPolicy>,
    /// Whether it may wait in the queue when this replica has no free
    /// worker slot. Only for a run that is the tool's call as stored (the
    /// replica that claims it runs the tool of that name with the stored
    /// arguments); a run with more to it starts here regardless.
    pub may_wait: bool,
}

impl TaskStart {
    /// A task with the default ttl, run at most once, started here.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same, with a ttl of `ttl_ms` (`None`: the store's default).
    pub fn with_ttl_ms(mut self, ttl_ms: Option<u64>) -> Self {
        self.ttl_ms = ttl_ms;
        self
    }

    /// The same, run again under `retry` when its worker is lost.
    pub fn with_retry(mut self, retry: Option<RetryPolicy>) -> Self {
        self.retry = retry;
        self
    }

    /// The same, waiting in the queue (or not) when this replica is full.
    pub fn with_may_wait(mut self, may_wait: bool) -> Self {
        self.may_wait = may_wait;
        self
    }
}

/// A task this replica claimed, with what its worker runs under.
pub(crate) struct Claimed {
    pub(crate) task: ClaimedTask,
    pub(crate) grant: LeaseGrant,
    pub(crate) slot: Slot,
}

/// The task methods of MCP over a [`TaskHost`]: cheap to clone, shared by
/// every connection of a replica.
#[derive(Clone)]
pub struct TaskService {
    shared: Arc<Shared>,
}

/// What a [`TaskService::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks whose tools finished within the grace period (or were
    /// handed off).
    pub finished: usize,
    /// Retryable tasks handed off to another replica.
    pub handed_off: usize,
    /// Tasks still running when it ended, failed with "the replica shut down".
    pub abandoned: usize,
}

/// Tasks claimed in one store call, at most.
const CLAIM_BATCH: usize = 16;

/// How long abandoned workers get to store their outcome.
const ABANDON_WRITE_LIMIT: Duration = Duration::from_secs(10);

impl TaskService {
    /// A service over `host`.
    pub fn new(host: TaskHost, config: ServiceConfig) -> Self {
        let max_running_tasks = config.max_running_tasks;
        TaskService {
            shared: Arc::new(Shared {
                host,
                config,
                wakeups: Arc::default(),
                workers: AtomicU64::new(0),
                incarnation: crate::shared::incarnation(),
                running: TaskTracker::new(),
                stopping: CancellationToken::new(),
                abandon: CancellationToken::new(),
                handed_off: AtomicU64::new(0),
                capacity: Capacity::new(max_running_tasks),
            }),
        }
    }

    /// Stops this replica's task work, for a clean exit: no new task
    /// starts (a call that would make one gets -32603, to be sent to
    /// another replica) and none is claimed; the tools of retryable tasks
    /// are told ([`Worker::stopping`]) and get the `handoff_grace` to
    /// checkpoint, then their tasks are handed off, for another replica to
    /// claim at once; other tools get `grace` to finish, and the tasks of
    /// those still running then end `failed` ("the replica shut down")
    /// instead of staying `working` until their leases lapse. Tasks of
    /// other replicas are untouched. Idempotent.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let inner = &self.shared;
        let handed_before = inner.handed_off.load(Ordering::Relaxed);
        let handed = || {
            usize::try_from(inner.handed_off.load(Ordering::Relaxed) - handed_before)
                .unwrap_or(usize::MAX)
        };
        inner.stopping.cancel();
        inner.running.close();
        let running = inner.running.len();
        if tokio::time::timeout(grace, inner.running.wait())
            .await
            .is_ok()
        {
            return ShutdownReport {
                finished: running,
                handed_off: handed(),
                abandoned: 0,
            };
        }
        let abandoned = inner.running.len();
        inner.abandon.cancel();
        if tokio::time::timeout(ABANDON_WRITE_LIMIT, inner.running.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still = inner.running.len(),
                "abandoned tasks could not all store their outcome; the reaper will fail them"
            );
        }
        // A claim in flight when the shutdown began may add a worker
        // after `running` was counted (it hands its task off at once).
        ShutdownReport {
            finished: running.saturating_sub(abandoned),
            handed_off: handed(),
            abandoned,
        }
    }

    /// Resolves once [`Self::shutdown`] began.
    pub(crate) async fn stopped(&self) {
        self.shared.stopping.cancelled().await;
    }

    /// Tasks running on this replica's workers now.
    pub fn running_tasks(&self) -> usize {
        self.shared.running.len()
    }

    /// The store.
    pub fn host(&self) -> &TaskHost {
        &self.shared.host
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// How many tasks somebody on this replica waits on right now: open
    /// `tasks/result` calls, running workers, workers waiting for input.
    /// Drops back as they end, whatever the ids were.
    pub fn waiting_tasks(&self) -> usize {
        self.shared.wakeups.len()
    }

    /// Answers a task method (`tasks/get`, `tasks/result`, `tasks/list`,
    /// `tasks/cancel`, `tasks/update`); `None` for any other method.
    pub async fn handle(
        &self,
        caller: &Caller,
        method: &str,
        params: &Value,
    ) -> Option<Result<Value, RpcError>> {
        trace::record_owner(&caller.owner);
        let answer = match (caller.revision, method) {
            (_, "tasks/get") => self.get(caller, params).await,
            (Revision::V2025_11_25, "tasks/result") => self.result(caller, params).await,
            (Revision::V2025_11_25, "tasks/list") => self.list(caller, params).await,
            (Revision::V2025_11_25, "tasks/cancel") => self.cancel_now(caller, params).await,
            (Revision::V2026_07_28, "tasks/cancel") => self.request_cancel(caller, params).await,
            (Revision::V2026_07_28, "tasks/update") => self.update(caller, params).await,
            (_, "tasks/result" | "tasks/list" | "tasks/update") => {
                Err(RpcError::method_not_found(method))
            }
            _ => return None,
        };
        Some(answer)
    }

    /// Starts a tool call as a task: creates it (durable when this returns)
    /// and returns the `CreateTaskResult` of the caller's revision. With a
    /// free worker slot (`ServiceConfig::max_running_tasks`) the task is
    /// leased to a worker of this replica that runs `run`; without one, a
    /// task that [`may wait`](TaskStart::may_wait) waits in the queue
    /// instead (`working`, "queued"), for any replica with room to claim
    /// it and run the tool from its stored call, and one that may not runs
    /// here anyway. With a retry policy, the task runs again (on any
    /// replica that claims it) when its worker is lost or hands it off.
    pub async fn start_task<F, Fut>(
        &self,
        caller: &Caller,
        tool: &str,
        arguments: Map<String, Value>,
        start: TaskStart,
        run: F,
    ) -> Result<Value, RpcError>
    where
        F: FnOnce(Worker) -> Fut + Send + 'static,
        Fut: Future<Output = ToolOutcome> + Send + 'static,
    {
        if self.shared.stopping.is_cancelled() {
            return Err(RpcError::internal(
                "this replica is shutting down and starts no task; call again",
            ));
        }
        trace::record_owner(&caller.owner);
        let mut request = TaskRequest::tool_call(tool, arguments);
        request.trace_parent = trace::current_trace_parent();
        request.retry = start.retry;
        let ttl = start.ttl_ms.map(Duration::from_millis);
        let host = &self.shared.host;
        let slot = self.shared.capacity.take(1).split_one();
        // No room: a call that may wait is queued, one that may not runs
        // here anyway.
        let grant = (slot.is_some() || !start.may_wait).then(|| self.shared.next_grant());
        let created = match &grant {
            Some(grant) => {
                host.create_task(&caller.owner, &request, ttl, Some(grant))
                    .await?
            }
            None => host.create_queued(&caller.owner, &request, ttl).await?,
        };
        metrics::counter!("pmcp_tasks_tasks_created_total").increment(1);
        trace::record_task(&created.task.task_id);
        let Some(grant) = grant else {
            metrics::counter!("pmcp_tasks_tasks_queued_total").increment(1);
            return Ok(create_result(caller.revision, &created));
        };
        // Subscribed before the task's id is given out: no cancel or answer
        // can come before this, so the worker needs no first read.
        let waiter = self.shared.wakeups.subscribe_owned(&created.task.task_id);
        let first = Run {
            attempt: created.attempt,
            retryable: start.retry.is_some(),
            checkpoint: None,
        };
        let worker = Worker::new(
            self.shared.clone(),
            &caller.owner,
            &created.task.task_id,
            grant,
            first,
        );
        let span = trace::worker_span(&created.task.task_id, request.trace_parent.as_deref());
        self.shared.running.spawn(tracing::Instrument::instrument(
            run_worker(worker, waiter, slot, run),
            span,
        ));
        Ok(create_result(caller.revision, &created))
    }

    /// Claims tasks waiting for a worker, as many as this replica has
    /// free worker slots for (at most `CLAIM_BATCH`), none while it stops;
    /// each with the grant it was claimed under and its slot.
    pub(crate) async fn claim(&self) -> Result<Vec<Claimed>, RpcError> {
        let shared = &self.shared;
        if shared.stopping.is_cancelled() {
            return Ok(Vec::new());
        }
        let mut slots = shared.capacity.take(CLAIM_BATCH);
        if slots.count() == 0 {
            return Ok(Vec::new());
        }
        let grant = shared.next_grant();
        let limit = u32::try_from(slots.count()).unwrap_or(u32::MAX);
        let claimed = shared.host.claim(&grant, limit).await?;
        Ok(claimed
            .into_iter()
            .zip(std::iter::from_fn(|| slots.split_one()))
            .map(|(task, slot)| {
                metrics::histogram!("pmcp_tasks_queue_wait_seconds")
                    .record(task.waited.as_secs_f64());
                Claimed {
                    task,
                    grant: grant.clone(),
                    slot,
                }
            })
            .collect())
    }

    /// Runs a task this replica claimed: `run` with a [`Worker`] that
    /// knows its attempt and the last checkpoint.
    pub(crate) fn resume<F, Fut>(&self, claimed: Claimed, run: F)
    where
        F: FnOnce(Worker) -> Fut + Send + 'static,
        Fut: Future<Output = ToolOutcome> + Send + 'static,
    {
        let Claimed { task, grant, slot } = claimed;
        let (owner, detail) = (&task.owner, &task.detail);
        let record = &detail.record;
        let id = &record.task.task_id;
        let waiter = self.shared.wakeups.subscribe_owned(id);
        let again = Run {
            attempt: record.attempt,
            retryable: record.retry.is_some(),
            checkpoint: detail.checkpoint.clone(),
        };
        let worker = Worker::new(self.shared.clone(), owner, id, grant, again);
        metrics::counter!("pmcp_tasks_attempts_total", "start" => "claimed").increment(1);
        let span = trace::worker_span(id, record.trace_parent.as_deref());
        self.shared.running.spawn(tracing::Instrument::instrument(
            run_worker(worker, waiter, Some(slot), run),
            span,
        ));
        // A task claimed here may have been waited on here.
        self.shared.wakeups.wake(id);
    }

    /// Resolves once one of this replica's worker slots is freed after
    /// it is enabled.
    pub(crate) fn room_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.capacity.freed()
    }

    fn require_extension(caller: &Caller) -> Result<(), RpcError> {
        if caller.revision == Revision::V2026_07_28 && !caller.declares_tasks_extension {
            return Err(RpcError::tasks_extension_required());
        }
        Ok(())
    }

    async fn get(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        Self::require_extension(caller)?;
        let id = task_id(params)?;
        let detail = self.inspect(caller, id).await?;
        trace::link_to_creation(detail.record.trace_parent.as_deref());
        Ok(match caller.revision {
            Revision::V2025_11_25 => wire::task_2025(&detail.record.task),
            Revision::V2026_07_28 => wire::detailed_task_2026(&detail),
        })
    }

    async fn inspect(&self, caller: &Caller, id: &str) -> Result<TaskDetail, RpcError> {
        let view = caller.revision.status_view();
        Ok(self.shared.host.inspect(&caller.owner, id, view).await?)
    }

    /// 2025-11-25 `tasks/result`: blocks until the task is terminal (woken
    /// by a write on this replica, else polling the store), then returns
    /// exactly what the call would have: its result with the related task
    /// in `_meta`, or its JSON-RPC error.
    async fn result(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        self.result_asking(caller, params, |_| {}).await
    }

    /// 2025-11-25 `tasks/result` on a transport that can send the client
    /// requests while it waits: each input request the task waits on is
    /// handed to `ask` once (the transport sends it as a server-to-client
    /// request, whose response comes back through [`Self::answer_core_input`]).
    pub(crate) async fn result_asking(
        &self,
        caller: &Caller,
        params: &Value,
        mut ask: impl FnMut(&InputRequest) + Send,
    ) -> Result<Value, RpcError> {
        let id = task_id(params)?;
        let mut asked: Vec<String> = Vec::new();
        let deadline = Instant::now() + self.shared.config.result_wait_limit;
        let waiter = self.shared.wakeups.subscribe(id);
        let mut linked = false;
        loop {
            let woken = waiter.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let detail = self.inspect(caller, id).await?;
            if !std::mem::replace(&mut linked, true) {
                trace::link_to_creation(detail.record.trace_parent.as_deref());
            }
            if detail.record.task.status.is_terminal() {
                return terminal_answer(&detail);
            }
            for request in &detail.input_requests {
                if !asked.contains(&request.key) {
                    ask(request);
                    asked.push(request.key.clone());
                }
            }
            let poll = self.shared.config.poll_interval;
            let wait_until = (Instant::now() + poll).min(deadline);
            if Instant::now() >= deadline {
                return Err(RpcError::internal(format!(
                    "task {id} is still {}; call tasks/result again",
                    detail.record.task.status
                )));
            }
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(wait_until) => {}
            }
        }
    }

    async fn list(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        let cursor = params::optional_str(params, "cursor")?;
        let page = self
            .shared
            .host
            .list_in(&caller.owner, cursor, None, caller.revision.status_view())
            .await?;
        Ok(wire::list_2025(&page))
    }

    /// 2025-11-25 `tasks/cancel`: the task is `cancelled` before the
    /// answer; a terminal task is -32602.
    async fn cancel_now(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        let id = task_id(params)?;
        let record = self.shared.host.cancel(&caller.owner, id).await?;
        count_finished("cancelled");
        self.shared.wakeups.wake(id);
        let task = self
            .inspect(caller, id)
            .await
            .map_or(record.task, |d| d.record.task);
        Ok(wire::task_2025(&task))
    }

    /// 2026-07-28 `tasks/cancel`: marks the task for its worker and
    /// acknowledges; idempotent, also on terminal tasks.
    async fn request_cancel(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        Self::require_extension(caller)?;
        let id = task_id(params)?;
        self.shared.host.request_cancel(&caller.owner, id).await?;
        metrics::counter!("pmcp_tasks_cancel_requests_total").increment(1);
        self.shared.wakeups.wake(id);
        Ok(wire::acknowledgement())
    }

    /// 2025-11-25: the client's response to the input request `key` of
    /// task `id` (sent to it by [`Self::result_asking`]).
    pub(crate) async fn answer_core_input(
        &self,
        caller: &Caller,
        id: &str,
        key: &str,
        response: Value,
    ) -> Result<(), RpcError> {
        let responses = [InputResponse::new(key, response)];
        self.shared
            .host
            .answer_input(&caller.owner, id, &responses)
            .await?;
        self.shared.wakeups.wake(id);
        Ok(())
    }

    /// 2026-07-28 `tasks/update`: records the responses to outstanding
    /// input requests (others are ignored) and acknowledges.
    async fn update(&self, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
        Self::require_extension(caller)?;
        let id = task_id(params)?;
        let responses = params::required_object(params, "inputResponses")?;
        let responses: Vec<InputResponse> = responses
            .iter()
            .map(|(key, response)| InputResponse::new(key.clone(), response.clone()))
            .collect();
        self.shared
            .host
            .answer_input(&caller.owner, id, &responses)
            .await?;
        self.shared.wakeups.wake(id);
        Ok(wire::acknowledgement())
    }
}

/// The `CreateTaskResult` of `revision` for a task just created.
fn create_result(revision: Revision, created: &TaskRecord) -> Value {
    match revision {
        Revision::V2025_11_25 => wire::create_result_2025(&created.task),
        Revision::V2026_07_28 => wire::create_result_2026(&created.task),
    }
}

/// The `taskId` of a task method's params.
fn task_id(params: &Value) -> Result<&str, RpcError> {
    params::required_str(params, "taskId")
}

/// What `tasks/result` returns for a terminal task.
fn terminal_answer(detail: &TaskDetail) -> Result<Value, RpcError> {
    let id = &detail.record.task.task_id;
    match (&detail.record.task.status, &detail.outcome) {
        (_, Some(Outcome::ToolResult(result))) => Ok(wire::related_result(result, id)),
        (_, Some(Outcome::RpcError(error))) => Err(serde_json::from_value(error.clone())
            .unwrap_or_else(|_| RpcError::internal(format!("task {id} failed")))),
        (TaskStatus::Cancelled, None) => Err(RpcError {
            data: Some(serde_json::json!({"taskId": id})),
            ..RpcError::internal(format!("task {id} was cancelled"))
        }),
        (status, None) => Err(RpcError::internal(format!(
            "task {id} is {status} without a result"
        ))),
    }
}
