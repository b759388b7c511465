//! Serving a [`DurableTaskServer`] over MCP Streamable HTTP (rmcp's
//! service on hyper), bound to a listener the caller chose, hard to knock
//! over:
//!
//! - every request passes the front first: the `Origin` policy
//!   (403), the credentials (401 with `WWW-Authenticate: Bearer` naming
//!   the [`ProtectedResource`] metadata, served at its well-known paths), a
//!   bounded body read within a deadline (413, 408), and the JSON-RPC gate
//!   (-32700 and -32600 with HTTP 400, -32602 naming the field); rmcp sees
//!   only messages it can parse, with the verified [`Principal`](crate::Principal)
//!   attached and the `Authorization` header removed;
//! - at most [`HttpOptions::max_connections`] connections at once (more
//!   wait in the listen backlog); a connection must send each request head
//!   within [`HttpOptions::header_timeout`], also between requests, so idle
//!   and half-sent connections are closed;
//! - an accept error (out of file descriptors, say) backs off and retries:
//!   the server never ends on one.

mod auth;
mod core_session;
mod front;
mod host;
mod keys;
mod metadata;
mod options;
mod origin;
mod response;
mod session;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::{
    bearer_token, AuthError, AuthFuture, Authenticate, JwksError, JwksSource, JwtConfigError,
    JwtVerifier, StaticTokens, TokenDigest, TokenFileError, TokenProblem, TrustedHeader, WallClock,
    ASYMMETRIC_ALGORITHMS,
};
pub use host::{HostPolicy, LOOPBACK_HOSTS};
pub use metadata::ProtectedResource;
pub use options::{HttpOptions, MCP_PATH};
pub use origin::{BadOrigin, OriginPolicy, LOOPBACK_ORIGINS};
pub use session::SessionSeal;

use crate::server::{DurableTaskServer, TaskTools};
use front::Front;

/// The first and the longest pause after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// How long in-flight requests get to be answered once `shutdown` fires.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Serves `server` at `http://<listener>/mcp` until `shutdown` is
/// cancelled. Every connection gets its own task; neither a failing
/// connection nor a failing accept stops the server.
///
/// On `shutdown` it stops accepting, lets every connection finish the
/// request it is answering (idle keep-alive connections close at once),
/// and returns when they have, or after 30 s. Pair it with
/// [`TaskService::shutdown`](crate::TaskService::shutdown), run beside
/// it, so that blocking `tasks/result` requests are answered as the
/// replica's tasks end.
pub async fn serve<T: TaskTools>(
    listener: TcpListener,
    server: DurableTaskServer<T>,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let header_timeout = options.header_timeout;
    let front = Arc::new(Front::new(server, options, shutdown.child_token()));
    let connections = TaskTracker::new();
    let mut backoff = Duration::ZERO;
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.unwrap_or_else(|_| unreachable!("never closed")),
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1);
                tracing::warn!(error = %e, retry_in = ?backoff, "accepting a connection failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let front = front.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let front = front.clone();
                async move { Ok::<_, std::convert::Infallible>(front.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "MCP HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_LIMIT, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain limit"
        );
    }
    Ok(())
}
