//! Durable tasks in your own rmcp server: implement [`TaskTools`] for your
//! tools, put a [`DurableTaskServer`] over a store, serve it. Every tool
//! call that runs as a task lives in the shared store (Redis or DynamoDB
//! when a URL is given), so any replica answers `tasks/get` for it, a
//! replica's crash fails its tasks instead of leaving them `working`, and
//! the task logic runs sandboxed.
//!
//! ```sh
//! cargo run -p pmcp-tasks-mcp --example embed -- 127.0.0.1:8080 [BACKEND_URL]
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pmcp_tasks_host::{StoreConfig, TaskHost};
use pmcp_tasks_mcp::{
    DurableTaskServer, ServiceConfig, TaskService, TaskSupport, TaskTools, ToolCall, ToolExit,
    ToolFuture, ToolSpec, Worker,
};
use pmcp_tasks_mcp::{HttpOptions, TokenDigest};
use rmcp::model::Tool;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

/// One long-running tool: it reports progress and stops when cancelled.
struct Reports;

impl TaskTools for Reports {
    fn tools(&self) -> Vec<ToolSpec> {
        let schema = json!({"type": "object", "properties": {"pages": {"type": "integer"}}});
        let schema: Map<String, Value> = schema.as_object().cloned().unwrap_or_default();
        let tool = Tool::new(
            "build_report",
            "Builds a report, page by page.",
            Arc::new(schema),
        );
        vec![ToolSpec::new(tool, TaskSupport::Optional)]
    }

    fn call(&self, call: ToolCall, worker: Option<Worker>) -> ToolFuture {
        Box::pin(async move {
            let pages = call
                .arguments
                .get("pages")
                .and_then(Value::as_u64)
                .unwrap_or(3);
            for page in 1..=pages {
                if let Some(worker) = &worker {
                    if worker.cancellation().is_cancelled() {
                        return Err(ToolExit::Cancelled);
                    }
                    worker.progress(&format!("page {page} of {pages}")).await?;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(json!({"content": [{"type": "text", "text": format!("{pages} pages")}]}))
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let url = args.next().unwrap_or_else(|| "memory".into());
    let mut store = StoreConfig::default();
    // Replicas of one deployment share it, so cursors work on any of them.
    store.cursor_secret = b"shared by every replica".to_vec();
    let host = TaskHost::builder()
        .backend(pmcp_tasks_host::backend::connect(&url).await?)
        .config(store)
        .build()
        .await?;
    let service = TaskService::new(host, ServiceConfig::default());
    let server = DurableTaskServer::new(service, Arc::new(Reports), "anonymous");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("http://{}/mcp on the {url} backend", listener.local_addr()?);
    // Bearer tokens become owners as keyed digests; replicas share the key.
    let options = HttpOptions::default()
        .with_authenticate(Arc::new(TokenDigest::new(b"shared by every replica")));
    pmcp_tasks_mcp::serve_http(listener, server, options, CancellationToken::new()).await?;
    Ok(())
}
