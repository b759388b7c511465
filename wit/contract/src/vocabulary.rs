//! The task vocabulary both sides of the boundary speak: statuses, the
//! views the two protocol revisions read them in, and the kinds of
//! outcome. One definition; the guest adds the state machine's
//! transitions, the host the wire shapes around them.
//!
//! These enums are exhaustive on purpose: each mirrors a WIT `enum` case
//! for case, and every conversion matches them without a wildcard, so a
//! case added to the WIT fails the build on both sides until it is added
//! here too.

/// Lifecycle state of a task, as MCP names it on the wire
/// (`input_required`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[expect(
    clippy::exhaustive_enums,
    reason = "the WIT's set: a new case is a new contract version, and each side's one conversion matches it without a wildcard so that it fails to build"
)]
pub enum TaskStatus {
    /// Being worked on (the initial state).
    Working,
    /// Waiting for input from the requester.
    InputRequired,
    /// Finished successfully (terminal).
    Completed,
    /// Finished with an error (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
}

impl TaskStatus {
    /// Every status, in declaration order.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Working,
        TaskStatus::InputRequired,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// Whether no status change can follow (completed, failed, cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// The wire name (`input_required`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which protocol revision reads a status. The store keeps one record;
/// the views differ only for a tool result with `isError: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[expect(
    clippy::exhaustive_enums,
    reason = "the WIT's set: a new case is a new contract version, and each side's one conversion matches it without a wildcard so that it fails to build"
)]
pub enum StatusView {
    /// As stored, and as the MCP 2026-07-28 tasks extension reports it: a
    /// tool result with `isError: true` is `completed`.
    #[default]
    Extension,
    /// As MCP 2025-11-25 reports it: a tool result with `isError: true`
    /// is `failed`.
    Core,
}

/// What a task's stored result is, known without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
#[expect(
    clippy::exhaustive_enums,
    reason = "the WIT's set: a new case is a new contract version, and each side's one conversion matches it without a wildcard so that it fails to build"
)]
pub enum OutcomeKind {
    /// A result without `isError: true`.
    Result,
    /// A tool result with `isError: true`.
    ErrorResult,
    /// A JSON-RPC error object.
    RpcError,
}

/// Whether a task may run again when its worker is lost, and how often
/// (the WIT `retry-policy`). It travels with the task, so every replica
/// applies the policy the task was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
#[expect(
    clippy::exhaustive_structs,
    reason = "the WIT record `retry-policy`, field for field: a field is added with the contract's version"
)]
pub struct RetryPolicy {
    /// Runs after a lost worker, the first included (at least 1): a task
    /// whose worker was lost this many times ends `failed`. A hand-off by
    /// a replica shutting down is not a loss and uses none.
    pub max_attempts: u32,
    /// Wait before the second attempt (ms); it doubles for each later
    /// one, jittered down by up to half.
    pub backoff_ms: u64,
    /// Longest wait before an attempt (ms).
    pub backoff_max_ms: u64,
}

impl RetryPolicy {
    /// Up to `max_attempts` runs, waiting 1 s before the second, doubling
    /// up to 30 s.
    pub const fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            backoff_ms: 1_000,
            backoff_max_ms: 30_000,
        }
    }

    /// The wait before attempt `attempt` (2 for the first retry), before
    /// jitter: `backoff_ms` doubled per attempt past the second, capped.
    pub fn backoff_before(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(2).min(32);
        self.backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms)
    }
}

/// The JSON-RPC error codes the task methods answer with (JSON-RPC 2.0
/// and the MCP specification name them).
pub mod json_rpc {
    /// Not JSON, or nested too deep.
    pub const PARSE_ERROR: i32 = -32700;
    /// JSON that is not one JSON-RPC request.
    pub const INVALID_REQUEST: i32 = -32600;
    /// A method this server does not offer.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Bad params: unknown, expired or another owner's task, malformed
    /// input, an illegal transition.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed: storage, sandbox, a lost race after retries.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The request needs a client capability it did not declare (MCP
    /// 2026-07-28, for example the tasks extension).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;

    #[test]
    fn terminal_statuses_are_the_three_ends() {
        let ends: Vec<_> = super::TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(ends, [Completed, Failed, Cancelled]);
        assert_eq!(InputRequired.to_string(), "input_required");
    }
}
