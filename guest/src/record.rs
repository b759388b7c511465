//! The stored form of a task and the views built from it.
//!
//! A task is stored as one backend entry in two parts: the **head**, what a
//! listing shows and a worker polls (status, message, times, lease, cancel
//! mark, open input keys, the outcome's kind), and the **body**, what only a
//! reader of one task needs (variables, the outcome itself, the request's
//! arguments, input requests and answers). Listings read heads only, so a
//! page of tasks with large results moves only the small parts.

#![expect(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "the WIT's records and variants, field for field and case for case: a change is a new contract version, and the component's conversions match them without wildcards"
)]

use std::borrow::Cow;
use std::collections::BTreeMap;

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
    /// Current status (in the view the caller asked for).
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

pub use pmcp_tasks_contract::{OutcomeKind, RetryPolicy, StatusView};

/// The one outcome a task finishes with, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A tool's result object.
    ToolResult(String),
    /// A JSON-RPC error object `{code, message, data?}`.
    RpcError(String),
}

/// A worker's claim on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The worker holding it.
    pub holder: String,
    /// When it lapses (ms since the epoch).
    pub expires_at: u64,
}

/// A lease asked for: by whom and for how long (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The worker asking.
    pub holder: String,
    /// How long it holds from now (ms).
    pub duration: u64,
}

/// The request a task runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRequest {
    /// JSON-RPC method, for example `tools/call`.
    pub method: String,
    /// The tool, for `tools/call`.
    pub tool_name: Option<String>,
    /// Arguments as a JSON object.
    pub arguments: Option<String>,
    /// The W3C `traceparent` of the creating request's span.
    pub trace_parent: Option<String>,
    /// Whether the task runs again when its worker is lost (or hands it
    /// off); `None`: at most once.
    pub retry: Option<RetryPolicy>,
}

/// One server-to-client request a task waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRequest {
    /// Unique over the task's life.
    pub key: String,
    /// The request's method.
    pub method: String,
    /// Its params, a JSON object.
    pub params: String,
}

/// A client's answer to one input request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputResponse {
    /// The key it answers.
    pub key: String,
    /// The response, JSON.
    pub response: String,
}

/// A task plus its server-side state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The wire task.
    pub task: Task,
    /// Method of the creating request.
    pub request_method: String,
    /// The tool it runs, for `tools/call`.
    pub tool_name: Option<String>,
    /// The W3C `traceparent` of the creating request's span.
    pub trace_parent: Option<String>,
    /// Variables as canonical JSON object text.
    pub variables: String,
    /// Whether a result is stored.
    pub has_result: bool,
    /// What the stored result is.
    pub outcome: Option<OutcomeKind>,
    /// Whether cancellation was asked for.
    pub cancel_requested: bool,
    /// The worker's lease.
    pub lease: Option<Lease>,
    /// Keys of unanswered input requests.
    pub pending_input: Vec<String>,
    /// Answers waiting for the worker.
    pub answers_waiting: u32,
    /// The task's retry policy, if it may run again.
    pub retry: Option<RetryPolicy>,
    /// Runs started so far (1 for a task created leased; each claim adds one).
    pub attempt: u32,
    /// Whether it waits for a worker to claim it.
    pub queued: bool,
    /// Size of its stored checkpoint (0: none).
    pub checkpoint_bytes: u32,
    /// Stored version, for optimistic concurrency.
    pub version: u64,
}

/// A task with its outcome, arguments and open input requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDetail {
    /// The record, status in the requested view.
    pub record: TaskRecord,
    /// The stored outcome.
    pub outcome: Option<Outcome>,
    /// The request's arguments.
    pub arguments: Option<String>,
    /// Unanswered input requests.
    pub input_requests: Vec<InputRequest>,
    /// The last checkpoint a worker stored, JSON.
    pub checkpoint: Option<String>,
}

/// A task a worker claimed: whose it is, what its run needs, and how
/// long it waited for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    /// The task's owner.
    pub owner: String,
    /// The task, leased to the claimer.
    pub detail: TaskDetail,
    /// Milliseconds from the moment it could first be claimed (its
    /// creation, or the end of its backoff) to the claim.
    pub waited_ms: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    /// Tasks in creation order.
    pub tasks: Vec<Task>,
    /// Cursor for the next page, if any.
    pub next_cursor: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A task's runs: how many, whether it waits for one, how it retries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredRuns {
    /// The retry policy the task was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Runs started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// Runs that ended with their worker lost.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub losses: u32,
    /// When it may be claimed (ms), while it waits for a worker; its
    /// index item is at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<u64>,
    /// Size of the stored checkpoint.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checkpoint_bytes: u32,
    /// It waits in the queue for a replica with room (it was created
    /// while its replica had none); its queue item is there meanwhile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_room: bool,
}

impl StoredRuns {
    /// Whether the task waits for a worker to claim it (no run holds it).
    pub(crate) fn waits(&self) -> bool {
        self.ready_at.is_some() || self.awaiting_room
    }

    fn is_plain(&self) -> bool {
        self.retry.is_none() && self.attempt == 0 && !self.waits()
    }
}

/// The head of a stored task: canonical JSON, small, read by listings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredHead {
    pub owner_id: String,
    pub task_id: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_at: u64,
    pub last_updated_at: u64,
    pub ttl: Option<u64>,
    pub request_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeKind>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel_requested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_input: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answers_waiting: u32,
    #[serde(default, skip_serializing_if = "StoredRuns::is_plain")]
    pub runs: StoredRuns,
}

/// An input request as stored (params kept as given).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredInputRequest {
    pub method: String,
    pub params: Box<RawValue>,
}

/// The body of a stored task: what only a reader of this one task needs.
/// JSON payloads stay raw text, kept as given, never re-parsed on reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredBody {
    pub variables: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Box<RawValue>>,
    /// Unanswered input requests by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_requests: BTreeMap<String, StoredInputRequest>,
    /// Answers not yet taken by the worker, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, Box<RawValue>>,
    /// Every input key this task ever used (keys are never reused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_input_keys: Vec<String>,
    /// Answers a worker took, kept for a later run of a retryable task
    /// (asking the same key again gets the same answer, not a question).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub taken_answers: BTreeMap<String, Box<RawValue>>,
    /// The last checkpoint a worker stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Box<RawValue>>,
}

/// A whole stored task.
#[derive(Debug, Clone)]
pub(crate) struct StoredTask {
    pub head: StoredHead,
    pub body: StoredBody,
}

fn corrupt(part: &str, e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored task {part} is corrupt: {e}"))
}

/// Parses one stored part, its UTF-8 checked once over the whole buffer:
/// read as text, serde_json skips its own check of every key and string
/// (a separate call each, the largest single cost of a listing in wasm).
pub(crate) fn parse_stored<'a, T: Deserialize<'a>>(
    part: &str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        StoreError::Internal(format!("stored task {part} is corrupt: not UTF-8 ({e})"))
    })?;
    serde_json::from_str(text).map_err(|e| corrupt(part, e))
}

impl StoredHead {
    /// Absolute expiry (ms), `None` for unlimited.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        self.ttl.map(|ttl| self.created_at.saturating_add(ttl))
    }

    /// Parses a stored head.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        parse_stored("head", bytes)
    }

    /// The wire view; its strings move out of the head (left empty).
    fn take_task(&mut self, poll_interval: Option<u64>, view: StatusView) -> Task {
        let listed = HeadSummary {
            owner_id: Cow::Borrowed(""),
            task_id: std::mem::take(&mut self.task_id),
            status: self.status,
            status_message: self.status_message.take(),
            created_at: self.created_at,
            last_updated_at: self.last_updated_at,
            ttl: self.ttl,
            outcome: self.outcome,
        };
        listed.into_task(poll_interval, view)
    }
}

/// What a listing shows of a stored head, read without copying a string it
/// does not return: the owner id is borrowed from the stored bytes for the
/// check, and the request, lease and input keys are skipped unparsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadSummary<'a> {
    #[serde(borrow)]
    pub owner_id: Cow<'a, str>,
    pub task_id: String,
    pub status: TaskStatus,
    #[serde(default)]
    pub status_message: Option<String>,
    pub created_at: u64,
    pub last_updated_at: u64,
    pub ttl: Option<u64>,
    #[serde(default)]
    pub outcome: Option<OutcomeKind>,
}

impl<'a> HeadSummary<'a> {
    /// Parses the listed fields of a stored head.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, StoreError> {
        parse_stored("head", bytes)
    }

    /// The wire view, status in `view`.
    pub(crate) fn into_task(self, poll_interval: Option<u64>, view: StatusView) -> Task {
        Task {
            status: status_in(view, self.status, self.outcome),
            task_id: self.task_id,
            status_message: self.status_message,
            created_at: iso8601_utc(self.created_at),
            last_updated_at: iso8601_utc(self.last_updated_at),
            ttl: self.ttl,
            poll_interval,
        }
    }
}

/// The status `view` reports of a task stored as `status` with `outcome`.
fn status_in(view: StatusView, status: TaskStatus, outcome: Option<OutcomeKind>) -> TaskStatus {
    match (view, status, outcome) {
        (StatusView::Core, TaskStatus::Completed, Some(OutcomeKind::ErrorResult)) => {
            TaskStatus::Failed
        }
        (_, status, _) => status,
    }
}

impl StoredTask {
    /// Serializes head and body, refusing a record larger than `max_bytes`.
    pub(crate) fn encode(&self, max_bytes: u32) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let serialize =
            |e: serde_json::Error| StoreError::Internal(format!("cannot serialize task: {e}"));
        let head = serde_json::to_vec(&self.head).map_err(serialize)?;
        let body = serde_json::to_vec(&self.body).map_err(serialize)?;
        let size = head.len() + body.len();
        if size > max_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "the task record would be {size} bytes; the limit is {max_bytes} bytes"
            )));
        }
        Ok((head, body))
    }

    /// The full view at `version`, status in `view` (the head's strings
    /// and the variables move into it: a read copies nothing twice).
    pub(crate) fn into_record(
        self,
        version: u64,
        poll_interval: Option<u64>,
        view: StatusView,
    ) -> TaskRecord {
        let StoredTask { head, body } = self;
        record_of(
            head,
            body.variables,
            body.result.is_some(),
            version,
            poll_interval,
            view,
        )
    }

    /// The record with outcome, arguments and open input requests.
    pub(crate) fn into_detail(
        self,
        version: u64,
        poll_interval: Option<u64>,
        view: StatusView,
    ) -> TaskDetail {
        let StoredTask { head, body } = self;
        let outcome = body.result.map(|r| {
            let text = raw_text(r);
            match head.outcome {
                Some(OutcomeKind::RpcError) => Outcome::RpcError(text),
                _ => Outcome::ToolResult(text),
            }
        });
        let has_result = outcome.is_some();
        TaskDetail {
            outcome,
            checkpoint: body.checkpoint.map(raw_text),
            arguments: body.arguments.map(raw_text),
            input_requests: body
                .input_requests
                .into_iter()
                .map(|(key, r)| InputRequest {
                    key,
                    method: r.method,
                    params: raw_text(r.params),
                })
                .collect(),
            record: record_of(
                head,
                body.variables,
                has_result,
                version,
                poll_interval,
                view,
            ),
        }
    }
}

/// JSON text kept raw, as an owned string (no copy).
fn raw_text(raw: Box<RawValue>) -> String {
    Box::<str>::from(raw).into_string()
}

/// A record from its parts.
fn record_of(
    mut head: StoredHead,
    variables: Box<RawValue>,
    has_result: bool,
    version: u64,
    poll_interval: Option<u64>,
    view: StatusView,
) -> TaskRecord {
    TaskRecord {
        task: head.take_task(poll_interval, view),
        request_method: head.request_method,
        tool_name: head.tool_name,
        trace_parent: head.trace_parent,
        outcome: head.outcome,
        cancel_requested: head.cancel_requested,
        lease: head.lease,
        pending_input: head.pending_input,
        answers_waiting: head.answers_waiting,
        retry: head.runs.retry,
        attempt: head.runs.attempt,
        queued: head.runs.waits(),
        checkpoint_bytes: head.runs.checkpoint_bytes,
        variables: raw_text(variables),
        has_result,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_stored, HeadSummary, StoredBody, StoredHead};
    use crate::error::StoreError;

    const HEAD: &str = r#"{"ownerId":"ö@example.com","taskId":"t1","status":"working","statusMessage":"half \"done\" ✓","createdAt":1,"lastUpdatedAt":2,"ttl":null,"requestMethod":"tools/call"}"#;

    #[test]
    fn a_stored_head_reads_back_with_escapes_and_unicode() {
        let head = StoredHead::decode(HEAD.as_bytes()).unwrap();
        assert_eq!(head.owner_id, "ö@example.com");
        assert_eq!(head.status_message.as_deref(), Some("half \"done\" ✓"));
        let listed = HeadSummary::decode(HEAD.as_bytes()).unwrap();
        assert_eq!(listed.owner_id, "ö@example.com");
        assert_eq!(listed.last_updated_at, 2);
    }

    #[test]
    fn stored_bytes_that_are_not_utf8_are_corrupt_data() {
        // A valid head with one byte of its owner id replaced by 0xff.
        let mut bytes = HEAD.as_bytes().to_vec();
        let at = HEAD.find("example").unwrap();
        bytes[at] = 0xff;
        for outcome in [
            StoredHead::decode(&bytes).map(drop),
            HeadSummary::decode(&bytes).map(drop),
            parse_stored::<StoredBody>("body", &bytes).map(drop),
        ] {
            match outcome {
                Err(StoreError::Internal(message)) => {
                    assert!(message.contains("not UTF-8"), "{message}")
                }
                other => panic!("expected an internal error, got {other:?}"),
            }
        }
    }
}
