//! Between the WIT bindings and the domain types: one `From` per type and
//! direction, each `match` exhaustive, so a new WIT case fails the build here.

use super::bindings::pmcp::tasks::types as wit;
use crate::{
    InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, RetryPolicy, StatusView,
    StoreConfig, StoreError, Task, TaskDetail, TaskPage, TaskRecord, TaskRequest, TaskStatus,
};

impl From<wit::TaskStatus> for TaskStatus {
    fn from(s: wit::TaskStatus) -> Self {
        match s {
            wit::TaskStatus::Working => TaskStatus::Working,
            wit::TaskStatus::InputRequired => TaskStatus::InputRequired,
            wit::TaskStatus::Completed => TaskStatus::Completed,
            wit::TaskStatus::Failed => TaskStatus::Failed,
            wit::TaskStatus::Cancelled => TaskStatus::Cancelled,
        }
    }
}

impl From<TaskStatus> for wit::TaskStatus {
    fn from(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Working => wit::TaskStatus::Working,
            TaskStatus::InputRequired => wit::TaskStatus::InputRequired,
            TaskStatus::Completed => wit::TaskStatus::Completed,
            TaskStatus::Failed => wit::TaskStatus::Failed,
            TaskStatus::Cancelled => wit::TaskStatus::Cancelled,
        }
    }
}

impl From<StoreError> for wit::StoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => wit::StoreError::NotFound(m),
            StoreError::InvalidTransition(m) => wit::StoreError::InvalidTransition(m),
            StoreError::InvalidParams(m) => wit::StoreError::InvalidParams(m),
            StoreError::QuotaExceeded(m) => wit::StoreError::QuotaExceeded(m),
            StoreError::Conflict(m) => wit::StoreError::Conflict(m),
            StoreError::Backend(m) => wit::StoreError::Backend(m),
            StoreError::Internal(m) => wit::StoreError::Internal(m),
        }
    }
}

impl From<Task> for wit::Task {
    fn from(t: Task) -> Self {
        wit::Task {
            task_id: t.task_id,
            status: t.status.into(),
            status_message: t.status_message,
            created_at: t.created_at,
            last_updated_at: t.last_updated_at,
            ttl: t.ttl,
            poll_interval: t.poll_interval,
        }
    }
}

impl From<OutcomeKind> for wit::OutcomeKind {
    fn from(k: OutcomeKind) -> Self {
        match k {
            OutcomeKind::Result => wit::OutcomeKind::Result,
            OutcomeKind::ErrorResult => wit::OutcomeKind::ErrorResult,
            OutcomeKind::RpcError => wit::OutcomeKind::RpcError,
        }
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::ToolResult(t) => wit::Outcome::ToolResult(t),
            Outcome::RpcError(t) => wit::Outcome::RpcError(t),
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Self {
        match o {
            wit::Outcome::ToolResult(t) => Outcome::ToolResult(t),
            wit::Outcome::RpcError(t) => Outcome::RpcError(t),
        }
    }
}

impl From<wit::StatusView> for StatusView {
    fn from(v: wit::StatusView) -> Self {
        match v {
            wit::StatusView::Extension => StatusView::Extension,
            wit::StatusView::Core => StatusView::Core,
        }
    }
}

impl From<Lease> for wit::Lease {
    fn from(l: Lease) -> Self {
        wit::Lease {
            holder: l.holder,
            expires_at: l.expires_at,
        }
    }
}

impl From<wit::LeaseGrant> for LeaseGrant {
    fn from(g: wit::LeaseGrant) -> Self {
        LeaseGrant {
            holder: g.holder,
            duration: g.duration,
        }
    }
}

impl From<wit::TaskRequest> for TaskRequest {
    fn from(r: wit::TaskRequest) -> Self {
        TaskRequest {
            method: r.method,
            tool_name: r.tool_name,
            arguments: r.arguments,
            trace_parent: r.trace_parent,
            retry: r.retry.map(Into::into),
        }
    }
}

impl From<wit::RetryPolicy> for RetryPolicy {
    fn from(p: wit::RetryPolicy) -> Self {
        RetryPolicy {
            max_attempts: p.max_attempts,
            backoff_ms: p.backoff_ms,
            backoff_max_ms: p.backoff_max_ms,
        }
    }
}

impl From<RetryPolicy> for wit::RetryPolicy {
    fn from(p: RetryPolicy) -> Self {
        wit::RetryPolicy {
            max_attempts: p.max_attempts,
            backoff_ms: p.backoff_ms,
            backoff_max_ms: p.backoff_max_ms,
        }
    }
}

impl From<wit::InputRequest> for InputRequest {
    fn from(r: wit::InputRequest) -> Self {
        InputRequest {
            key: r.key,
            method: r.method,
            params: r.params,
        }
    }
}

impl From<InputRequest> for wit::InputRequest {
    fn from(r: InputRequest) -> Self {
        wit::InputRequest {
            key: r.key,
            method: r.method,
            params: r.params,
        }
    }
}

impl From<wit::InputResponse> for InputResponse {
    fn from(r: wit::InputResponse) -> Self {
        InputResponse {
            key: r.key,
            response: r.response,
        }
    }
}

impl From<InputResponse> for wit::InputResponse {
    fn from(r: InputResponse) -> Self {
        wit::InputResponse {
            key: r.key,
            response: r.response,
        }
    }
}

impl From<TaskRecord> for wit::TaskRecord {
    fn from(r: TaskRecord) -> Self {
        wit::TaskRecord {
            task: r.task.into(),
            request_method: r.request_method,
            tool_name: r.tool_name,
            trace_parent: r.trace_parent,
            variables: r.variables,
            has_result: r.has_result,
            outcome: r.outcome.map(Into::into),
            cancel_requested: r.cancel_requested,
            lease: r.lease.map(Into::into),
            pending_input: r.pending_input,
            answers_waiting: r.answers_waiting,
            retry: r.retry.map(Into::into),
            attempt: r.attempt,
            queued: r.queued,
            checkpoint_bytes: r.checkpoint_bytes,
            version: r.version,
        }
    }
}

impl From<TaskDetail> for wit::TaskDetail {
    fn from(d: TaskDetail) -> Self {
        wit::TaskDetail {
            record: d.record.into(),
            outcome: d.outcome.map(Into::into),
            arguments: d.arguments,
            input_requests: d.input_requests.into_iter().map(Into::into).collect(),
            checkpoint: d.checkpoint,
        }
    }
}

impl From<TaskPage> for wit::TaskPage {
    fn from(p: TaskPage) -> Self {
        wit::TaskPage {
            tasks: p.tasks.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl From<wit::StoreConfig> for StoreConfig {
    fn from(c: wit::StoreConfig) -> Self {
        StoreConfig {
            default_ttl: c.default_ttl,
            max_ttl: c.max_ttl,
            poll_interval: c.poll_interval,
            max_tasks_per_owner: c.max_tasks_per_owner,
            default_page_size: c.default_page_size,
            max_page_size: c.max_page_size,
            max_variables_bytes: c.max_variables_bytes,
            max_result_bytes: c.max_result_bytes,
            max_record_bytes: c.max_record_bytes,
            max_task_bytes: c.max_task_bytes,
            max_json_depth: c.max_json_depth,
            max_string_bytes: c.max_string_bytes,
            max_owner_bytes: c.max_owner_bytes,
            allow_anonymous: c.allow_anonymous,
            cursor_secret: c.cursor_secret,
            max_cas_attempts: c.max_cas_attempts,
        }
    }
}

/// Converts a domain result into its WIT form.
pub(super) fn wire<T, W: From<T>>(r: Result<T, StoreError>) -> Result<W, wit::StoreError> {
    r.map(W::from).map_err(wit::StoreError::from)
}
