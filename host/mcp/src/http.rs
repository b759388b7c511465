//! Serving a [`DurableTaskServer`] over MCP Streamable HTTP (rmcp's
//! service on hyper), bound to a listener the caller chose.

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{DurableTaskServer, TaskTools};

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// Serves `server` at `http://<listener>/mcp` until `shutdown` is
/// cancelled. Every connection gets its own task; a failing connection
/// never stops the server.
pub async fn serve<T: TaskTools>(
    listener: TcpListener,
    server: DurableTaskServer<T>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = shutdown.child_token();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "MCP HTTP connection ended with an error");
            }
        });
    }
}
