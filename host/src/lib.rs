//! Host for the pmcp-tasks component: durable MCP task state whose logic
//! runs as a sandboxed WebAssembly component, over storage the host provides.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pmcp_tasks_host::{TaskHost, TaskStatus};
//! let host = TaskHost::builder().build().await?; // in-memory backend
//! let task = host.create("user@example.com", "tools/call", None).await?;
//! host.update_status("user@example.com", &task.task.task_id, TaskStatus::Completed, None).await?;
//! # Ok(()) }
//! ```
//!
//! Layout: [`TaskHost`] (the API), [`backend`] (storage, one module per
//! backend, and [`backend::connect`] by URL), [`clock`] (the injectable
//! wall clock), and the sandbox that runs each call alone on an instance
//! of the component ([`InstanceStrategy`]) with nothing granted but the
//! clock and randomness. Every call runs in a `tracing` span
//! `pmcp_tasks.call` with the operation, the owner's [`owner_tag`], and the
//! guest and backend time it took.

pub mod backend;
mod bindings;
pub mod clock;
mod component;
mod config;
mod error;
mod host;
mod sandbox;
mod task;

pub use component::ComponentSource;
pub use component::DEFAULT_COMPONENT;
pub use config::{
    ConflictBackoff, EngineTuning, InstanceStrategy, Interruption, SandboxLimits, StoreConfig,
    FUEL_PER_MS,
};
pub use error::{BuildError, EngineError, TaskError, INTERNAL_ERROR, INVALID_PARAMS};
pub use host::{owner_tag, ClaimedTask, LeasedTask, ReapReport, TaskHost, TaskHostBuilder};
pub use sandbox::InstanceCounts;
pub use task::{
    InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, RetryPolicy, StatusView,
    Task, TaskDetail, TaskPage, TaskRecord, TaskRequest, TaskStatus,
};
