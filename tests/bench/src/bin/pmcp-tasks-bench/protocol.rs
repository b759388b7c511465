//! `tasks/get` through rmcp end to end (client and server over an
//! in-process duplex stream): pmcp-tasks' durable store (memory, Redis)
//! beside rmcp's own in-process `TaskManager`, in the same run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pmcp_tasks_host::backend::KvBackend;
use pmcp_tasks_host::{Outcome, TaskHost, TaskRequest};
use pmcp_tasks_mcp::DemoTools;
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService, TaskTools};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult,
    GetTaskParams, GetTaskResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::task_manager::{TaskManager, TaskOptions};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{json, Map};
use tokio::task::JoinSet;

use pmcp_tasks_tests::rmcp_client::{connect, Client};

use crate::report::ProtocolRow;
use crate::{Backends, Sizes};

/// rmcp's own task support: tasks in this process's memory; every
/// `slow_compute` call from a client that declared the extension becomes
/// a task that finishes at once.
#[derive(Clone, Default)]
pub(crate) struct RmcpTasks {
    pub(crate) tasks: TaskManager,
}

impl ServerHandler for RmcpTasks {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
    }

    async fn call_tool(
        &self,
        _request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let declared = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        let done = || CallToolResult::success(vec![ContentBlock::text("job: computed after 0 s")]);
        if !declared {
            return Ok(CallToolResponse::Complete(done()));
        }
        let task = self.tasks.spawn(TaskOptions::new(), move |_| {
            Box::pin(async move { Ok(done()) })
        });
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }
}

/// Calls `tasks/get` for `task_id` from `callers` concurrent loops for
/// `sizes.run_for`; returns calls per second.
pub(crate) async fn throughput(
    client: &Client,
    task_id: &str,
    callers: usize,
    sizes: Sizes,
) -> (f64, u64) {
    let calls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + sizes.run_for;
    let start = Instant::now();
    let mut loops = JoinSet::new();
    for _ in 0..callers {
        let (peer, calls, id) = (client.peer().clone(), calls.clone(), task_id.to_owned());
        loops.spawn(async move {
            // At least one call each, so even a smoke run checks the path.
            loop {
                let got = peer.get_task(GetTaskParams::new(id.clone())).await;
                assert!(got.is_ok(), "tasks/get failed: {got:?}");
                calls.fetch_add(1, Ordering::Relaxed);
                if Instant::now() >= deadline {
                    break;
                }
            }
        });
    }
    while let Some(done) = loops.join_next().await {
        done.expect("a caller failed");
    }
    let calls = calls.load(Ordering::Relaxed);
    (calls as f64 / start.elapsed().as_secs_f64(), calls)
}

/// A completed task in our store, served by a `DurableTaskServer`.
pub(crate) async fn durable(
    factory: &dyn pmcp_tasks_tests::BackendFactory,
) -> (DurableTaskServer<DemoTools>, String) {
    let server = server_on(factory.fresh().await).await;
    let id = finished_task(server.service().host()).await;
    (server, id)
}

/// A `DurableTaskServer` (the conformance fixture tools) on `backend`,
/// with no quota (the benchmark's one owner creates many thousands).
pub(crate) async fn server_on(backend: Arc<dyn KvBackend>) -> DurableTaskServer<DemoTools> {
    server_with(backend, Arc::new(DemoTools)).await
}

/// A `DurableTaskServer` offering `tools` on `backend`, with no quota.
pub(crate) async fn server_with<T: TaskTools>(
    backend: Arc<dyn KvBackend>,
    tools: Arc<T>,
) -> DurableTaskServer<T> {
    let host = TaskHost::builder()
        .backend(backend)
        .config(pmcp_tasks_bench::unlimited_config())
        .build()
        .await
        .expect("host");
    let service = TaskService::new(host, ServiceConfig::default());
    DurableTaskServer::new(service, tools, OWNER)
}

/// Who calls without credentials (every caller here).
const OWNER: &str = "bench";

/// Creates a task of [`OWNER`] and completes it; its id.
pub(crate) async fn finished_task(host: &TaskHost) -> String {
    let request = TaskRequest::tool_call("slow_compute", Map::new());
    let created = host
        .create_task(OWNER, &request, None, None)
        .await
        .expect("create");
    let id = created.task.task_id;
    let result = json!({"content": [{"type": "text", "text": "done"}]});
    host.finish(OWNER, &id, &Outcome::ToolResult(result))
        .await
        .expect("finish");
    id
}

/// One figure per subject, the same callers and duration for each.
pub(crate) async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ProtocolRow> {
    let callers = sizes.redis_callers;
    let mut rows = Vec::new();
    let in_process = RmcpTasks::default();
    let task = in_process.tasks.spawn(TaskOptions::new(), |_| {
        Box::pin(async { Ok(CallToolResult::success(vec![ContentBlock::text("done")])) })
    });
    let client = connect(in_process.clone()).await;
    let (per_second, calls) = throughput(&client, &task.task_id, callers, sizes).await;
    rows.push(ProtocolRow::new(
        "rmcp TaskManager (one process's memory)",
        callers,
        per_second,
        calls,
    ));
    let _ = client.cancel().await;
    for (name, factory) in backends.list() {
        if name == "dynamodb" {
            continue;
        }
        let (server, id) = durable(factory).await;
        let client = connect(server).await;
        let (per_second, calls) = throughput(&client, &id, callers, sizes).await;
        let subject = format!("pmcp-tasks DurableTaskServer, {name} backend (sandboxed, shared)");
        rows.push(ProtocolRow::new(&subject, callers, per_second, calls));
        let _ = client.cancel().await;
    }
    rows
}
