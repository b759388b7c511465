//! The MCP 2025-11-25 task surface, one definition for every transport:
//! which requests of a 2025 session the task layer answers itself (rmcp
//! 3.11 parses none of them), the task capability, and each tool's
//! `execution.taskSupport`. `core_front` serves it on stdio beside rmcp;
//! the HTTP front serves whole 2025 sessions with it.

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Map, Value};

use crate::error::RpcError;
use crate::revision::{Revision, CORE_PROTOCOL_VERSION};
use crate::server::{DurableTaskServer, TaskTools};
use crate::service::Caller;
use crate::support::{decide, Execution, TaskSupport};

/// A request's answer, computed on a task of its own.
pub(crate) type Handled = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;

/// How a 2025 request is answered.
pub(crate) enum Answer {
    /// By the task layer (task methods, task-augmented calls, refusals).
    Now(Handled),
    /// A plain call of a tool whose arguments passed its schema: the
    /// transport runs it.
    Direct {
        /// The tool.
        name: String,
        /// Its checked arguments.
        arguments: Map<String, Value>,
    },
}

/// The 2025-11-25 server capability for tasks (top level, not experimental).
pub(crate) fn tasks_capability() -> Value {
    json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
}

/// Marks a tool (as `tools/list` shows it) with its task support.
pub(crate) fn mark_execution(tool: &mut Value, support: TaskSupport) {
    tool["execution"] = json!({"taskSupport": support.as_str()});
}

/// The `tools/list` result of a 2025-11-25 session: each tool with its
/// `execution.taskSupport`.
pub(crate) fn tools_list<T: TaskTools>(server: &DurableTaskServer<T>) -> Value {
    let tools: Vec<Value> = server
        .tool_specs()
        .into_iter()
        .map(|spec| {
            let mut tool = serde_json::to_value(&spec.tool).unwrap_or_default();
            mark_execution(&mut tool, spec.task_support);
            tool
        })
        .collect();
    json!({ "tools": tools })
}

/// The `initialize` result of a 2025-11-25 session: the server's
/// information with the top-level task capability.
pub(crate) fn initialize_result<T: TaskTools>(server: &DurableTaskServer<T>) -> Value {
    let info = rmcp::ServerHandler::get_info(server);
    let mut result = serde_json::to_value(info).unwrap_or_else(|_| json!({}));
    result["protocolVersion"] = json!(CORE_PROTOCOL_VERSION);
    let capabilities = &mut result["capabilities"];
    if let Some(fields) = capabilities.as_object_mut() {
        // The extension's capability means nothing to a 2025 client.
        fields.remove("extensions");
    }
    capabilities["tasks"] = tasks_capability();
    result
}

/// A 2025-11-25 request of `caller` the task layer answers, or `None` for
/// a method it does not own.
pub(crate) fn request<T: TaskTools>(
    server: &DurableTaskServer<T>,
    caller: &Caller,
    method: &str,
    params: Value,
) -> Option<Answer> {
    let server = server.clone();
    let caller = caller.clone();
    match method {
        "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" | "tasks/update" => {
            let method = method.to_owned();
            Some(Answer::Now(Box::pin(async move {
                server
                    .service()
                    .handle(&caller, &method, &params)
                    .await
                    .unwrap_or_else(|| Err(RpcError::method_not_found(&method)))
            })))
        }
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str)?.to_owned();
            let task = params.get("task").filter(|t| !t.is_null());
            let arguments = params
                .get("arguments")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let checked = server.checked_tool(&name, &arguments).and_then(|spec| {
                decide(Revision::V2025_11_25, spec.task_support, task, false)
                    .map(|execution| (spec, execution))
            });
            match checked {
                Ok((_, Execution::Direct)) => Some(Answer::Direct { name, arguments }),
                Err(e) => Some(Answer::Now(Box::pin(std::future::ready(Err(e))))),
                Ok((spec, Execution::Task { ttl_ms })) => Some(Answer::Now(Box::pin(async move {
                    server
                        .start_core_task(&caller, &spec, arguments, ttl_ms)
                        .await
                }))),
            }
        }
        _ => None,
    }
}
