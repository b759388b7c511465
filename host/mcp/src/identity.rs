//! Who a request comes from: the task owner every task call is scoped to.
//!
//! Over HTTP the front verifies the request's credentials and attaches a
//! [`Principal`] to it (see [`crate::http`]); the server reads it back.
//! The owner id is never a credential: it is what a verifier made of one
//! (a keyed digest of a token, a subject), so no token is ever stored.

use std::sync::Arc;

use rmcp::service::{RequestContext, RoleServer};

use crate::error::RpcError;

/// The verified owner of an HTTP request, attached to it by whatever
/// authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    owner: String,
}

impl Principal {
    /// The principal owning tasks as `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        Principal {
            owner: owner.into(),
        }
    }

    /// The owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

/// How a server learns the owner of a request: `Ok(None)` when the request
/// carries no identity (stdio, or HTTP without credentials: the server's
/// fallback identity applies), an error when it must not be served.
pub type Identify =
    Arc<dyn Fn(&RequestContext<RoleServer>) -> Result<Option<String>, RpcError> + Send + Sync>;

/// The default [`Identify`]: the [`Principal`] the HTTP front attached.
///
/// A request that still carries an `Authorization` header without a
/// principal reached the server past no verifier (served by a stack other
/// than [`crate::http::serve`]): it is refused rather than served as the
/// fallback identity, since its credentials were never checked.
pub fn principal_identity(
    context: &RequestContext<RoleServer>,
) -> Result<Option<String>, RpcError> {
    let Some(parts) = context.extensions.get::<http::request::Parts>() else {
        return Ok(None);
    };
    if let Some(principal) = parts.extensions.get::<Principal>() {
        return Ok(Some(principal.owner.clone()));
    }
    if parts.headers.contains_key(http::header::AUTHORIZATION) {
        return Err(RpcError::invalid_request(
            "this server verifies no credentials: serve it through pmcp_tasks_mcp::http \
             with an authenticator, or send no Authorization header",
        ));
    }
    Ok(None)
}
