//! What a task reports and how it ends: status, variables, results,
//! outcomes, cancellation.

use serde_json::{Map, Value};

use crate::env::Environment;
use crate::error::StoreError;
use crate::json::{canonical, merge_variables, parse_limited};
use crate::kv::Kv;
use crate::outcome::{check_rpc_error, tool_result_kind};
use crate::record::{Outcome, OutcomeKind, TaskRecord};
use crate::status::TaskStatus;

use super::runs::check_fence;
use super::{end_work, raw_json, refuse_if_terminal, transition, Change, TaskStore};

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Moves a task to `status`, replacing its status message. A
    /// `worker`'s write is refused once its lease passed on.
    pub fn update_status(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        status: TaskStatus,
        message: Option<&str>,
    ) -> Result<TaskRecord, StoreError> {
        let message = self.checked_message(message)?;
        self.mutate(owner, task_id, None, |task, _| {
            check_fence(&task.head, worker)?;
            let head = &mut task.head;
            // The same status on a live task is a progress report: only the
            // message changes, and a repeat of it changes nothing.
            if head.status == status && !status.is_terminal() {
                if head.status_message == message {
                    return Ok(Change::None);
                }
            } else {
                transition(head, status)?;
            }
            head.status_message = message.clone();
            Ok(Change::Made)
        })
    }

    /// Merges a JSON object into the variables (`null` deletes a key). With
    /// `expected_version`, applies only at that version, without retrying.
    pub fn set_variables(
        &self,
        owner: &str,
        task_id: &str,
        patch: &str,
        expected_version: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.variables_limits();
        let Value::Object(patch) = parse_limited(patch, limits, "variables")? else {
            return Err(StoreError::InvalidParams(
                "variables: must be a JSON object".into(),
            ));
        };
        self.mutate(owner, task_id, expected_version, |task, _| {
            refuse_if_terminal(&task.head, "variables")?;
            let mut variables: Map<String, Value> = serde_json::from_str(task.body.variables.get())
                .map_err(|e| StoreError::Internal(format!("stored variables are corrupt: {e}")))?;
            merge_variables(&mut variables, patch.clone());
            let merged = canonical(&Value::Object(variables))?;
            if merged.get().len() > limits.max_bytes {
                return Err(StoreError::InvalidParams(format!(
                    "variables: the merged object would be {} bytes; the limit is {} bytes",
                    merged.get().len(),
                    limits.max_bytes
                )));
            }
            if merged.get() == task.body.variables.get() {
                return Ok(Change::None);
            }
            task.body.variables = merged;
            Ok(Change::Made)
        })
    }

    /// Stores an interim JSON result on a non-terminal task.
    pub fn set_result(
        &self,
        owner: &str,
        task_id: &str,
        result: &str,
    ) -> Result<TaskRecord, StoreError> {
        let (result, kind) = self.parse_result(result)?;
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the result")?;
            task.body.result = Some(result.clone());
            task.head.outcome = Some(kind);
            Ok(Change::Made)
        })
    }

    /// Moves to `completed` or `failed` and stores `result`, in one write.
    pub fn complete_with_result(
        &self,
        owner: &str,
        task_id: &str,
        status: TaskStatus,
        result: &str,
    ) -> Result<TaskRecord, StoreError> {
        if !matches!(status, TaskStatus::Completed | TaskStatus::Failed) {
            return Err(StoreError::InvalidParams(format!(
                "complete-with-result needs status completed or failed, not {status}"
            )));
        }
        let (result, kind) = self.parse_result(result)?;
        self.finish_with(owner, task_id, None, status, result, kind)
    }

    /// Finishes a task with its one outcome, in one write: `completed` for
    /// a tool result (also one with `isError`), `failed` for a JSON-RPC
    /// error. A `worker`'s outcome is refused once its lease passed on.
    pub fn finish(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        outcome: &Outcome,
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.json_limits(self.config.max_result_bytes);
        let (text, status, kind) = match outcome {
            Outcome::ToolResult(text) => {
                let value = parse_limited(text, limits, "result")?;
                let kind = tool_result_kind(&value)
                    .map_err(|why| StoreError::InvalidParams(format!("result: {why}")))?;
                (text, TaskStatus::Completed, kind)
            }
            Outcome::RpcError(text) => {
                let value = parse_limited(text, limits, "error")?;
                check_rpc_error(&value)
                    .map_err(|why| StoreError::InvalidParams(format!("error: {why}")))?;
                (text, TaskStatus::Failed, OutcomeKind::RpcError)
            }
        };
        // Kept as given: a tool result is the tool's, byte for byte.
        let verbatim = raw_json(text.trim().to_owned())?;
        self.finish_with(owner, task_id, worker, status, verbatim, kind)
    }

    /// Cancels a non-terminal task (its worker sees `cancel-requested` and
    /// the terminal status).
    pub fn cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() {
                return Err(StoreError::InvalidTransition(format!(
                    "cannot cancel task {}: it is already {}",
                    head.task_id, head.status
                )));
            }
            head.status = TaskStatus::Cancelled;
            head.cancel_requested = true;
            end_work(task, moved);
            Ok(Change::Made)
        })
    }

    /// Marks a task cancel-requested for its worker; nothing changes on a
    /// terminal or already marked task, and neither is an error. A task
    /// waiting for its next run has no worker to see the mark: it ends
    /// `cancelled` at once.
    pub fn request_cancel(&self, owner: &str, task_id: &str) -> Result<TaskRecord, StoreError> {
        self.mutate(owner, task_id, None, |task, moved| {
            let head = &mut task.head;
            if head.status.is_terminal() || head.cancel_requested {
                return Ok(Change::None);
            }
            head.cancel_requested = true;
            if head.runs.waits() {
                head.status = TaskStatus::Cancelled;
                end_work(task, moved);
            }
            Ok(Change::Made)
        })
    }
}
