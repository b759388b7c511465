//! Conversions between the generated WIT types and the crate's public ones:
//! one function or `From` impl per pair.

use std::time::Duration;

use serde_json::{Map, Value};

use super::pmcp::tasks::types as wit;
use crate::error::TaskError;
use crate::task::{Task, TaskPage, TaskRecord, TaskStatus};
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

impl TryFrom<wit::TaskRecord> for TaskRecord {
    type Error = TaskError;

    fn try_from(r: wit::TaskRecord) -> Result<Self, TaskError> {
        let variables: Map<String, Value> = serde_json::from_str(&r.variables).map_err(|e| {
            TaskError::internal(format!("the component returned invalid variables: {e}"))
        })?;
        Ok(TaskRecord {
            task: r.task.into(),
            request_method: r.request_method,
            variables,
            has_result: r.has_result,
            version: r.version,
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
