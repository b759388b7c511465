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
//!
//! With the `gateway` feature, `Gateway` offers the tools of an unchanged
//! upstream MCP server (a command over stdio, or a Streamable HTTP URL) as
//! durable tasks: `pmcp-tasks gateway` in front of a server written in any
//! language.

mod arguments;
mod capacity;
mod claims;
mod core;
mod core_front;
#[cfg(feature = "demo")]
mod demo;
mod error;
mod gate;
#[cfg(feature = "gateway")]
mod gateway;
mod http;
mod identity;
mod params;
mod progress;
mod revision;
mod server;
mod service;
mod shared;
mod support;
mod telemetry;
mod trace;
mod wake;
mod wire;
mod worker;

// The crate's API, each item at this one path; the modules are private.

// The service and its tools.
#[cfg(feature = "demo")]
pub use demo::DemoTools;
pub use error::{
    RpcError, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY, PARSE_ERROR,
};
pub use revision::Revision;
pub use server::{
    DurableTaskServer, Preparation, PrepareFuture, TaskTools, ToolCall, ToolFuture, ToolSpec,
};
pub use service::{Caller, ShutdownReport, TaskService, TaskStart};
pub use shared::ServiceConfig;
pub use support::{decide, Execution, TaskSupport, UnknownTaskSupport};
pub use worker::{ToolExit, ToolOutcome, Worker};

// Durable tasks in front of an unchanged MCP server (feature `gateway`).
#[cfg(feature = "gateway")]
pub use gateway::{
    Gateway, GatewayError, GatewayOptions, UpstreamCause, UpstreamServer, UpstreamTransport,
};

// Transports: newline-delimited JSON-RPC (stdio) and Streamable HTTP.
pub use core_front::serve_lines;
pub use gate::MAX_MESSAGE_BYTES;
pub use http::serve as serve_http;
pub use http::{HttpOptions, MCP_PATH};

// Who the caller is, and what the HTTP front admits.
pub use http::{
    bearer_token, AuthError, AuthFuture, Authenticate, BadOrigin, HostPolicy, JwksError,
    JwksSource, JwtConfigError, JwtVerifier, OriginPolicy, ProtectedResource, SessionSeal,
    StaticTokens, TokenDigest, TokenFileError, TokenProblem, TrustedHeader, WallClock,
    ASYMMETRIC_ALGORITHMS, LOOPBACK_HOSTS, LOOPBACK_ORIGINS,
};
pub use identity::{principal_identity, Identify, Principal};

// Operating it: trace spans and metrics buckets; OTLP export (feature `otlp`).
pub use telemetry::SECONDS_BUCKETS;
#[cfg(feature = "otlp")]
pub use telemetry::{span_filter, OtlpTraces, OtlpTracing, TelemetryError};
pub use trace::SPAN_TARGET;
