//! [`TaskHost`]: the typed, async task-store API users embed.

mod builder;
mod leased;

pub use builder::TaskHostBuilder;
pub use leased::{ClaimedTask, LeasedTask, ReapReport};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::backend::KvBackend;
use crate::bindings::{json_text, ttl_millis, GuestConfig};
use crate::error::TaskError;
use crate::sandbox::{CallCost, InstanceCounts, Sandbox};
use crate::task::{
    InputRequest, InputResponse, LeaseGrant, Outcome, StatusView, TaskDetail, TaskPage, TaskRecord,
    TaskRequest, TaskStatus,
};

/// A task store running in the wasm sandbox over a storage backend.
///
/// One name per operation: a worker runs a task with
/// [`create_task`](Self::create_task), [`renew_lease`](Self::renew_lease),
/// [`update_status`](Self::update_status),
/// [`request_input`](Self::request_input) /
/// [`take_answers`](Self::take_answers) and ends it with
/// [`finish`](Self::finish); a reader uses [`get`](Self::get),
/// [`inspect`](Self::inspect) and [`list_in`](Self::list_in). Two
/// shorthands stay, documented as such: [`create`](Self::create) and
/// [`list`](Self::list). [`complete_with_result`](Self::complete_with_result),
/// [`set_result`](Self::set_result) and [`get_result`](Self::get_result) are
/// the seed store's operations, kept for its callers; new code ends a task
/// with `finish`, whose outcome decides the status.
///
/// Cheap to clone; clones share the engine, the backend and the warm
/// instances. Every call runs alone on an instance of the component (see
/// [`InstanceStrategy`](crate::InstanceStrategy)), so concurrent calls run in parallel and a trap in
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

impl TaskHost {
    /// The host the builder assembled.
    fn assemble(sandbox: Sandbox, backend: Arc<dyn KvBackend>, config: GuestConfig) -> Self {
        TaskHost {
            inner: Arc::new(Inner {
                sandbox,
                backend,
                config,
            }),
        }
    }
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(owner.as_bytes());
    // One allocation: this runs for every traced call.
    let mut tag = String::with_capacity(16);
    for byte in &digest[..8] {
        tag.push(char::from(HEX[usize::from(byte >> 4)]));
        tag.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    tag
}

impl TaskHost {
    /// The component instances behind this host now (live in the process,
    /// idle in this host's pool).
    pub fn instances(&self) -> InstanceCounts {
        self.inner.sandbox.instances()
    }

    /// Shorthand for [`create_task`](Self::create_task) with a request of
    /// only a method and no lease; `ttl` `None` takes the default.
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

    /// Creates a task in `working` for `owner` running `request` that
    /// waits in the queue (`queued`) for any replica with room to
    /// [`claim`](Self::claim) it: for a call that arrives while this replica
    /// runs all the work it may. Claims serve the owners with waiting tasks
    /// in turn, so one owner's many calls do not hold another's behind them.
    pub async fn create_queued(
        &self,
        owner: &str,
        request: &TaskRequest,
        ttl: Option<Duration>,
    ) -> Result<TaskRecord, TaskError> {
        let request = request.into();
        guest_call!(
            self,
            "create-queued",
            owner_tag(owner),
            call_create_queued(owner, &request, ttl_millis(ttl))
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
        self.finish_by(owner, task_id, None, outcome).await
    }

    /// [`finish`](Self::finish), fenced to `worker` when given.
    pub(crate) async fn finish_by(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        outcome: &Outcome,
    ) -> Result<TaskRecord, TaskError> {
        let outcome = outcome.into();
        guest_call!(
            self,
            "finish",
            owner_tag(owner),
            call_finish(owner, task_id, worker, &outcome)
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
        self.request_input_by(owner, task_id, None, requests).await
    }

    /// [`request_input`](Self::request_input), fenced to `worker` when given.
    pub(crate) async fn request_input_by(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        requests: &[InputRequest],
    ) -> Result<TaskRecord, TaskError> {
        let requests: Vec<_> = requests.iter().map(Into::into).collect();
        guest_call!(
            self,
            "request-input",
            owner_tag(owner),
            call_request_input(owner, task_id, worker, &requests)
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
        self.take_answers_by(owner, task_id, None).await
    }

    /// [`take_answers`](Self::take_answers), fenced to `worker` when given.
    pub(crate) async fn take_answers_by(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
    ) -> Result<Vec<InputResponse>, TaskError> {
        guest_call!(
            self,
            "take-answers",
            owner_tag(owner),
            call_take_answers(owner, task_id, worker)
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

    /// Handles up to `limit` non-terminal tasks whose worker stopped
    /// renewing its lease (a killed process, a lost replica): one with a
    /// retry policy and attempts left waits to run again (claimed by
    /// [`claim`](Self::claim) after its backoff), any other ends `failed`
    /// with a JSON-RPC error. Any replica may run it, as often as it likes.
    pub async fn reap_lost_workers(&self, limit: u32) -> Result<ReapReport, TaskError> {
        guest_call!(
            self,
            "reap-lost-workers",
            "(every owner)",
            call_reap_lost_workers(limit)
        )
        .map(Into::into)
    }

    /// Claims up to `limit` tasks that wait for a worker and whose time
    /// came, leased to `grant.holder`: each with its arguments, attempt and
    /// checkpoint, for the caller to run (and renew, and finish, through
    /// [`leased`](Self::leased)). One compare-and-swap per task: of
    /// replicas claiming at once, exactly one gets it.
    pub async fn claim(
        &self,
        grant: &LeaseGrant,
        limit: u32,
    ) -> Result<Vec<ClaimedTask>, TaskError> {
        let wit_grant = grant.into();
        guest_call!(
            self,
            "claim",
            "(every owner)",
            call_claim(&wit_grant, limit)
        )?
        .into_iter()
        .map(|claimed| {
            Ok(ClaimedTask {
                owner: claimed.owner,
                detail: claimed.detail.try_into()?,
                waited: Duration::from_millis(claimed.waited_ms),
            })
        })
        .collect()
    }

    /// The writes of the worker `holder` on a task it holds the lease on:
    /// each is refused once the lease passed on.
    pub fn leased(&self, owner: &str, task_id: &str, holder: &str) -> LeasedTask {
        LeasedTask::new(self.clone(), owner, task_id, holder)
    }

    /// `holder` gives a retryable task up (see [`LeasedTask::hand_off`]).
    pub(crate) async fn hand_off(
        &self,
        owner: &str,
        task_id: &str,
        holder: &str,
    ) -> Result<TaskRecord, TaskError> {
        guest_call!(
            self,
            "hand-off",
            owner_tag(owner),
            call_hand_off(owner, task_id, holder)
        )?
        .try_into()
    }

    /// Stores `holder`'s checkpoint (see [`LeasedTask::checkpoint`]).
    pub(crate) async fn checkpoint(
        &self,
        owner: &str,
        task_id: &str,
        holder: &str,
        value: &Value,
    ) -> Result<TaskRecord, TaskError> {
        let value = value.to_string();
        guest_call!(
            self,
            "checkpoint",
            owner_tag(owner),
            call_checkpoint(owner, task_id, holder, &value)
        )?
        .try_into()
    }

    /// Moves a task to `status`, replacing its status message.
    pub async fn update_status(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, TaskError> {
        self.update_status_by(owner, task_id, None, status, message)
            .await
    }

    /// [`update_status`](Self::update_status), fenced to `worker` when given.
    pub(crate) async fn update_status_by(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, TaskError> {
        guest_call!(
            self,
            "update-status",
            owner_tag(owner),
            call_update_status(owner, task_id, worker, status.into(), message)
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

    /// Moves to `completed` or `failed` and stores `result`, atomically (the
    /// seed store's operation; [`finish`](Self::finish) is the same with the
    /// status following from the outcome).
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

    /// Shorthand for [`list_in`](Self::list_in) with statuses as stored
    /// ([`StatusView::Extension`]).
    pub async fn list(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<TaskPage, TaskError> {
        self.list_in(owner, cursor, limit, StatusView::Extension)
            .await
    }

    /// Lists `owner`'s live tasks in creation order, statuses as `view`
    /// reports them; pass the previous page's `next_cursor` to continue.
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

#[cfg(test)]
mod tests {
    use super::owner_tag;

    #[test]
    fn an_owner_tag_is_the_first_8_bytes_of_the_sha256_in_hex() {
        // sha256("alice") = 2bd806c97f0e00af1a1fc3328fa763a9...
        assert_eq!(owner_tag("alice"), "2bd806c97f0e00af");
        assert_eq!(owner_tag(""), "e3b0c44298fc1c14");
    }
}
