//! Conversions between the generated WIT types and the crate's public ones:
//! one function or `From` impl per pair.

use std::time::Duration;

use serde_json::{Map, Value};

use super::pmcp::tasks::types as wit;
use crate::error::TaskError;
use crate::task::{
    InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, RetryPolicy, StatusView,
    Task, TaskDetail, TaskPage, TaskRecord, TaskRequest, TaskStatus,
};
use crate::ReapReport;
use crate::StoreConfig;

/// A store configuration in the component's terms, converted once per host.
#[derive(Debug, Clone)]
pub(crate) struct GuestConfig(pub(crate) wit::StoreConfig);

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

impl From<wit::StoreError> for TaskError {
    fn from(e: wit::StoreError) -> Self {
        match e {
            wit::StoreError::NotFound(m) => TaskError::NotFound(m),
            wit::StoreError::InvalidTransition(m) => TaskError::InvalidTransition(m),
            wit::StoreError::InvalidParams(m) => TaskError::InvalidParams(m),
            wit::StoreError::QuotaExceeded(m) => TaskError::QuotaExceeded(m),
            wit::StoreError::Conflict(m) => TaskError::Conflict(m),
            wit::StoreError::Backend(message) => TaskError::Backend {
                message,
                source: None,
            },
            wit::StoreError::Internal(m) => TaskError::internal(m),
        }
    }
}

impl From<wit::Task> for Task {
    fn from(t: wit::Task) -> Self {
        Task {
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

/// Parses JSON text the component returned; `what` names it in the error.
fn guest_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, TaskError> {
    serde_json::from_str(text)
        .map_err(|e| TaskError::internal(format!("the component returned invalid {what}: {e}")))
}

/// JSON text of a value the host passes in (serializing a `serde_json`
/// value cannot fail).
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl From<StatusView> for wit::StatusView {
    fn from(v: StatusView) -> Self {
        match v {
            StatusView::Extension => wit::StatusView::Extension,
            StatusView::Core => wit::StatusView::Core,
        }
    }
}

impl From<wit::OutcomeKind> for OutcomeKind {
    fn from(k: wit::OutcomeKind) -> Self {
        match k {
            wit::OutcomeKind::Result => OutcomeKind::Result,
            wit::OutcomeKind::ErrorResult => OutcomeKind::ErrorResult,
            wit::OutcomeKind::RpcError => OutcomeKind::RpcError,
        }
    }
}

impl From<&Outcome> for wit::Outcome {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::ToolResult(v) => wit::Outcome::ToolResult(json_text(v)),
            Outcome::RpcError(v) => wit::Outcome::RpcError(json_text(v)),
        }
    }
}

impl TryFrom<wit::Outcome> for Outcome {
    type Error = TaskError;

    fn try_from(o: wit::Outcome) -> Result<Self, TaskError> {
        Ok(match o {
            wit::Outcome::ToolResult(t) => Outcome::ToolResult(guest_json(&t, "result")?),
            wit::Outcome::RpcError(t) => Outcome::RpcError(guest_json(&t, "error")?),
        })
    }
}

impl From<&LeaseGrant> for wit::LeaseGrant {
    fn from(g: &LeaseGrant) -> Self {
        wit::LeaseGrant {
            holder: g.holder.clone(),
            duration: millis(g.duration),
        }
    }
}

impl From<&TaskRequest> for wit::TaskRequest {
    fn from(r: &TaskRequest) -> Self {
        wit::TaskRequest {
            method: r.method.clone(),
            tool_name: r.tool_name.clone(),
            arguments: r.arguments.as_ref().map(json_text),
            trace_parent: r.trace_parent.clone(),
            retry: r.retry.map(Into::into),
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

impl From<wit::RetryPolicy> for RetryPolicy {
    fn from(p: wit::RetryPolicy) -> Self {
        RetryPolicy {
            max_attempts: p.max_attempts,
            backoff_ms: p.backoff_ms,
            backoff_max_ms: p.backoff_max_ms,
        }
    }
}

impl From<wit::ReapReport> for ReapReport {
    fn from(r: wit::ReapReport) -> Self {
        ReapReport {
            failed: r.failed,
            requeued: r.requeued,
        }
    }
}

impl From<&InputRequest> for wit::InputRequest {
    fn from(r: &InputRequest) -> Self {
        wit::InputRequest {
            key: r.key.clone(),
            method: r.method.clone(),
            params: json_text(&r.params),
        }
    }
}

impl TryFrom<wit::InputRequest> for InputRequest {
    type Error = TaskError;

    fn try_from(r: wit::InputRequest) -> Result<Self, TaskError> {
        Ok(InputRequest {
            params: guest_json(&r.params, "input params")?,
            key: r.key,
            method: r.method,
        })
    }
}

impl From<&InputResponse> for wit::InputResponse {
    fn from(r: &InputResponse) -> Self {
        wit::InputResponse {
            key: r.key.clone(),
            response: json_text(&r.response),
        }
    }
}

impl TryFrom<wit::InputResponse> for InputResponse {
    type Error = TaskError;

    fn try_from(r: wit::InputResponse) -> Result<Self, TaskError> {
        Ok(InputResponse {
            response: guest_json(&r.response, "input response")?,
            key: r.key,
        })
    }
}

impl TryFrom<wit::TaskRecord> for TaskRecord {
    type Error = TaskError;

    fn try_from(r: wit::TaskRecord) -> Result<Self, TaskError> {
        Ok(TaskRecord {
            task: r.task.into(),
            request_method: r.request_method,
            tool_name: r.tool_name,
            trace_parent: r.trace_parent,
            variables: guest_json(&r.variables, "variables")?,
            has_result: r.has_result,
            outcome: r.outcome.map(Into::into),
            cancel_requested: r.cancel_requested,
            lease: r.lease.map(|l| Lease {
                holder: l.holder,
                expires_at_ms: l.expires_at,
            }),
            pending_input: r.pending_input,
            answers_waiting: r.answers_waiting,
            retry: r.retry.map(Into::into),
            attempt: r.attempt,
            queued: r.queued,
            checkpoint_bytes: r.checkpoint_bytes,
            version: r.version,
        })
    }
}

impl TryFrom<wit::TaskDetail> for TaskDetail {
    type Error = TaskError;

    fn try_from(d: wit::TaskDetail) -> Result<Self, TaskError> {
        Ok(TaskDetail {
            record: d.record.try_into()?,
            outcome: d.outcome.map(Outcome::try_from).transpose()?,
            arguments: d
                .arguments
                .map(|a| guest_json::<Map<String, Value>>(&a, "arguments"))
                .transpose()?,
            input_requests: d
                .input_requests
                .into_iter()
                .map(InputRequest::try_from)
                .collect::<Result<_, _>>()?,
            checkpoint: d
                .checkpoint
                .map(|c| guest_json::<Value>(&c, "checkpoint"))
                .transpose()?,
        })
    }
}

impl From<wit::TaskPage> for TaskPage {
    fn from(p: wit::TaskPage) -> Self {
        TaskPage {
            tasks: p.tasks.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<&StoreConfig> for GuestConfig {
    fn from(c: &StoreConfig) -> Self {
        GuestConfig(wit::StoreConfig {
            default_ttl: c.default_ttl.map(millis),
            max_ttl: c.max_ttl.map(millis),
            poll_interval: c.poll_interval.map(millis),
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
            cursor_secret: c.cursor_secret.clone(),
            max_cas_attempts: c.max_cas_attempts,
        })
    }
}

/// Converts a ttl request to the milliseconds the component takes.
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(millis)
}
