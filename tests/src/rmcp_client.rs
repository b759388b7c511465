//! rmcp clients declaring the tasks extension: connected to a server in
//! the same process over an in-memory stream, or over Streamable HTTP
//! (rmcp's reqwest client, as an application using rmcp connects): how
//! the tests and the `protocol` benchmarks talk to `DurableTaskServer`
//! (and to rmcp's own task manager) through rmcp.

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ServerHandler, ServiceExt};

/// A running rmcp client session.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// Serves `server` on one end of a duplex stream and connects a client
/// declaring the tasks extension to the other; the server runs until the
/// client goes away.
pub async fn connect<S: ServerHandler>(server: S) -> Client {
    let (server_side, client_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_side).await {
            let _ = running.waiting().await;
        }
    });
    client_config()
        .serve(client_side)
        .await
        .expect("connecting the rmcp client")
}

/// An rmcp client session over Streamable HTTP to the MCP endpoint at
/// `url`, with up to `in_flight` POSTs at once. rmcp's client opens it
/// with `initialize` asking for 2026-07-28 and declaring the extension.
pub async fn connect_http(url: &str, in_flight: usize) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(url).max_concurrent_requests(in_flight);
    client_config()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("connecting the rmcp HTTP client")
}

/// What the clients declare: the tasks extension.
fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::from_build_env(),
    )
}
