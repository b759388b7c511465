//! The stored form of a task and the views built from it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::StoreError;
use crate::status::TaskStatus;
use crate::time::iso8601_utc;

/// A task in its wire shape (timestamps already ISO-8601).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Store-generated unguessable id.
    pub task_id: String,
    /// Current status.
    pub status: TaskStatus,
    /// Human-readable status message.
    pub status_message: Option<String>,
    /// Creation time, ISO-8601 UTC.
    pub created_at: String,
    /// Time of the last mutation, ISO-8601 UTC.
    pub last_updated_at: String,
    /// Effective ttl (ms); `None` = unlimited.
    pub ttl: Option<u64>,
    /// Poll interval hint (ms).
    pub poll_interval: Option<u64>,
}

/// A task plus its server-side state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The wire task.
    pub task: Task,
    /// Method of the creating request.
    pub request_method: String,
    /// Variables as canonical JSON object text.
    pub variables: String,
    /// Whether a result is stored.
    pub has_result: bool,
    /// Stored version, for optimistic concurrency.
    pub version: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    /// Tasks in creation order.
    pub tasks: Vec<Task>,
    /// Cursor for the next page, if any.
    pub next_cursor: Option<String>,
}

/// What the backend stores for one task: canonical JSON of this struct.
/// Variables and result stay raw JSON text so reads never re-parse them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredTask {
    pub owner_id: String,
    pub task_id: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_at: u64,
    pub last_updated_at: u64,
    pub ttl: Option<u64>,
    pub request_method: String,
    pub variables: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
}

impl StoredTask {
    /// Absolute expiry (ms), `None` for unlimited.
    pub fn expires_at(&self) -> Option<u64> {
        self.ttl.map(|ttl| self.created_at.saturating_add(ttl))
    }

    /// Serializes, refusing a record larger than `max_bytes`.
    pub fn encode(&self, max_bytes: u32) -> Result<Vec<u8>, StoreError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| StoreError::Internal(format!("cannot serialize task: {e}")))?;
        if bytes.len() > max_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "the task record would be {} bytes; the limit is {} bytes",
                bytes.len(),
                max_bytes
            )));
        }
        Ok(bytes)
    }

    /// Parses a stored record.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Internal(format!("stored task is corrupt: {e}")))
    }

    /// The wire view.
    pub fn task(&self, poll_interval: Option<u64>) -> Task {
        Task {
            task_id: self.task_id.clone(),
            status: self.status,
            status_message: self.status_message.clone(),
            created_at: iso8601_utc(self.created_at),
            last_updated_at: iso8601_utc(self.last_updated_at),
            ttl: self.ttl,
            poll_interval,
        }
    }

    /// The full view at `version`.
    pub fn record(&self, version: u64, poll_interval: Option<u64>) -> TaskRecord {
        TaskRecord {
            task: self.task(poll_interval),
            request_method: self.request_method.clone(),
            variables: self.variables.get().to_owned(),
            has_result: self.result.is_some(),
            version,
        }
    }
}
