//! Errors of the task store, one variant per JSON-RPC-relevant situation.

use std::fmt;

/// Why a store operation failed. Every message says what went wrong in
/// words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Unknown, expired, malformed or another owner's task id (all the same).
    NotFound(String),
    /// The state machine forbids the change.
    InvalidTransition(String),
    /// Input rejected by policy (cursor, limits, ttl, anonymous owner).
    InvalidParams(String),
    /// The owner holds the maximum number of live tasks.
    QuotaExceeded(String),
    /// Lost every compare-and-swap attempt, or the expected version differed.
    Conflict(String),
    /// The storage backend failed.
    Backend(String),
    /// Corrupt data or a bug.
    Internal(String),
}

impl StoreError {
    /// The error every lookup of a task that the owner cannot see returns.
    pub fn task_not_found(task_id: &str) -> Self {
        // Echo only a bounded prefix of untrusted input.
        let shown: String = task_id.chars().take(64).collect();
        StoreError::NotFound(format!("task not found: {shown}"))
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            StoreError::NotFound(m)
            | StoreError::InvalidTransition(m)
            | StoreError::InvalidParams(m)
            | StoreError::QuotaExceeded(m)
            | StoreError::Conflict(m)
            | StoreError::Backend(m)
            | StoreError::Internal(m) => m,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StoreError {}
