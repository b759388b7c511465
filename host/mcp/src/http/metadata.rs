//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document an MCP
//! client reads to find the authorization server that issues tokens for
//! this server, and the `WWW-Authenticate` challenge that points to it.

use serde_json::{json, Value};
use url::Url;

use super::auth::AuthError;

/// The well-known path prefix of RFC 9728.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// This server as an OAuth protected resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    resource: Url,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
}

impl ProtectedResource {
    /// The resource identified by `resource`: the MCP endpoint's URL
    /// (`https://mcp.example.com/mcp`), the audience its tokens must name.
    pub fn new(resource: Url) -> Self {
        ProtectedResource {
            resource,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
        }
    }

    /// With the issuers of its tokens.
    pub fn with_authorization_servers(mut self, servers: Vec<String>) -> Self {
        self.authorization_servers = servers;
        self
    }

    /// With the scopes a client should ask for (also named in challenges).
    pub fn with_scopes_supported(mut self, scopes: Vec<String>) -> Self {
        self.scopes_supported = scopes;
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &Url {
        &self.resource
    }

    /// The paths the document is served at: the well-known path with the
    /// resource's path appended (RFC 9728, section 3.1), and the bare one.
    pub fn metadata_paths(&self) -> [String; 2] {
        let path = self.resource.path().trim_end_matches('/');
        [format!("{WELL_KNOWN}{path}"), WELL_KNOWN.to_owned()]
    }

    /// The document's URL, as the challenge names it.
    pub fn metadata_url(&self) -> String {
        let mut url = self.resource.clone();
        url.set_path(&self.metadata_paths()[0]);
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }

    /// The metadata document.
    pub fn document(&self) -> Value {
        let mut document = json!({
            "resource": self.resource.as_str(),
            "bearer_methods_supported": ["header"],
        });
        if !self.authorization_servers.is_empty() {
            document["authorization_servers"] = json!(self.authorization_servers);
        }
        if !self.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(self.scopes_supported);
        }
        document
    }
}

/// The `WWW-Authenticate` value refusing a request for `error`: the Bearer
/// scheme, the metadata URL when the server has one, the RFC 6750 error
/// code when credentials were presented, and the scopes to ask for.
pub(super) fn challenge(error: &AuthError, resource: Option<&ProtectedResource>) -> String {
    let mut parameters = Vec::new();
    if let Some(resource) = resource {
        parameters.push(format!("resource_metadata=\"{}\"", resource.metadata_url()));
    }
    if let Some(code) = error.oauth_error() {
        parameters.push(format!("error=\"{code}\""));
        parameters.push(format!(
            "error_description=\"{}\"",
            error.to_string().replace(['"', '\\'], "'")
        ));
    }
    let scope = match error {
        AuthError::InsufficientScope(missing) => Some(missing.clone()),
        _ => resource
            .filter(|r| !r.scopes_supported.is_empty())
            .map(|r| r.scopes_supported.join(" ")),
    };
    if let Some(scope) = scope {
        parameters.push(format!("scope=\"{scope}\""));
    }
    if parameters.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", parameters.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::TokenProblem;

    fn resource() -> ProtectedResource {
        ProtectedResource::new(Url::parse("https://mcp.example.com/public/mcp").unwrap())
            .with_authorization_servers(vec!["https://auth.example.com".into()])
    }

    #[test]
    fn the_document_sits_at_the_path_inserted_well_known_uri() {
        assert_eq!(
            resource().metadata_paths(),
            [
                "/.well-known/oauth-protected-resource/public/mcp".to_owned(),
                "/.well-known/oauth-protected-resource".to_owned()
            ]
        );
        assert_eq!(
            resource().metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp"
        );
        let document = resource().document();
        assert_eq!(document["resource"], "https://mcp.example.com/public/mcp");
        assert_eq!(
            document["authorization_servers"],
            json!(["https://auth.example.com"])
        );
    }

    #[test]
    fn a_challenge_points_to_the_metadata_and_says_what_went_wrong() {
        let missing = challenge(&AuthError::Missing, Some(&resource()));
        assert_eq!(
            missing,
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp\""
        );
        let expired = challenge(
            &AuthError::InvalidToken(TokenProblem::Expired),
            Some(&resource()),
        );
        assert!(expired.contains("error=\"invalid_token\""), "{expired}");
        let scope = challenge(&AuthError::InsufficientScope("tasks:write".into()), None);
        assert!(scope.contains("error=\"insufficient_scope\""), "{scope}");
        assert!(scope.contains("scope=\"tasks:write\""), "{scope}");
    }
}
