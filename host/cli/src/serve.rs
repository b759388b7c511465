//! `pmcp-tasks serve`: an MCP server with the demonstration tools, its
//! tool calls running as durable tasks, plus the store's upkeep.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pmcp_tasks_host::TaskHost;
use pmcp_tasks_mcp::demo::DemoTools;
use pmcp_tasks_mcp::{DurableTaskServer, ServiceConfig, TaskService};
use tokio_util::sync::CancellationToken;

/// How to serve.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve Streamable HTTP at http://ADDR/mcp (a loopback address unless
    /// you put authentication in front); without it, serve stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The task owner of callers without a bearer token (and of stdio).
    #[arg(long, default_value = "anonymous")]
    identity: String,
    /// This replica's name (lease holders are NAME/N).
    #[arg(long, default_value = "replica")]
    replica: String,
    /// A worker's lease, in ms: a task whose worker is gone this long is failed.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// How often this replica reaps lost workers and removes expired tasks, in ms.
    #[arg(long, default_value_t = 5_000)]
    upkeep_ms: u64,
}

/// Serves until stdin closes (stdio) or the process is stopped (HTTP).
pub async fn run(host: TaskHost, args: ServeArgs) -> Result<()> {
    let mut config = ServiceConfig::default();
    config.replica = args.replica.clone();
    config.lease = Duration::from_millis(args.lease_ms);
    let service = TaskService::new(host.clone(), config);
    let server = DurableTaskServer::new(service, Arc::new(DemoTools), args.identity);
    let shutdown = CancellationToken::new();
    tokio::spawn(upkeep(
        host,
        Duration::from_millis(args.upkeep_ms),
        shutdown.clone(),
    ));
    let served = match args.listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding {address}"))?;
            eprintln!(
                "pmcp-tasks: serving MCP at http://{}/mcp",
                listener.local_addr()?
            );
            pmcp_tasks_mcp::http::serve(listener, server, shutdown.clone())
                .await
                .context("serving HTTP")
        }
        None => {
            pmcp_tasks_mcp::core_front::serve_lines(server, tokio::io::stdin(), tokio::io::stdout())
                .await
                .context("serving stdio")
        }
    };
    shutdown.cancel();
    served
}

/// Every `every`: fail the tasks whose worker was lost (on any replica)
/// and remove expired records, a bounded batch each.
async fn upkeep(host: TaskHost, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match host.reap_lost_workers(1_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(failed = n, "reaped tasks of lost workers"),
            Err(e) => tracing::warn!(error = %e, "reaping lost workers failed"),
        }
        if let Err(e) = host.cleanup_expired(1_000).await {
            tracing::warn!(error = %e, "removing expired tasks failed");
        }
    }
}
