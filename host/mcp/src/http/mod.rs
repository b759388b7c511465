//! Serving a [`DurableTaskServer`] over MCP Streamable HTTP (rmcp's
//! service on hyper), bound to a listener the caller chose, hard to knock
//! over:
//!
//! - every request passes the front first: the `Origin` policy
//!   (403), the credentials (401 with `WWW-Authenticate: Bearer`), a
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
mod front;
mod origin;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use auth::{bearer_token, AuthError, AuthFuture, Authenticate, TokenDigest};
pub use origin::{BadOrigin, OriginPolicy, LOOPBACK_ORIGINS};

use crate::server::{DurableTaskServer, TaskTools};
use front::Front;

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// How the HTTP server guards itself.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Browser origins allowed to call (default: pages on loopback).
    pub origins: OriginPolicy,
    /// Turns credentials into owners; without one, a request carrying an
    /// `Authorization` header is refused (401) and the others are served as
    /// the server's fallback identity.
    pub authenticate: Option<Arc<dyn Authenticate>>,
    /// Connections served at once.
    pub max_connections: usize,
    /// The longest a connection may take to send a request's head, and
    /// the longest it may stay idle between requests.
    pub header_timeout: Duration,
    /// The longest a request's body may take to arrive.
    pub body_timeout: Duration,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            origins: OriginPolicy::default(),
            authenticate: None,
            max_connections: 1024,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            max_body_bytes: crate::gate::MAX_MESSAGE_BYTES,
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("origins", &self.origins)
            .field("authenticate", &self.authenticate.is_some())
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl HttpOptions {
    /// With these allowed origins.
    pub fn with_origins(mut self, origins: OriginPolicy) -> Self {
        self.origins = origins;
        self
    }

    /// With this authenticator.
    pub fn with_authenticate(mut self, authenticate: Arc<dyn Authenticate>) -> Self {
        self.authenticate = Some(authenticate);
        self
    }

    /// With at most `n` connections at once (at least 1).
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// With this header (and idle) timeout.
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// With this body timeout.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// With this body limit.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

/// The first and the longest pause after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Serves `server` at `http://<listener>/mcp` until `shutdown` is
/// cancelled. Every connection gets its own task; neither a failing
/// connection nor a failing accept stops the server.
pub async fn serve<T: TaskTools>(
    listener: TcpListener,
    server: DurableTaskServer<T>,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let header_timeout = options.header_timeout;
    let front = Arc::new(Front::new(server, options, shutdown.child_token()));
    let mut backoff = Duration::ZERO;
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            slot = slots.clone().acquire_owned() => slot.unwrap_or_else(|_| unreachable!("never closed")),
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
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
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let front = front.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let front = front.clone();
                async move { Ok::<_, std::convert::Infallible>(front.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "MCP HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
}
