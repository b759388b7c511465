//! The MCP protocol layer of pmcp-tasks: what an MCP server answers to task
//! traffic, from the durable, shared, sandboxed store of
//! [`pmcp_tasks_host::TaskHost`], for both protocol revisions.
//!
//! - MCP 2025-11-25 (tasks in the core protocol): `tasks/get`, a blocking
//!   `tasks/result`, `tasks/list`, `tasks/cancel` (cancelled before the
//!   answer), and task-augmented `tools/call` (`params.task`).
//! - MCP 2026-07-28 with the `io.modelcontextprotocol/tasks` extension
//!   (SEP-2663): `tasks/get` with the outcome inlined, `tasks/update`, a
//!   cooperative `tasks/cancel`; the server decides which calls become tasks.
//!
//! The layer is transport-neutral: [`TaskService::handle`] takes a method
//! and its JSON params for a [`Caller`] (owner, revision, declared
//! capability) and returns the JSON result or a [`RpcError`] with the code
//! the specification names. A tool call that becomes a task runs on a
//! [`Worker`]: it keeps its lease, reports progress, asks for input and
//! sees cancellation, all through the store, so any replica can answer for it.

#![warn(missing_docs)]

mod arguments;
mod core;
pub mod core_front;
pub mod demo;
mod error;
pub mod gate;
pub mod http;
mod identity;
mod params;
mod revision;
pub mod server;
mod service;
mod shared;
mod support;
pub mod telemetry;
pub mod trace;
mod wake;
pub mod wire;
mod worker;

pub use error::{
    RpcError, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY, PARSE_ERROR,
};
pub use identity::{principal_identity, Identify, Principal};
pub use revision::Revision;
pub use server::{DurableTaskServer, TaskTools, ToolCall, ToolFuture, ToolSpec};
pub use service::{Caller, ShutdownReport, TaskService};
pub use shared::ServiceConfig;
pub use support::{decide, Execution, TaskSupport};
pub use worker::{ToolExit, ToolOutcome, Worker};
