//! `pmcp-tasks serve`: an MCP server with the demonstration tools, its
//! tool calls running as durable tasks, plus the store's upkeep.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pmcp_tasks_host::TaskHost;
use pmcp_tasks_mcp::demo::DemoTools;
use pmcp_tasks_mcp::http::{HttpOptions, OriginPolicy, TokenDigest, LOOPBACK_ORIGINS};
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
    /// A bearer token's owner is a keyed digest of it (keyed by
    /// --cursor-secret, the deployment's secret), never the token.
    #[arg(long, default_value = "anonymous")]
    identity: String,
    /// A browser origin allowed to call (`scheme://host[:port]`, port `*` for
    /// any); repeat for more. Default: pages on loopback. A request with
    /// any other Origin gets 403; one without Origin is not from a page.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// HTTP connections served at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// The longest a connection may take to send a request's headers, and
    /// may stay idle between requests, in ms.
    #[arg(long, default_value_t = 15_000)]
    header_timeout_ms: u64,
    /// The longest a request body may take to arrive, in ms.
    #[arg(long, default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// The largest HTTP request body, in bytes.
    #[arg(long, default_value_t = pmcp_tasks_mcp::gate::MAX_MESSAGE_BYTES)]
    max_body_bytes: usize,
    /// How long a cancelled task's tool may run on to return its own
    /// outcome before it is stopped, in ms.
    #[arg(long, default_value_t = 5_000)]
    cancel_grace_ms: u64,
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
/// `secret` is the deployment's secret (the cursor secret), if one was given.
pub async fn run(host: TaskHost, args: ServeArgs, secret: Option<&[u8]>) -> Result<()> {
    let mut config = ServiceConfig::default();
    config.replica = args.replica.clone();
    config.lease = Duration::from_millis(args.lease_ms);
    config.cancel_grace = Duration::from_millis(args.cancel_grace_ms);
    let service = TaskService::new(host.clone(), config);
    let server = DurableTaskServer::new(service, Arc::new(DemoTools), args.identity.clone());
    let shutdown = CancellationToken::new();
    tokio::spawn(upkeep(
        host,
        Duration::from_millis(args.upkeep_ms),
        shutdown.clone(),
    ));
    let served = match args.listen.clone() {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding {address}"))?;
            let options = http_options(&args, secret)?;
            eprintln!(
                "pmcp-tasks: serving MCP at http://{}/mcp",
                listener.local_addr()?
            );
            pmcp_tasks_mcp::http::serve(listener, server, options, shutdown.clone())
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

/// The HTTP guards from the command line.
fn http_options(args: &ServeArgs, secret: Option<&[u8]>) -> Result<HttpOptions> {
    let origins = if args.allow_origins.is_empty() {
        OriginPolicy::new(LOOPBACK_ORIGINS)
    } else {
        OriginPolicy::new(&args.allow_origins)
    }?;
    let digest = match secret {
        Some(secret) => TokenDigest::new(secret),
        None => {
            tracing::warn!(
                "no --cursor-secret: bearer tokens are keyed by a random secret, so their tasks \
                 are visible on this replica only and only until it exits"
            );
            TokenDigest::random()
        }
    };
    Ok(HttpOptions::default()
        .with_origins(origins)
        .with_authenticate(Arc::new(digest))
        .with_max_connections(args.max_connections)
        .with_header_timeout(Duration::from_millis(args.header_timeout_ms))
        .with_body_timeout(Duration::from_millis(args.body_timeout_ms))
        .with_max_body_bytes(args.max_body_bytes))
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
