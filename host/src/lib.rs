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
//! backend), [`clock`] (the injectable wall clock), and the sandbox that
//! runs each call alone on an instance of the component ([`InstanceStrategy`])
//! with nothing granted but the clock and randomness.

#![warn(missing_docs)]

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
#[cfg(feature = "fault-injection-guest")]
pub use component::FAULT_INJECTION_COMPONENT;
pub use config::{InstanceStrategy, SandboxLimits, StoreConfig};
pub use error::{BuildError, TaskError, INTERNAL_ERROR, INVALID_PARAMS};
pub use host::{TaskHost, TaskHostBuilder};
pub use task::{Task, TaskPage, TaskRecord, TaskStatus};
