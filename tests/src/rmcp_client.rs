//! An rmcp client connected to a server in the same process over an
//! in-memory stream: how the tests and the `protocol` benchmark talk to
//! `DurableTaskServer` (and to rmcp's own task manager) through rmcp.

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{RoleClient, RunningService};
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
    let client = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::from_build_env(),
    );
    client
        .serve(client_side)
        .await
        .expect("connecting the rmcp client")
}
