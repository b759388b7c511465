//! [`TaskHost`]: the typed, async task-store API users embed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::backend::{InMemoryBackend, KvBackend};
use crate::bindings::{json_text, ttl_millis, GuestConfig};
use crate::clock::{Clock, SystemClock};
use crate::component::ComponentSource;
use crate::error::{BuildError, TaskError};
use crate::sandbox::{CallCost, InstanceCounts, Sandbox};
use crate::task::{
    InputRequest, InputResponse, LeaseGrant, Outcome, StatusView, TaskDetail, TaskPage, TaskRecord,
    TaskRequest, TaskStatus,
};
use crate::{ConflictBackoff, EngineTuning, InstanceStrategy, SandboxLimits, StoreConfig};

/// A task store running in the wasm sandbox over a storage backend.
///
/// Cheap to clone; clones share the engine, the backend and the warm
/// instances. Every call runs alone on an instance of the component (see
/// [`InstanceStrategy`]), so concurrent calls run in parallel and a trap in
/// one call affects no other.
#[derive(Clone)]
pub struct TaskHost {
    inner: Arc<Inner>,
}

struct Inner {
    sandbox: Sandbox,
    backend: Arc<dyn KvBackend>,
    config: GuestConfig,
}

/// Builds a [`TaskHost`]; every setting has a default.
#[derive(Default)]
pub struct TaskHostBuilder {
    backend: Option<Arc<dyn KvBackend>>,
    config: StoreConfig,
    limits: SandboxLimits,
    clock: Option<Arc<dyn Clock>>,
    component: ComponentSource,
    instances: InstanceStrategy,
    backoff: ConflictBackoff,
    engine: EngineTuning,
}

impl TaskHostBuilder {
    /// Storage backend (default: a new [`InMemoryBackend`]).
    pub fn backend(mut self, backend: Arc<dyn KvBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Task-store policy.
    pub fn config(mut self, config: StoreConfig) -> Self {
        self.config = config;
        self
    }

    /// Memory and time limits of the sandbox.
    pub fn limits(mut self, limits: SandboxLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Fresh or reused instances (default: [`InstanceStrategy::default`]).
    pub fn instances(mut self, strategy: InstanceStrategy) -> Self {
        self.instances = strategy;
        self
    }

    /// Waits between retries of a write that lost a race (default:
    /// [`ConflictBackoff::default`]).
    pub fn conflict_backoff(mut self, backoff: ConflictBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wall clock the component sees (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How the engine runs guest code (default: [`EngineTuning::default`]).
    /// A host with other settings compiles the component for itself
    /// instead of sharing the process-wide compiled embedded component.
    pub fn engine(mut self, tuning: EngineTuning) -> Self {
        self.engine = tuning;
        self
    }

    /// The component to run (default: the embedded one).
    pub fn component(mut self, component: ComponentSource) -> Self {
        self.component = component;
        self
    }

    /// Compiles the component and checks the configuration with it once.
    pub async fn build(self) -> Result<TaskHost, BuildError> {
        let runtime = self.component.runtime(self.engine)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let sandbox = Sandbox::new(runtime, clock, self.limits, self.instances, self.backoff);
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(InMemoryBackend::new()));
        check_page_fits_memory(&self.config, &self.limits)?;
        let mut store_config = self.config;
        if store_config.cursor_secret.is_empty() {
            store_config.cursor_secret = random_cursor_secret()?;
        }
        let config = GuestConfig::from(&store_config);
        // Open once now so a bad configuration fails here, not on first use.
        let session = sandbox
            .session(&backend, &config)
            .await
            .map_err(BuildError::Config)?;
        sandbox.release(session);
        Ok(TaskHost {
            inner: Arc::new(Inner {
                sandbox,
                backend,
                config,
            }),
        })
    }
}

/// Refuses a configuration whose largest page could not be read within the
/// guest's memory: a page and its look-ahead item, at the largest record
/// size, must fit in half the memory cap (the rest is for the copies that
/// decoding makes), or a legal list request would fail with a memory error.
fn check_page_fits_memory(config: &StoreConfig, limits: &SandboxLimits) -> Result<(), BuildError> {
    let page_bytes = (u64::from(config.max_page_size) + 1) * u64::from(config.max_record_bytes);
    let budget = limits.max_memory_bytes as u64 / 2;
    if page_bytes <= budget {
        return Ok(());
    }
    Err(BuildError::Config(TaskError::InvalidParams(format!(
        "a page of max-page-size {} (+1 look-ahead) records of max-record-bytes {} is {page_bytes} bytes, \
         over half the guest memory limit of {} bytes; lower either, or raise SandboxLimits::max_memory_bytes",
        config.max_page_size, config.max_record_bytes, limits.max_memory_bytes
    ))))
}

/// A secret for list cursors when the configuration names none: without
/// one, anybody who knows the cursor format could mint cursors. Each host
/// then has its own, so replicas behind one load balancer must share a
/// configured secret (see [`StoreConfig::cursor_secret`]).
fn random_cursor_secret() -> Result<Vec<u8>, BuildError> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| BuildError::Randomness(Box::new(e)))?;
    Ok(secret)
}

/// Runs one exported method on a session of the sandbox, inside a tracing
/// span named after the operation (owner ids appear only as
/// [`owner_tag`]s) that records where the call's time went.
macro_rules! guest_call {
    ($self:ident, $op:literal, $owner_tag:expr, $method:ident ( $($arg:expr),* )) => {{
        let span = tracing::debug_span!(
            "pmcp_tasks.call",
            op = $op,
            owner = %$owner_tag,
            guest_us = tracing::field::Empty,
            backend_us = tracing::field::Empty,
            backend_calls = tracing::field::Empty,
            backoffs = tracing::field::Empty,
        );
        // Boxed: the call's future (wasmtime's among it) is kilobytes, and
        // every caller's future would otherwise copy it as it moves.
        tracing::Instrument::instrument(Box::pin(async {
            let sandbox = &$self.inner.sandbox;
            let mut session = sandbox.session(&$self.inner.backend, &$self.inner.config).await?;
            let handle = session.handle;
            let api = session.bindings.pmcp_tasks_task_store();
            let result = api.store().$method(&mut session.store, handle, $($arg),*).await;
            let (outcome, cost) = sandbox.finish(session, result);
            record_cost($op, $self.inner.backend.kind(), &cost, &outcome);
            outcome
        }), span).await
    }};
}

/// Records a finished call's cost on the current span, at debug level as
/// an event (with the error, if any), and in the metrics: the call's
/// guest and backend seconds (`pmcp_tasks_store_call_duration_seconds`,
/// by `operation`, `backend` and `part`), its lost compare-and-swap races
/// (`pmcp_tasks_store_backoffs_total`) and its failures
/// (`pmcp_tasks_store_call_errors_total`).
fn record_cost<T>(
    op: &'static str,
    backend: &'static str,
    cost: &CallCost,
    outcome: &Result<T, TaskError>,
) {
    let labels = |part: &'static str| [("operation", op), ("backend", backend), ("part", part)];
    metrics::histogram!("pmcp_tasks_store_call_duration_seconds", &labels("guest"))
        .record(cost.guest.as_secs_f64());
    metrics::histogram!("pmcp_tasks_store_call_duration_seconds", &labels("backend"))
        .record(cost.backend.as_secs_f64());
    if cost.backoffs > 0 {
        metrics::counter!("pmcp_tasks_store_backoffs_total", "operation" => op, "backend" => backend)
            .increment(u64::from(cost.backoffs));
    }
    if outcome.is_err() {
        metrics::counter!("pmcp_tasks_store_call_errors_total", "operation" => op, "backend" => backend)
            .increment(1);
    }
    let span = tracing::Span::current();
    let guest_us = u64::try_from(cost.guest.as_micros()).unwrap_or(u64::MAX);
    let backend_us = u64::try_from(cost.backend.as_micros()).unwrap_or(u64::MAX);
    span.record("guest_us", guest_us);
    span.record("backend_us", backend_us);
    span.record("backend_calls", cost.backend_calls);
    span.record("backoffs", cost.backoffs);
    match outcome {
        Ok(_) => tracing::debug!(guest_us, backend_us, "store call done"),
        Err(error) => tracing::debug!(guest_us, backend_us, %error, "store call failed"),
    }
}

/// A short, stable tag for an owner id (the first 8 bytes of its SHA-256
/// in hex), so logs can correlate one owner's calls without showing who it is.
pub fn owner_tag(owner: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(owner.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl TaskHost {
    /// The component instances behind this host now (live in the process,
    /// idle in this host's pool).
    pub fn instances(&self) -> InstanceCounts {
        self.inner.sandbox.instances()
    }

    /// A builder with defaults: in-memory backend, system clock, embedded component.
    pub fn builder() -> TaskHostBuilder {
        TaskHostBuilder::default()
    }

    /// Creates a task in `working` for `owner` running a request with only
    /// a method, without a lease; `ttl` `None` takes the default.
    pub async fn create(
        &self,
        owner: &str,
        request_method: &str,
        ttl: Option<Duration>,
    ) -> Result<TaskRecord, TaskError> {
        let request = TaskRequest {
            method: request_method.to_owned(),
            ..TaskRequest::default()
        };
        self.create_task(owner, &request, ttl, None).await
    }

    /// Creates a task in `working` for `owner` running `request` (kept so
    /// any replica can report on it), leased to a worker from the start
    /// when `lease` is given. When it returns, a `get` on any replica over
    /// the same backend finds the task.
    pub async fn create_task(
        &self,
        owner: &str,
        request: &TaskRequest,
        ttl: Option<Duration>,
        lease: Option<&LeaseGrant>,
    ) -> Result<TaskRecord, TaskError> {
        let request = request.into();
        let lease = lease.map(Into::into);
        guest_call!(
            self,
            "create",
            owner_tag(owner),
            call_create(owner, &request, ttl_millis(ttl), lease.as_ref())
        )?
        .try_into()
    }

    /// Reads a live task of `owner`.
    pub async fn get(&self, owner: &str, task_id: &str) -> Result<TaskRecord, TaskError> {
        guest_call!(self, "get", owner_tag(owner), call_get(owner, task_id))?.try_into()
    }

    /// Reads a task with its outcome, arguments and unanswered input
    /// requests, its status as `view` reports it.
    pub async fn inspect(
        &self,
        owner: &str,
        task_id: &str,
        view: StatusView,
    ) -> Result<TaskDetail, TaskError> {
        guest_call!(
            self,
            "inspect",
            owner_tag(owner),
            call_inspect(owner, task_id, view.into())
        )?
        .try_into()
    }

    /// Finishes a non-terminal task with its one outcome, in one write:
    /// `completed` for a tool result (also with `isError: true`), `failed`
    /// for a JSON-RPC error. A terminal task refuses it (a late worker
    /// never overwrites a cancellation).
    pub async fn finish(
        &self,
        owner: &str,
        task_id: &str,
        outcome: &Outcome,
    ) -> Result<TaskRecord, TaskError> {
        let outcome = outcome.into();
        guest_call!(
            self,
            "finish",
            owner_tag(owner),
            call_finish(owner, task_id, &outcome)
        )?
        .try_into()
    }

    /// Marks a task cancel-requested for its worker (cooperative
    /// cancellation); no error and no change on a terminal or already
    /// marked task.
    pub async fn request_cancel(
        &self,
        owner: &str,
        task_id: &str,
    ) -> Result<TaskRecord, TaskError> {
        guest_call!(
            self,
            "request-cancel",
            owner_tag(owner),
            call_request_cancel(owner, task_id)
        )?
        .try_into()
    }

    /// Asks the client for input: adds requests under keys never used on
    /// this task and moves it to `input_required`.
    pub async fn request_input(
        &self,
        owner: &str,
        task_id: &str,
        requests: &[InputRequest],
    ) -> Result<TaskRecord, TaskError> {
        let requests: Vec<_> = requests.iter().map(Into::into).collect();
        guest_call!(
            self,
            "request-input",
            owner_tag(owner),
            call_request_input(owner, task_id, &requests)
        )?
        .try_into()
    }

    /// Records the client's responses whose keys are outstanding and
    /// ignores the others; the task is `working` again once none is
    /// outstanding. No change on a terminal task.
    pub async fn answer_input(
        &self,
        owner: &str,
        task_id: &str,
        responses: &[InputResponse],
    ) -> Result<TaskRecord, TaskError> {
        let responses: Vec<_> = responses.iter().map(Into::into).collect();
        guest_call!(
            self,
            "answer-input",
            owner_tag(owner),
            call_answer_input(owner, task_id, &responses)
        )?
        .try_into()
    }

    /// Removes and returns the answers waiting for the task's worker.
    pub async fn take_answers(
        &self,
        owner: &str,
        task_id: &str,
    ) -> Result<Vec<InputResponse>, TaskError> {
        guest_call!(
            self,
            "take-answers",
            owner_tag(owner),
            call_take_answers(owner, task_id)
        )?
        .into_iter()
        .map(InputResponse::try_from)
        .collect()
    }

    /// Takes or renews `grant.holder`'s lease on a task. Refused with
    /// [`TaskError::InvalidTransition`] while another holder's lease is
    /// live; a terminal task comes back unchanged (the worker should stop),
    /// as does `cancel_requested` when cancellation was asked for.
    pub async fn renew_lease(
        &self,
        owner: &str,
        task_id: &str,
        grant: &LeaseGrant,
    ) -> Result<TaskRecord, TaskError> {
        let grant = grant.into();
        guest_call!(
            self,
            "renew-lease",
            owner_tag(owner),
            call_renew_lease(owner, task_id, &grant)
        )?
        .try_into()
    }

    /// Fails up to `limit` non-terminal tasks whose worker stopped renewing
    /// its lease (a killed process, a lost replica) with a JSON-RPC error;
    /// returns how many. Any replica may run it, as often as it likes.
    pub async fn reap_lost_workers(&self, limit: u32) -> Result<u64, TaskError> {
        guest_call!(
            self,
            "reap-lost-workers",
            "(every owner)",
            call_reap_lost_workers(limit)
        )
    }

    /// Moves a task to `status`, replacing its status message.
    pub async fn update_status(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, TaskError> {
        guest_call!(
            self,
            "update-status",
            owner_tag(owner),
            call_update_status(owner, task_id, status.into(), message)
        )?
        .try_into()
    }

    /// Merges `patch` into the variables; a `null` value deletes a key.
    pub async fn set_variables(
        &self,
        owner: &str,
        task_id: &str,
        patch: &Map<String, Value>,
    ) -> Result<TaskRecord, TaskError> {
        let patch = json_text(patch);
        guest_call!(
            self,
            "set-variables",
            owner_tag(owner),
            call_set_variables(owner, task_id, &patch, None)
        )?
        .try_into()
    }

    /// Like [`TaskHost::set_variables`], but only if the task is still at
    /// `version`; otherwise a [`TaskError::Conflict`] (re-read and retry).
    pub async fn set_variables_at_version(
        &self,
        owner: &str,
        task_id: &str,
        patch: &Map<String, Value>,
        version: u64,
    ) -> Result<TaskRecord, TaskError> {
        let patch = json_text(patch);
        guest_call!(
            self,
            "set-variables",
            owner_tag(owner),
            call_set_variables(owner, task_id, &patch, Some(version))
        )?
        .try_into()
    }

    /// Stores a result on a non-terminal task without changing its status.
    pub async fn set_result(
        &self,
        owner: &str,
        task_id: &str,
        result: &Value,
    ) -> Result<TaskRecord, TaskError> {
        let result = json_text(result);
        guest_call!(
            self,
            "set-result",
            owner_tag(owner),
            call_set_result(owner, task_id, &result)
        )?
        .try_into()
    }

    /// Returns the stored result.
    pub async fn get_result(&self, owner: &str, task_id: &str) -> Result<Value, TaskError> {
        let text = guest_call!(
            self,
            "get-result",
            owner_tag(owner),
            call_get_result(owner, task_id)
        )?;
        serde_json::from_str(&text).map_err(|e| {
            TaskError::internal(format!("the component returned an invalid result: {e}"))
        })
    }

    /// Moves to `completed` or `failed` and stores `result`, atomically.
    pub async fn complete_with_result(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        result: &Value,
    ) -> Result<TaskRecord, TaskError> {
        let result = json_text(result);
        guest_call!(
            self,
            "complete-with-result",
            owner_tag(owner),
            call_complete_with_result(owner, task_id, status.into(), &result)
        )?
        .try_into()
    }

    /// Lists `owner`'s live tasks in creation order, statuses as stored;
    /// pass the previous page's `next_cursor` to continue.
    pub async fn list(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<TaskPage, TaskError> {
        self.list_in(owner, cursor, limit, StatusView::Extension)
            .await
    }

    /// Like [`TaskHost::list`], statuses as `view` reports them.
    pub async fn list_in(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
        view: StatusView,
    ) -> Result<TaskPage, TaskError> {
        Ok(guest_call!(
            self,
            "list",
            owner_tag(owner),
            call_list(owner, cursor, limit, view.into())
        )?
        .into())
    }

    /// Cancels a non-terminal task.
    pub async fn cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, TaskError> {
        guest_call!(
            self,
            "cancel",
            owner_tag(owner),
            call_cancel(owner, task_id)
        )?
        .try_into()
    }

    /// Deletes a task whatever its status.
    pub async fn delete(&self, owner: &str, task_id: &str) -> Result<(), TaskError> {
        guest_call!(
            self,
            "delete",
            owner_tag(owner),
            call_delete(owner, task_id)
        )
    }

    /// Physically removes up to `limit` expired records (reads already hide
    /// them); returns how many were removed.
    pub async fn cleanup_expired(&self, limit: u32) -> Result<u64, TaskError> {
        guest_call!(
            self,
            "cleanup-expired",
            "(every owner)",
            call_cleanup_expired(limit)
        )
    }
}
