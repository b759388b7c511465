//! Typed errors of the host, each with its JSON-RPC code.

use std::time::Duration;

/// JSON-RPC "invalid params".
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC "internal error".
pub const INTERNAL_ERROR: i32 = -32603;

/// Why a task operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Unknown, expired or another owner's task (indistinguishable by design).
    #[error("{0}")]
    NotFound(String),
    /// The state machine forbids the change (terminal tasks never change).
    #[error("{0}")]
    InvalidTransition(String),
    /// Input refused by policy: cursor, limits, ttl, anonymous owner.
    #[error("{0}")]
    InvalidParams(String),
    /// The owner holds the maximum number of live tasks.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Concurrent writers won every attempt, or the expected version differed.
    #[error("{0}")]
    Conflict(String),
    /// The storage backend failed or is unreachable.
    #[error("{0}")]
    Backend(String),
    /// The component reported corrupt data or a bug.
    #[error("{0}")]
    Internal(String),
    /// The component trapped (for example it panicked); the instance was discarded.
    #[error("the task component trapped: {0}")]
    GuestTrap(String),
    /// The component ran longer than its time budget and was interrupted.
    #[error("the task component exceeded its time budget of {0:?} and was interrupted")]
    GuestTimeout(Duration),
    /// The component tried to grow its memory past the limit.
    #[error("the task component exceeded its memory limit of {0} bytes")]
    GuestMemoryLimit(usize),
}

impl TaskError {
    /// The JSON-RPC error code for this error.
    pub fn json_rpc_code(&self) -> i32 {
        match self {
            TaskError::NotFound(_)
            | TaskError::InvalidTransition(_)
            | TaskError::InvalidParams(_)
            | TaskError::QuotaExceeded(_) => INVALID_PARAMS,
            _ => INTERNAL_ERROR,
        }
    }

    /// Whether the same call may succeed if simply retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TaskError::Conflict(_) | TaskError::Backend(_))
    }
}

/// Why a [`crate::TaskHost`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The wasm engine could not be configured.
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a component that fits the `pmcp:tasks` contract.
    #[error("the component does not fit the pmcp:tasks contract: {0}")]
    IncompatibleComponent(String),
    /// The component file could not be read.
    #[error("cannot read component file {path}: {source}")]
    ReadComponent {
        /// File that was asked for.
        path: std::path::PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The store configuration was refused by the component.
    #[error("invalid store configuration: {0}")]
    Config(String),
}
