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
mod metadata;
mod origin;
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
pub use origin::{BadOrigin, OriginPolicy, LOOPBACK_ORIGINS};
pub use session::SessionSeal;

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
    /// Host names the server answers to (default: the loopback names).
    pub hosts: HostPolicy,
    /// Turns credentials into owners; without one, a request carrying an
    /// `Authorization` header is refused (401) and the others are served as
    /// the server's fallback identity.
    pub authenticate: Option<Arc<dyn Authenticate>>,
    /// This server as an OAuth protected resource: its metadata document
    /// is served (RFC 9728) and every 401 names it.
    pub protected_resource: Option<ProtectedResource>,
    /// Seals 2025-11-25 session ids; every replica of a deployment needs
    /// the same (default: a random key, sessions served by one replica).
    pub session_seal: Option<SessionSeal>,
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
            hosts: HostPolicy::default(),
            authenticate: None,
            protected_resource: None,
            session_seal: None,
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
            .field("hosts", &self.hosts)
            .field("authenticate", &self.authenticate.is_some())
            .field("protected_resource", &self.protected_resource)
            .field("session_seal", &self.session_seal.is_some())
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

    /// With these host names.
    pub fn with_hosts(mut self, hosts: HostPolicy) -> Self {
        self.hosts = hosts;
        self
    }

    /// With this authenticator.
    pub fn with_authenticate(mut self, authenticate: Arc<dyn Authenticate>) -> Self {
        self.authenticate = Some(authenticate);
        self
    }

    /// With this protected resource's metadata.
    pub fn with_protected_resource(mut self, resource: ProtectedResource) -> Self {
        self.protected_resource = Some(resource);
        self
    }

    /// With session ids sealed by `seal` (from the deployment's secret).
    pub fn with_session_seal(mut self, seal: SessionSeal) -> Self {
        self.session_seal = Some(seal);
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

/// An HMAC-SHA-256 keyed by the deployment's `secret` for one `label`d
/// use: one secret keys several things, none of which can stand for another.
fn labelled_mac(secret: &[u8], label: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::{KeyInit, Mac};
    let mut key = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    key.update(label);
    key.update(b"\0");
    key
}

/// 32 random bytes, a secret of this process alone.
fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).unwrap_or_else(|e| panic!("no randomness for a key: {e}"));
    secret
}

/// `bytes` as lowercase hexadecimal (digests in owner ids and session ids).
fn lower_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

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
