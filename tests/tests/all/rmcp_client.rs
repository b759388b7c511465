//! Through rmcp itself: a client over an in-process stream reads a task
//! the durable server holds. rmcp routes the extension's `tasks/get` to
//! the handler whatever version the session negotiated; the answer must be
//! the extension's shape (a session on rmcp's default version once got a
//! 2025-11-25 task without its `result`, which rmcp refused as invalid).

use std::sync::Arc;

use pmcp_tasks_host::{Outcome, TaskHost, TaskRequest};
use pmcp_tasks_mcp::DemoTools;
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService};
use pmcp_tasks_tests::rmcp_client::connect;
use rmcp::model::{GetTaskParams, TaskPayload};
use serde_json::{json, Map};

#[tokio::test]
async fn an_rmcp_client_reads_a_completed_task_with_its_result() {
    let host = TaskHost::builder().build().await.unwrap();
    let request = TaskRequest::tool_call("slow_compute", Map::new());
    let id = host
        .create_task("anonymous", &request, None, None)
        .await
        .unwrap()
        .task
        .task_id;
    let result = json!({"content": [{"type": "text", "text": "done"}]});
    host.finish("anonymous", &id, &Outcome::ToolResult(result))
        .await
        .unwrap();
    let service = TaskService::new(host, ServiceConfig::default());
    let server = DurableTaskServer::new(service, Arc::new(DemoTools), "anonymous");
    let client = connect(server).await;
    let got = client
        .peer()
        .get_task(GetTaskParams::new(id))
        .await
        .unwrap();
    match got.task.payload {
        TaskPayload::Completed { result } => assert_eq!(result["content"][0]["text"], "done"),
        other => panic!("expected a completed task with its result, got {other:?}"),
    }
    let _ = client.cancel().await;
}
