//! [`DurableTaskServer`]: an rmcp [`ServerHandler`] whose tool calls run as
//! durable tasks in the shared store (MCP 2026-07-28 with the tasks
//! extension; rmcp routes `tasks/get`, `tasks/update` and `tasks/cancel`
//! here). Any replica over the same backend answers for any task.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pmcp_tasks_host::RetryPolicy;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ErrorCode, ErrorData, GetTaskParams,
    GetTaskResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    UpdateTaskParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::ServerHandler;
use serde_json::{json, Map, Value};
use tracing::{Instrument, Span};

use crate::arguments::ArgumentCheck;
use crate::error::RpcError;
use crate::identity::{principal_identity, Identify};
use crate::revision::Revision;
use crate::service::{Caller, TaskService, TaskStart};
use crate::support::{decide, Execution, TaskSupport};
use crate::trace;
use crate::worker::{ToolOutcome, Worker};

/// A boxed tool future.
pub type ToolFuture = Pin<Box<dyn Future<Output = ToolOutcome> + Send + 'static>>;

/// A boxed [`TaskTools::prepare`] future.
pub type PrepareFuture = Pin<Box<dyn Future<Output = Preparation> + Send + 'static>>;

/// What a call needs before it can run (MCP 2026-07-28 multi round-trip
/// requests, SEP-2322).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Preparation {
    /// Nothing: it runs now.
    Ready,
    /// Input first: the requests by key, each `{method, params}`. The
    /// client answers by calling again with `inputResponses`.
    Ask(Map<String, Value>),
    /// It already ran, to this outcome: learning whether it needed input
    /// meant running it (a task call then ends at once with it).
    Ran(ToolOutcome),
}

/// One tool the server offers, and whether it runs as a task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ToolSpec {
    /// The tool as `tools/list` shows it.
    pub tool: Tool,
    /// Whether calls of it may, must or must not run as tasks.
    pub task_support: TaskSupport,
    /// Whether a task of it may run again (on any replica) when its
    /// worker is lost or its replica hands it off at shutdown; `None`: at
    /// most once. Declare it only for a tool that is safe to run twice
    /// (idempotent, or resuming from its checkpoint).
    pub retry: Option<RetryPolicy>,
}

impl ToolSpec {
    /// `tool`, whose calls run as tasks as `task_support` says, at most once.
    pub fn new(tool: Tool, task_support: TaskSupport) -> Self {
        ToolSpec {
            tool,
            task_support,
            retry: None,
        }
    }

    /// The same tool, its tasks run again under `policy` (see [`ToolSpec::retry`]).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// One tool call as the tools see it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The call's arguments.
    pub arguments: Map<String, Value>,
    /// Responses the client sent with this round of the call (MCP
    /// multi round-trip requests), by key.
    pub input_responses: Map<String, Value>,
}

/// The tools of a server: what they are and how to run one call.
pub trait TaskTools: Send + Sync + 'static {
    /// Every tool, with its task support.
    fn tools(&self) -> Vec<ToolSpec>;

    /// The tool named `name`, if there is one: looked up for every call.
    /// By default found in [`Self::tools`]; override it when building
    /// every tool costs more than finding one.
    fn tool(&self, name: &str) -> Option<ToolSpec> {
        self.tools().into_iter().find(|s| s.tool.name == name)
    }

    /// What a call needs before it can start (2026-07-28 only): by
    /// default nothing. See [`Preparation`].
    fn prepare(&self, call: &ToolCall) -> PrepareFuture {
        let _ = call;
        Box::pin(std::future::ready(Preparation::Ready))
    }

    /// Runs one call, whose arguments already passed the tool's
    /// `inputSchema`. `worker` is given when the call runs as a task:
    /// through it the tool reports progress, asks for input and sees
    /// cancellation. The result is the `CallToolResult` (a tool's own error
    /// is a result with `isError: true`), a JSON-RPC error, or a stop on
    /// cancellation.
    fn call(&self, call: ToolCall, worker: Option<Worker>) -> ToolFuture;
}

/// An rmcp server running its tools as durable tasks.
pub struct DurableTaskServer<T> {
    service: TaskService,
    tools: Arc<T>,
    arguments: Arc<ArgumentCheck>,
    identify: Identify,
    fallback_identity: String,
    /// Retry policies the operator set, by tool name, over the tools' own.
    retries: Arc<BTreeMap<String, RetryPolicy>>,
}

impl<T> Clone for DurableTaskServer<T> {
    fn clone(&self) -> Self {
        DurableTaskServer {
            service: self.service.clone(),
            tools: self.tools.clone(),
            arguments: self.arguments.clone(),
            identify: self.identify.clone(),
            fallback_identity: self.fallback_identity.clone(),
            retries: self.retries.clone(),
        }
    }
}

impl<T: TaskTools> DurableTaskServer<T> {
    /// A server over `service` offering `tools`; callers without an
    /// identity (no verified credentials, stdio) are `fallback_identity`.
    pub fn new(service: TaskService, tools: Arc<T>, fallback_identity: impl Into<String>) -> Self {
        DurableTaskServer {
            service,
            tools,
            arguments: Arc::default(),
            identify: Arc::new(principal_identity),
            fallback_identity: fallback_identity.into(),
            retries: Arc::default(),
        }
    }

    /// Runs the tasks of the tool `name` under `policy`, whatever its
    /// [`ToolSpec::retry`] says (the operator knows which tools are safe
    /// to run twice). See [`ToolSpec::retry`].
    pub fn with_retry_policy(mut self, name: impl Into<String>, policy: RetryPolicy) -> Self {
        Arc::make_mut(&mut self.retries).insert(name.into(), policy);
        self
    }

    /// The retry policy of `spec`'s tasks.
    pub(crate) fn retry_of(&self, spec: &ToolSpec) -> Option<RetryPolicy> {
        self.retries
            .get(spec.tool.name.as_ref() as &str)
            .copied()
            .or(spec.retry)
    }

    /// The tools.
    pub(crate) fn tools(&self) -> &Arc<T> {
        &self.tools
    }

    /// Replaces how callers are identified (by default: the
    /// [`Principal`](crate::Principal) the HTTP front verified).
    pub fn with_identify(mut self, identify: Identify) -> Self {
        self.identify = identify;
        self
    }

    /// The task service underneath.
    pub fn service(&self) -> &TaskService {
        &self.service
    }

    /// A tool's task support; `None` for an unknown tool.
    pub(crate) fn task_support(&self, name: &str) -> Option<TaskSupport> {
        self.tools.tool(name).map(|s| s.task_support)
    }

    /// The tool a call names, once its arguments passed its `inputSchema`:
    /// an unknown tool and invalid arguments are -32602.
    pub(crate) fn checked_tool(
        &self,
        name: &str,
        arguments: &Map<String, Value>,
    ) -> Result<ToolSpec, RpcError> {
        let spec = self
            .tools
            .tool(name)
            .ok_or_else(|| RpcError::invalid_params(format!("unknown tool: {name}")))?;
        self.arguments.check(&spec.tool, arguments)?;
        Ok(spec)
    }

    /// The caller of a 2025-11-25 stdio session (no request identity).
    pub(crate) fn core_caller(&self) -> Caller {
        Caller {
            owner: self.fallback_identity.clone(),
            revision: Revision::V2025_11_25,
            declares_tasks_extension: false,
        }
    }

    /// The caller of a 2025-11-25 HTTP session: the verified owner, or the
    /// fallback identity.
    pub(crate) fn core_caller_as(&self, owner: Option<&str>) -> Caller {
        Caller {
            owner: owner.map_or_else(|| self.fallback_identity.clone(), str::to_owned),
            ..self.core_caller()
        }
    }

    /// Every tool the server offers, with its task support.
    pub(crate) fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools.tools()
    }

    /// Runs a plain call (not a task) of a tool whose arguments passed its
    /// schema: the `CallToolResult`.
    pub(crate) async fn call_direct(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let call = ToolCall {
            name: name.to_owned(),
            arguments,
            input_responses: Map::new(),
        };
        self.tools
            .call(call, None)
            .await
            .map_err(|e| e.into_rpc_error())
    }

    /// Starts a 2025-11-25 task-augmented `tools/call` of `spec`'s tool
    /// `name` for `caller`.
    pub(crate) async fn start_core_task(
        &self,
        caller: &Caller,
        spec: &ToolSpec,
        arguments: Map<String, Value>,
        ttl_ms: Option<u64>,
    ) -> Result<Value, RpcError> {
        let name = spec.tool.name.as_ref() as &str;
        let call = ToolCall {
            name: name.to_owned(),
            arguments: arguments.clone(),
            input_responses: Map::new(),
        };
        let tools = self.tools.clone();
        self.service
            .start_task(
                caller,
                name,
                arguments,
                TaskStart::new()
                    .with_ttl_ms(ttl_ms)
                    .with_retry(self.retry_of(spec))
                    .with_may_wait(true),
                move |worker| tools.call(call, Some(worker)),
            )
            .await
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        let owner = (self.identify)(context)
            .map_err(rpc_to_rmcp)?
            .unwrap_or_else(|| self.fallback_identity.clone());
        let revision = context
            .protocol_version()
            .map_or(Revision::V2026_07_28, |v| {
                Revision::of_protocol_version(v.as_str())
            });
        let declares = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        Ok(Caller {
            owner,
            revision,
            declares_tasks_extension: declares,
        })
    }

    /// A `tools/call` rmcp routed here: a plain call, a multi round-trip
    /// round, or a task.
    async fn answer_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let arguments = request.arguments.unwrap_or_default();
        let spec = self.checked_tool(&name, &arguments).map_err(rpc_to_rmcp)?;
        let caller = self.caller(&context)?;
        let execution = decide(
            caller.revision,
            spec.task_support,
            None,
            caller.declares_tasks_extension,
        )
        .map_err(rpc_to_rmcp)?;
        let call = ToolCall {
            name: name.clone(),
            arguments,
            input_responses: request
                .input_responses
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        let ran = match self.tools.prepare(&call).await {
            Preparation::Ready => None,
            Preparation::Ask(requests) => {
                let round = json!({"resultType": "input_required", "inputRequests": requests});
                return Ok(CallToolResponse::InputRequired(from_json(
                    round,
                    "InputRequiredResult",
                )?));
            }
            Preparation::Ran(outcome) => Some(outcome),
        };
        match execution {
            Execution::Direct => {
                let outcome = match ran {
                    Some(outcome) => outcome,
                    None => self.tools.call(call, None).await,
                };
                let mut result = outcome.map_err(|e| rpc_to_rmcp(e.into_rpc_error()))?;
                // A complete result says so (2026-07-28, SEP-2322); rmcp
                // strips the field again for older peers.
                if let Value::Object(fields) = &mut result {
                    fields
                        .entry("resultType")
                        .or_insert_with(|| json!("complete"));
                }
                Ok(CallToolResponse::Complete(from_json(
                    result,
                    "tool result",
                )?))
            }
            Execution::Task { ttl_ms } => {
                let tools = self.tools.clone();
                let arguments = call.arguments.clone();
                // A call that already ran is not run again; one with
                // answers given inline is run here (they are not stored).
                let retry = self.retry_of(&spec).filter(|_| ran.is_none());
                let stored_call_is_all = ran.is_none() && call.input_responses.is_empty();
                let start = TaskStart::new()
                    .with_ttl_ms(ttl_ms)
                    .with_retry(retry)
                    .with_may_wait(stored_call_is_all);
                let created = self
                    .service
                    .start_task(&caller, &name, arguments, start, move |worker| {
                        match ran {
                            // Ran already: the task ends with that outcome.
                            Some(outcome) => Box::pin(std::future::ready(outcome)),
                            None => tools.call(call, Some(worker)),
                        }
                    })
                    .await
                    .map_err(rpc_to_rmcp)?;
                Ok(CallToolResponse::Task(from_json(
                    created,
                    "CreateTaskResult",
                )?))
            }
        }
    }

    async fn task_method(
        &self,
        method: &str,
        params: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, ErrorData> {
        // rmcp routes the extension's task methods here, whatever version
        // the session negotiated: they answer in the extension's shapes.
        let caller = Caller {
            revision: Revision::V2026_07_28,
            ..self.caller(context)?
        };
        let task_id = params.get("taskId").and_then(Value::as_str);
        let span = request_span(method, None, task_id, context);
        match self
            .service
            .handle(&caller, method, &params)
            .instrument(span)
            .await
        {
            Some(answer) => answer.map_err(rpc_to_rmcp),
            None => Err(rpc_to_rmcp(RpcError::method_not_found(method))),
        }
    }
}

/// The span of one request rmcp routes here, parented on the trace
/// context of its `_meta` (read in place).
fn request_span(
    method: &str,
    tool: Option<&str>,
    task_id: Option<&str>,
    context: &RequestContext<RoleServer>,
) -> Span {
    let revision = context
        .protocol_version()
        .map_or(Revision::V2026_07_28, |v| {
            Revision::of_protocol_version(v.as_str())
        });
    trace::span_of(method, revision, tool, task_id, Some(&context.meta.0 .0))
}

/// Our JSON-RPC error as rmcp's.
pub(crate) fn rpc_to_rmcp(e: RpcError) -> ErrorData {
    ErrorData::new(ErrorCode(e.code), e.message, e.data)
}

fn from_json<R: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<R, ErrorData> {
    serde_json::from_value(value).map_err(|e| {
        ErrorData::internal_error(format!("the task layer built an invalid {what}: {e}"), None)
    })
}

impl<T: TaskTools> ServerHandler for DurableTaskServer<T> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .tools
            .tools()
            .into_iter()
            .map(|spec| spec.tool)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let span = request_span("tools/call", Some(&request.name), None, &context);
        self.answer_call(request, context).instrument(span).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let answer = self
            .task_method("tasks/get", json!({"taskId": request.task_id}), &context)
            .await?;
        from_json(answer, "GetTaskResult")
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let params = json!({"taskId": request.task_id, "inputResponses": request.input_responses});
        self.task_method("tasks/update", params, &context).await?;
        Ok(())
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_method("tasks/cancel", json!({"taskId": request.task_id}), &context)
            .await?;
        Ok(())
    }
}
