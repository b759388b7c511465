//! Typed errors of the host, each with its JSON-RPC code.

use std::error::Error as StdError;
use std::time::Duration;

use crate::backend::KvError;

pub use pmcp_tasks_contract::json_rpc::{INTERNAL_ERROR, INVALID_PARAMS};

/// Why a task operation failed.
///
/// The first four variants are the caller's to fix (JSON-RPC -32602), the
/// rest are the server's (-32603); [`TaskError::is_retryable`] says which
/// may succeed when simply retried.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    #[error("{message}")]
    Backend {
        /// What the component reported.
        message: String,
        /// The backend's own error for the call that failed, when the
        /// component's failure came from one.
        #[source]
        source: Option<KvError>,
    },
    /// Corrupt data, a bug, or a component that broke the contract; not
    /// retryable.
    #[error("{message}")]
    Internal {
        /// What went wrong.
        message: String,
        /// The backend's error, when the backend found the data corrupt.
        #[source]
        source: Option<KvError>,
    },
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
    /// A [`TaskError::Internal`] without an underlying backend error.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        TaskError::Internal {
            message: message.into(),
            source: None,
        }
    }

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
        matches!(self, TaskError::Conflict(_) | TaskError::Backend { .. })
    }
}

/// An error from the wasm engine, kept as the source of a [`BuildError`].
pub type EngineError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a [`crate::TaskHost`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The wasm engine could not be configured.
    #[error("cannot configure the wasm engine")]
    Engine(#[source] EngineError),
    /// The bytes are not a component that fits the `pmcp:tasks` contract.
    #[error("the component does not fit the pmcp:tasks contract: {0}")]
    IncompatibleComponent(String),
    /// The component file could not be read.
    #[error("cannot read component file {path}")]
    ReadComponent {
        /// File that was asked for.
        path: std::path::PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system gave no randomness for the cursor secret.
    #[error("cannot draw a random cursor secret")]
    Randomness(#[source] EngineError),
    /// The store configuration was refused by the component.
    #[error("invalid store configuration: {0}")]
    Config(#[source] TaskError),
}

impl BuildError {
    /// A [`BuildError::Engine`] from wasmtime's error type.
    pub(crate) fn engine(error: wasmtime::Error) -> Self {
        BuildError::Engine(error.into())
    }
}
