//! An MCP server (Streamable HTTP) with the demonstration tools, durable
//! tasks on any backend: the server the conformance suite is run against.
//!
//! ```sh
//! cargo run -p pmcp-tasks-mcp --example fixture_server -- 127.0.0.1:8080 [BACKEND_URL]
//! ```

use std::sync::Arc;

use anyhow::{Context, Result};
use pmcp_tasks_host::{StoreConfig, TaskHost};
use pmcp_tasks_mcp::demo::DemoTools;
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let url = args.next().unwrap_or_else(|| "memory".into());
    let mut store = StoreConfig::default();
    store.cursor_secret = b"fixture server".to_vec();
    let host = TaskHost::builder()
        .backend(pmcp_tasks_host::backend::connect(&url).await?)
        .config(store)
        .build()
        .await?;
    let service = TaskService::new(host, ServiceConfig::default());
    let server = DurableTaskServer::new(service, Arc::new(DemoTools), "anonymous");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!(
        "listening on http://{}/mcp ({url} backend)",
        listener.local_addr()?
    );
    pmcp_tasks_mcp::http::serve(listener, server, CancellationToken::new()).await?;
    Ok(())
}
