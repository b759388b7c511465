//! Errors of the task store, one variant per JSON-RPC-relevant situation.

/// Why a store operation failed. Every message says what went wrong in
/// words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Unknown, expired, malformed or another owner's task id (all the same).
    #[error("{0}")]
    NotFound(String),
    /// The state machine forbids the change.
    #[error("{0}")]
    InvalidTransition(String),
    /// Input rejected by policy (cursor, limits, ttl, anonymous owner).
    #[error("{0}")]
    InvalidParams(String),
    /// The owner holds the maximum number of live tasks.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Lost every compare-and-swap attempt, or the expected version differed.
    #[error("{0}")]
    Conflict(String),
    /// The storage backend failed.
    #[error("{0}")]
    Backend(String),
    /// Corrupt data or a bug.
    #[error("{0}")]
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
