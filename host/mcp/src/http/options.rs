//! How the HTTP server is served and guarded: [`HttpOptions`].

use std::sync::Arc;
use std::time::Duration;

use super::auth::Authenticate;
use super::host::HostPolicy;
use super::metadata::ProtectedResource;
use super::origin::OriginPolicy;
use super::session::SessionSeal;

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
