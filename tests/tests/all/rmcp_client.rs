//! Through rmcp itself: a client over an in-process stream, and rmcp's
//! HTTP client through two replicas, read tasks the durable server holds. rmcp routes the extension's `tasks/get` to
//! the handler whatever version the session negotiated; the answer must be
//! the extension's shape (a session on rmcp's default version once got a
//! 2025-11-25 task without its `result`, which rmcp refused as invalid).

use std::sync::Arc;

use pmcp_tasks_host::backend::InMemoryBackend;
use pmcp_tasks_host::{Outcome, TaskHost, TaskRequest};
use pmcp_tasks_mcp::DemoTools;
use pmcp_tasks_mcp::{serve_http, HttpOptions, SessionSeal};
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService};
use pmcp_tasks_tests::rmcp_client::{connect, connect_http};
use pmcp_tasks_tests::round_robin::RoundRobin;
use rmcp::model::{CallToolRequestParams, CallToolResponse, GetTaskParams, TaskPayload};
use serde_json::{json, Map};
use tokio_util::sync::CancellationToken;

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

/// Serves `host` with `serve_http` on a loopback port, sessions sealed by
/// `seal`; its `host:port`.
async fn serve_replica(host: TaskHost, seal: &SessionSeal) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let service = TaskService::new(host, ServiceConfig::default());
    let server = DurableTaskServer::new(service, Arc::new(DemoTools), "anonymous");
    let options = HttpOptions::default().with_session_seal(seal.clone());
    tokio::spawn(serve_http(
        listener,
        server,
        options,
        CancellationToken::new(),
    ));
    address
}

/// rmcp's HTTP client opens its session with `initialize` asking for
/// 2026-07-28 and declaring the tasks extension. That request once went
/// to rmcp's own session manager, whose unsealed session id the next
/// request was refused with (404: "Session expired" before any call).
/// Now the session is sealed, any replica serves it, and its task calls
/// get the extension's answers: a task made by `tools/call` on one
/// replica is read to its result through the other.
#[tokio::test]
async fn rmcp_s_http_client_gets_extension_tasks_from_either_replica() {
    let backend = Arc::new(InMemoryBackend::new());
    let replica = || async {
        TaskHost::builder()
            .backend(backend.clone())
            .build()
            .await
            .unwrap()
    };
    let seal = SessionSeal::new(b"both replicas' secret");
    let a = serve_replica(replica().await, &seal).await;
    let b = serve_replica(replica().await, &seal).await;
    let proxy = RoundRobin::start(vec![a, b]).await;
    let client = connect_http(&proxy.url, 4).await;
    assert_eq!(
        client
            .peer()
            .peer_info()
            .map(|info| info.protocol_version.to_string()),
        Some("2025-11-25".to_owned()),
        "initialize negotiates the legacy revision"
    );
    let mut arguments = Map::new();
    arguments.insert("seconds".into(), json!(0));
    arguments.insert("label".into(), json!("rmcp"));
    let call = CallToolRequestParams::new("slow_compute").with_arguments(arguments);
    let made = client.peer().call_tool_once(call).await.unwrap();
    let CallToolResponse::Task(created) = made else {
        panic!("a task-creating call answered {made:?}");
    };
    let id = created.task.task_id;
    let mut result = None;
    for _ in 0..200 {
        let got = client
            .peer()
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .unwrap();
        if let TaskPayload::Completed { result: done } = got.task.payload {
            result = Some(done);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let result = result.expect("the task completed");
    assert_eq!(result["content"][0]["text"], "rmcp: computed after 0 s");
    let served = proxy
        .forwarded
        .iter()
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
        .collect::<Vec<_>>();
    assert!(
        served.iter().all(|&n| n > 0),
        "both replicas served: {served:?}"
    );
    let _ = client.cancel().await;
}
