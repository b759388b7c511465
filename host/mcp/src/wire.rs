//! The JSON shapes of task results, per revision. Pure functions of what
//! the store returned.

use pmcp_tasks_host::{Outcome, Task, TaskDetail, TaskPage, TaskStatus};
use serde_json::{json, Map, Value};

/// The `_meta` key that ties a 2025-11-25 result to its task.
pub(crate) const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A task as 2025-11-25 puts it on the wire (`ttl`, `pollInterval`).
pub(crate) fn task_2025(task: &Task) -> Value {
    serde_json::to_value(task).unwrap_or(Value::Null)
}

/// A task as the 2026-07-28 extension puts it on the wire (`ttlMs`,
/// `pollIntervalMs`).
pub(crate) fn task_2026(task: &Task) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("taskId".into(), json!(task.task_id));
    out.insert("status".into(), json!(task.status));
    if let Some(message) = &task.status_message {
        out.insert("statusMessage".into(), json!(message));
    }
    out.insert("createdAt".into(), json!(task.created_at));
    out.insert("lastUpdatedAt".into(), json!(task.last_updated_at));
    out.insert("ttlMs".into(), json!(task.ttl));
    if let Some(poll) = task.poll_interval {
        out.insert("pollIntervalMs".into(), json!(poll));
    }
    out
}

/// `CreateTaskResult` of 2025-11-25: `{task}`.
pub(crate) fn create_result_2025(task: &Task) -> Value {
    json!({"task": task_2025(task)})
}

/// `CreateTaskResult` of 2026-07-28: the task, flat, `resultType: "task"`.
pub(crate) fn create_result_2026(task: &Task) -> Value {
    let mut out = task_2026(task);
    out.insert("resultType".into(), json!("task"));
    Value::Object(out)
}

/// `tasks/get` of 2026-07-28: the task with what its status carries
/// inlined (`inputRequests`, `result` or `error`), `resultType: "complete"`.
pub(crate) fn detailed_task_2026(detail: &TaskDetail) -> Value {
    let task = &detail.record.task;
    let mut out = task_2026(task);
    match task.status {
        TaskStatus::InputRequired => {
            let requests: Map<String, Value> = detail
                .input_requests
                .iter()
                .map(|r| {
                    (
                        r.key.clone(),
                        json!({"method": r.method, "params": r.params}),
                    )
                })
                .collect();
            out.insert("inputRequests".into(), Value::Object(requests));
        }
        TaskStatus::Completed => {
            let result = match &detail.outcome {
                Some(Outcome::ToolResult(result)) => result.clone(),
                _ => json!({}),
            };
            out.insert("result".into(), result);
        }
        TaskStatus::Failed => {
            let error = match &detail.outcome {
                Some(Outcome::RpcError(error)) => error.clone(),
                other => json!({
                    "code": crate::error::INTERNAL_ERROR,
                    "message": "the task failed",
                    "data": other.as_ref().map(|o| match o {
                        Outcome::ToolResult(v) | Outcome::RpcError(v) => v.clone(),
                    }),
                }),
            };
            out.insert("error".into(), error);
        }
        TaskStatus::Working | TaskStatus::Cancelled => {}
    }
    out.insert("resultType".into(), json!("complete"));
    Value::Object(out)
}

/// `tasks/list` of 2025-11-25.
pub(crate) fn list_2025(page: &TaskPage) -> Value {
    let mut out = Map::new();
    out.insert(
        "tasks".into(),
        Value::Array(page.tasks.iter().map(task_2025).collect()),
    );
    if let Some(cursor) = &page.next_cursor {
        out.insert("nextCursor".into(), json!(cursor));
    }
    Value::Object(out)
}

/// A tool result as `tasks/result` returns it in 2025-11-25: exactly the
/// `CallToolResult`, with the related task in its `_meta`.
pub(crate) fn related_result(result: &Value, task_id: &str) -> Value {
    let mut out = object(result.clone());
    let meta = out
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert(RELATED_TASK.into(), json!({"taskId": task_id}));
    }
    Value::Object(out)
}

/// The empty acknowledgement of 2026-07-28 `tasks/update` and `tasks/cancel`.
pub(crate) fn acknowledgement() -> Value {
    json!({"resultType": "complete"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: TaskStatus) -> Task {
        serde_json::from_value(json!({
            "taskId": "t1",
            "status": status,
            "createdAt": "2026-11-27T00:00:00.000Z",
            "lastUpdatedAt": "2026-11-27T00:00:01.000Z",
            "ttl": null,
            "pollInterval": 500,
        }))
        .expect("a task")
    }

    #[test]
    fn each_revision_names_its_fields() {
        let old = task_2025(&task(TaskStatus::Working));
        assert_eq!(old["ttl"], Value::Null);
        assert_eq!(old["pollInterval"], 500);
        let new = create_result_2026(&task(TaskStatus::Working));
        assert_eq!(new["ttlMs"], Value::Null);
        assert_eq!(new["pollIntervalMs"], 500);
        assert_eq!(new["resultType"], "task");
        assert!(new.get("ttl").is_none() && new.get("task").is_none());
        let created = create_result_2025(&task(TaskStatus::Working));
        assert_eq!(created["task"]["taskId"], "t1");
    }

    #[test]
    fn the_related_task_joins_existing_meta() {
        let result = json!({"content": [], "_meta": {"other": 1}});
        let out = related_result(&result, "t1");
        assert_eq!(out["_meta"]["other"], 1);
        assert_eq!(out["_meta"][RELATED_TASK]["taskId"], "t1");
        assert_eq!(out["content"], json!([]));
    }
}
