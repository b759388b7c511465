//! The front of the HTTP endpoint: what every request passes before rmcp
//! sees it. Each refusal is a JSON-RPC error response (`id: null` unless
//! the request's own id was read) with the HTTP status the transport
//! names: 403 for a refused `Origin`, 401 (with `WWW-Authenticate:
//! Bearer`) for unusable credentials, 400 for -32700 and -32600, 413 for
//! a body over the limit, 408 for a body that does not arrive in time.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::auth::AuthError;
use super::core_session;
use super::metadata::{challenge, ProtectedResource};
use super::options::{HttpOptions, MCP_PATH};
use super::response::{json_response, refuse, HttpResponse};
use super::session::SessionSeal;
use crate::error::{RpcError, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::gate::{self, Admitted, Refused};
use crate::server::{DurableTaskServer, TaskTools};

/// The front, the 2025 sessions it serves, and the rmcp service behind it.
pub(super) struct Front<T: TaskTools> {
    rmcp: StreamableHttpService<DurableTaskServer<T>, LocalSessionManager>,
    server: DurableTaskServer<T>,
    seal: SessionSeal,
    options: HttpOptions,
}

/// A request that passed the front.
struct Admission {
    parts: http::request::Parts,
    body: Bytes,
    /// The JSON-RPC message of a POST.
    message: Option<Admitted>,
}

impl<T: TaskTools> Front<T> {
    pub(super) fn new(
        server: DurableTaskServer<T>,
        options: HttpOptions,
        shutdown: CancellationToken,
    ) -> Self {
        let mut config = StreamableHttpServerConfig::default();
        config.cancellation_token = shutdown;
        config.max_request_body_bytes = options.max_body_bytes;
        // The front checks Host against its own policy first.
        config.allowed_hosts = Vec::new();
        let served = server.clone();
        let rmcp = StreamableHttpService::new(
            move || Ok(served.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let seal = options.session_seal.clone().unwrap_or_else(|| {
            tracing::warn!(
                "no session secret: 2025-11-25 sessions are sealed by a random key, so only \
                 this replica serves them"
            );
            SessionSeal::random()
        });
        Front {
            rmcp,
            server,
            seal,
            options,
        }
    }

    /// Answers one request, counted by HTTP method and status
    /// (`pmcp_tasks_http_requests_total`).
    pub(super) async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        let method = request.method().clone();
        let response = self.answer(request).await;
        metrics::counter!(
            "pmcp_tasks_http_requests_total",
            "method" => method_label(&method),
            "status" => response.status().as_str().to_owned()
        )
        .increment(1);
        response
    }

    async fn answer(&self, request: Request<Incoming>) -> HttpResponse {
        let path = request.uri().path();
        if let Some(resource) = &self.options.protected_resource {
            if resource.metadata_paths().iter().any(|p| p == path) {
                return metadata_response(request.method(), resource);
            }
        }
        if path != MCP_PATH {
            return refuse(
                StatusCode::NOT_FOUND,
                RpcError::invalid_request(format!("Not Found: the MCP endpoint is {}", MCP_PATH)),
            );
        }
        let mut admitted = match self.admit(request).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
        let stateless = admitted.message.as_ref().and_then(|message| {
            core_session::as_extension_request(
                &self.server,
                &self.seal,
                &mut admitted.parts,
                message,
            )
        });
        if let Some(body) = stateless {
            admitted.body = body;
        } else if core_session::is_core(&admitted.parts, admitted.message.as_ref()) {
            return core_session::answer(
                &self.server,
                &self.seal,
                &admitted.parts,
                admitted.message,
            )
            .await;
        }
        self.rmcp
            .handle(Request::from_parts(
                admitted.parts,
                Full::new(admitted.body),
            ))
            .await
    }

    /// The request as rmcp may see it, or the answer that refuses it.
    async fn admit(&self, request: Request<Incoming>) -> Result<Admission, HttpResponse> {
        let (mut parts, body) = request.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        if !host.is_some_and(|h| self.options.hosts.allows(h)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                RpcError::invalid_request("Forbidden: this server does not answer to that Host"),
            ));
        }
        if let Some(origin) = parts.headers.get(http::header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| self.options.origins.allows(o));
            if !allowed {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    RpcError::invalid_request("Forbidden: this Origin may not call the server"),
                ));
            }
        }
        let principal = match &self.options.authenticate {
            Some(authenticate) => authenticate.authenticate(&parts.headers).await,
            None if parts.headers.contains_key(http::header::AUTHORIZATION) => {
                Err(AuthError::NotAccepted)
            }
            None => Ok(None),
        };
        match principal {
            Ok(Some(principal)) => {
                parts.extensions.insert(principal);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(reason = %e, "credentials refused");
                return Err(self.unauthorized(&e));
            }
        }
        // Verified: the credential goes no further than this function.
        parts.headers.remove(http::header::AUTHORIZATION);
        if parts.method != Method::POST {
            return Ok(Admission {
                parts,
                body: Bytes::new(),
                message: None,
            });
        }
        if let Some(refusal) = media_types(&parts.headers) {
            return Err(refusal);
        }
        let body = self.read_body(body).await?;
        match gate::admit(&body) {
            Ok(message) => Ok(Admission {
                parts,
                body,
                message: Some(message),
            }),
            Err(refused) => Err(refused_message(&refused)),
        }
    }

    /// The refusal of unusable credentials: 401 (403 for a missing scope,
    /// 503 without keys) with the challenge naming the metadata.
    fn unauthorized(&self, e: &AuthError) -> HttpResponse {
        let status = e.status();
        let label = status.canonical_reason().unwrap_or("Unauthorized");
        let mut response = refuse(status, RpcError::invalid_request(format!("{label}: {e}")));
        if status != StatusCode::SERVICE_UNAVAILABLE {
            let challenge = challenge(e, self.options.protected_resource.as_ref());
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(http::header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }

    async fn read_body(&self, body: Incoming) -> Result<Bytes, HttpResponse> {
        let limit = self.options.max_body_bytes;
        let read = Limited::new(body, limit).collect();
        match tokio::time::timeout(self.options.body_timeout, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                RpcError::invalid_request(format!(
                    "Invalid Request: the body is larger than {limit} bytes"
                )),
            )),
            Ok(Err(e)) => Err(refuse(
                StatusCode::BAD_REQUEST,
                RpcError::invalid_request(format!(
                    "Invalid Request: the body could not be read: {e}"
                )),
            )),
            Err(_) => Err(refuse(
                StatusCode::REQUEST_TIMEOUT,
                RpcError::invalid_request(format!(
                    "Invalid Request: the body did not arrive within {} ms",
                    self.options.body_timeout.as_millis()
                )),
            )),
        }
    }
}

/// The HTTP method as a metric label (a bounded set: anything unusual is
/// `other`).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        Method::GET => "GET",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// A POST must send JSON and accept both JSON and server-sent events.
fn media_types(headers: &http::HeaderMap) -> Option<HttpResponse> {
    let essence = |value: &str| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(essence);
    if content_type.as_deref() != Some("application/json") {
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcError::invalid_request("Invalid Request: Content-Type must be application/json"),
        ));
    }
    let accepted: Vec<String> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(essence)
        .collect();
    let accepts = |t: &str| accepted.iter().any(|a| a == t);
    if !accepts("application/json") || !accepts("text/event-stream") {
        return Some(refuse(
            StatusCode::NOT_ACCEPTABLE,
            RpcError::invalid_request(
                "Invalid Request: Accept must list application/json and text/event-stream",
            ),
        ));
    }
    None
}

/// The HTTP status of a JSON-RPC error refused at the gate.
pub(super) fn status_of(code: i32) -> StatusCode {
    match code {
        INVALID_PARAMS => StatusCode::OK,
        METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refused_message(refused: &Refused) -> HttpResponse {
    json_response(status_of(refused.error.code), &refused.response())
}

/// The metadata document, to any page (it is public).
fn metadata_response(method: &Method, resource: &ProtectedResource) -> HttpResponse {
    if method != Method::GET && method != Method::HEAD {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            RpcError::invalid_request("Method Not Allowed: the metadata is read with GET"),
        );
    }
    let mut response = json_response(StatusCode::OK, &resource.document());
    response.headers_mut().insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INVALID_REQUEST, PARSE_ERROR};

    #[test]
    fn each_code_has_the_status_the_transport_names() {
        assert_eq!(status_of(PARSE_ERROR), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(INVALID_REQUEST), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(METHOD_NOT_FOUND), StatusCode::NOT_FOUND);
        assert_eq!(status_of(INVALID_PARAMS), StatusCode::OK);
    }

    #[test]
    fn a_post_must_speak_json_and_accept_both_answers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(
            media_types(&headers).map(|r| r.status()),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(
            media_types(&headers).map(|r| r.status()),
            Some(StatusCode::NOT_ACCEPTABLE)
        );
        headers.insert(
            http::header::ACCEPT,
            "application/json, text/event-stream".parse().unwrap(),
        );
        assert!(media_types(&headers).is_none());
    }
}
