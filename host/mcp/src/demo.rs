//! The demonstration tools: the fixtures the official conformance suite
//! calls (`greet`, `slow_compute`, `failing_job`, `protocol_error_job`,
//! `confirm_delete`, `multi_input`, `test_tool_with_task`), each showing one
//! part of running tools as durable tasks, and two of real-sized payloads
//! (`large_result`, an image and a document; `echo`, its argument back).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pmcp_tasks_host::InputRequest;
use rmcp::model::Tool;
use serde_json::{json, Map, Value};

use crate::error::RpcError;
use crate::server::{Preparation, PrepareFuture, TaskTools, ToolCall, ToolFuture, ToolSpec};
use crate::support::TaskSupport;
use crate::worker::{ToolExit, ToolOutcome, Worker};

/// The demonstration tools (no state of their own: everything a task
/// holds is in the store).
#[derive(Debug, Clone, Copy, Default)]
#[expect(clippy::exhaustive_structs, reason = "a unit struct: nothing to add")]
pub struct DemoTools;

fn tool(name: &'static str, description: &'static str, schema: Value) -> Tool {
    let schema = match schema {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Tool::new(name, description, Arc::new(schema))
}

fn text(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": false})
}

fn elicit(key: &str, message: &str) -> InputRequest {
    let params = json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {"type": "boolean"}},
        },
    });
    InputRequest::new(
        key,
        "elicitation/create",
        params.as_object().cloned().unwrap_or_default(),
    )
}

fn object_schema(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

/// The demonstration tools, built once: a call looks its tool up without
/// building every schema again, and the argument check finds the schema
/// it compiled by pointer.
fn specs() -> &'static [ToolSpec] {
    static SPECS: OnceLock<Vec<ToolSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let spec = ToolSpec::new;
        vec![
            spec(
                tool(
                    "greet",
                    "Greets by name, at once (never a task).",
                    object_schema(json!({"name": {"type": "string"}})),
                ),
                TaskSupport::Forbidden,
            ),
            spec(
                tool(
                    "slow_compute",
                    "Works for `seconds` seconds, then answers; cancellable. As a task, \
                     its structured content names its run: the attempt, the replica, \
                     and how many ran in that process when it started.",
                    object_schema(
                        json!({"seconds": {"type": "number"}, "label": {"type": "string"}}),
                    ),
                ),
                TaskSupport::Optional,
            ),
            spec(
                tool(
                    "failing_job",
                    "Runs for a second, then reports a tool error (isError).",
                    object_schema(json!({})),
                ),
                TaskSupport::Required,
            ),
            spec(
                tool(
                    "protocol_error_job",
                    "Fails with a JSON-RPC error (the task is failed).",
                    object_schema(json!({})),
                ),
                TaskSupport::Optional,
            ),
            spec(
                tool(
                    "confirm_delete",
                    "Asks the user to confirm, then answers.",
                    object_schema(json!({"path": {"type": "string"}})),
                ),
                TaskSupport::Optional,
            ),
            spec(
                tool(
                    "multi_input",
                    "Asks two questions at once, then answers.",
                    object_schema(json!({})),
                ),
                TaskSupport::Optional,
            ),
            spec(
                tool(
                    "test_tool_with_task",
                    "Asks for a user name in a multi round-trip round, then runs as a task.",
                    object_schema(json!({})),
                ),
                TaskSupport::Required,
            ),
            spec(
                tool(
                    "large_result",
                    "Answers with an image block of `image_kib` KiB of base64 and a text of \
                     `text_kib` KiB (at most 16 MiB each), as tools returning images and \
                     documents do.",
                    object_schema(json!({
                        "text_kib": {"type": "integer", "minimum": 0},
                        "image_kib": {"type": "integer", "minimum": 0},
                    })),
                ),
                TaskSupport::Optional,
            ),
            spec(
                tool(
                    "echo",
                    "Answers with its `text` argument, whatever its size.",
                    object_schema(json!({"text": {"type": "string"}})),
                ),
                TaskSupport::Optional,
            ),
        ]
    })
}

/// `bytes` bytes cycling through the base64 alphabet: what an encoded
/// image looks like to the store, and easy to check on the way back.
fn base64_like(bytes: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..bytes).map(|i| char::from(ALPHABET[i % 64])).collect()
}

/// A `large_result` size argument, in bytes (at most 16 MiB).
fn kib_argument(args: &Map<String, Value>, name: &str) -> usize {
    let kib = args
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(16 * 1024);
    usize::try_from(kib).unwrap_or(0) * 1024
}

impl TaskTools for DemoTools {
    fn tools(&self) -> Vec<ToolSpec> {
        specs().to_vec()
    }

    fn tool(&self, name: &str) -> Option<ToolSpec> {
        specs().iter().find(|s| s.tool.name == name).cloned()
    }

    fn prepare(&self, call: &ToolCall) -> PrepareFuture {
        Box::pin(std::future::ready(match ask_first(call) {
            Some(requests) => Preparation::Ask(requests),
            None => Preparation::Ready,
        }))
    }

    fn call(&self, call: ToolCall, worker: Option<Worker>) -> ToolFuture {
        Box::pin(run(call, worker))
    }
}

/// The input `test_tool_with_task` gathers before it runs as a task.
fn ask_first(call: &ToolCall) -> Option<Map<String, Value>> {
    if call.name != "test_tool_with_task" || call.input_responses.contains_key("user_name") {
        return None;
    }
    let ask = json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": "What is your name?",
            "requestedSchema": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
    });
    let mut requests = Map::new();
    requests.insert("user_name".into(), ask);
    Some(requests)
}

/// Sleeps `duration`, or stops early when the task is cancelled.
async fn work(duration: Duration, worker: &Option<Worker>) -> Result<(), ToolExit> {
    match worker {
        Some(worker) => tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = worker.cancellation().cancelled() => Err(ToolExit::Cancelled),
        },
        None => {
            tokio::time::sleep(duration).await;
            Ok(())
        }
    }
}

/// `slow_compute` runs in this process now.
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

/// One `slow_compute` run counted in [`SLOW_RUNS`] while it lives.
struct CountedRun;

impl CountedRun {
    /// Counts a run in; how many run now, this one included.
    fn start() -> (Self, usize) {
        (CountedRun, SLOW_RUNS.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

impl Drop for CountedRun {
    fn drop(&mut self) {
        SLOW_RUNS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How much work `slow_compute` does between two checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// `slow_compute` as a retryable task: the work is done in steps, each
/// one's end checkpointed (`{"doneMs": n}`), and a later run starts where
/// the last checkpoint says. When the replica stops, the work done so far
/// is checkpointed and the run ends, to be resumed elsewhere. Returns
/// where this run started.
async fn compute_resumably(needed: Duration, worker: &Worker) -> Result<Duration, ToolExit> {
    let start = worker
        .checkpoint_value()
        .and_then(|c| c.get("doneMs"))
        .and_then(Value::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(needed);
    let mut done = start;
    let save = |done: Duration| {
        let done_ms = u64::try_from(done.as_millis()).unwrap_or(u64::MAX);
        async move { worker.checkpoint(&json!({"doneMs": done_ms})).await }
    };
    while done < needed {
        let step = CHECKPOINT_EVERY.min(needed - done);
        let began = tokio::time::Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(step) => done += step,
            _ = worker.cancellation().cancelled() => return Err(ToolExit::Cancelled),
            _ = worker.stopping().cancelled() => {
                done += began.elapsed().min(step);
                save(done).await?;
                return Err(ToolExit::Interrupted);
            }
        }
        save(done).await?;
    }
    Ok(start)
}

async fn run(call: ToolCall, worker: Option<Worker>) -> ToolOutcome {
    let args = &call.arguments;
    match call.name.as_str() {
        "greet" => {
            let name = args.get("name").and_then(Value::as_str).unwrap_or("world");
            Ok(text(format!("Hello, {name}!")))
        }
        "slow_compute" => {
            let seconds = args
                .get("seconds")
                .and_then(Value::as_f64)
                .unwrap_or(1.0)
                .clamp(0.0, 3_600.0);
            let label = args.get("label").and_then(Value::as_str).unwrap_or("job");
            // The process's concurrency only rises when a run starts: the
            // most any run saw at its start is the most there ever were.
            let (_counted, running) = CountedRun::start();
            if let Some(worker) = &worker {
                worker.progress(&format!("computing {label}")).await?;
            }
            let needed = Duration::from_secs_f64(seconds);
            let resumed_from = match &worker {
                Some(worker) if worker.may_run_again() => compute_resumably(needed, worker).await?,
                _ => {
                    work(needed, &worker).await?;
                    Duration::ZERO
                }
            };
            let mut result = text(format!("{label}: computed after {seconds} s"));
            if let Some(worker) = &worker {
                let mut run = json!({
                    "attempt": worker.attempt(),
                    "replica": worker.replica(),
                    "runningAtStart": running,
                });
                if worker.attempt() > 1 {
                    run["resumedFromMs"] =
                        json!(u64::try_from(resumed_from.as_millis()).unwrap_or(u64::MAX));
                }
                result["structuredContent"] = run;
            }
            Ok(result)
        }
        "failing_job" => {
            work(Duration::from_secs(1), &worker).await?;
            Ok(json!({"content": [{"type": "text", "text": "the job failed"}], "isError": true}))
        }
        "protocol_error_job" => Err(ToolExit::Failed(RpcError {
            data: Some(json!({"reason": "the job crashed"})),
            ..RpcError::internal("protocol_error_job: internal failure")
        })),
        "confirm_delete" => {
            let path = args
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("the file")
                .to_owned();
            let Some(worker) = &worker else {
                return Ok(text(format!(
                    "{path}: not deleted (no way to ask for confirmation)"
                )));
            };
            let answers = worker
                .ask(&[elicit("confirm", &format!("Delete {path}?"))])
                .await?;
            let accepted =
                answers[0].response.get("action").and_then(Value::as_str) == Some("accept");
            Ok(text(if accepted {
                format!("{path}: deleted")
            } else {
                format!("{path}: kept")
            }))
        }
        "multi_input" => {
            let Some(worker) = &worker else {
                return Ok(text("nothing asked"));
            };
            let answers = worker
                .ask(&[
                    elicit("first", "First question?"),
                    elicit("second", "Second question?"),
                ])
                .await?;
            let actions: Vec<&str> = answers
                .iter()
                .map(|a| {
                    a.response
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                })
                .collect();
            Ok(text(format!("answers: {}", actions.join(", "))))
        }
        "test_tool_with_task" => {
            let name = call
                .input_responses
                .get("user_name")
                .and_then(|r| r.get("content"))
                .and_then(|c| c.get("name").or_else(|| c.get("user_name")))
                .and_then(Value::as_str)
                .unwrap_or("stranger")
                .to_owned();
            work(Duration::from_millis(200), &worker).await?;
            Ok(text(format!(
                "Hello, {name}! (gathered before the task ran)"
            )))
        }
        "large_result" => {
            let mut content = Vec::new();
            let image = kib_argument(args, "image_kib");
            if image > 0 {
                let data = base64_like(image);
                content.push(json!({"type": "image", "mimeType": "image/png", "data": data}));
            }
            let document = base64_like(kib_argument(args, "text_kib"));
            content.push(json!({"type": "text", "text": document}));
            Ok(json!({"content": content, "isError": false}))
        }
        "echo" => {
            let given = args.get("text").and_then(Value::as_str).unwrap_or_default();
            Ok(text(given))
        }
        other => Err(RpcError::invalid_params(format!("unknown tool: {other}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_is_found_as_listed_and_built_once() {
        let tools = DemoTools.tools();
        for listed in &tools {
            let found = DemoTools.tool(&listed.tool.name).expect("found by name");
            assert_eq!(found.task_support, listed.task_support);
            // The same schema, not an equal one: the argument check's
            // compiled validator is found by pointer.
            assert!(Arc::ptr_eq(
                &found.tool.input_schema,
                &listed.tool.input_schema
            ));
        }
        assert!(DemoTools.tool("no_such_tool").is_none());
    }
}
