//! MCP 2025-11-25 over Streamable HTTP, at the same endpoint as
//! 2026-07-28 (the 2026 transport's backward-compatibility section): a
//! POST of `initialize` (whatever version it asks for: 2026-07-28 has no
//! `initialize`, so the answer negotiates 2025-11-25, as rmcp's server
//! does), and every request carrying `Mcp-Session-Id`, is a 2025
//! session's, answered here from the task layer; the rest goes to rmcp,
//! which serves 2026-07-28 statelessly.
//!
//! What a session is follows from what its client asked for at
//! `initialize` (SEP-2663's backward-compatibility table):
//!
//! - a client asking for 2025-11-25 (or earlier) gets 2025-11-25 tasks,
//!   whatever else it declares: the extension is not defined under that
//!   version, so declaring it changes nothing (`capabilities.tasks`, with
//!   `tasks/list`, `tasks/result` and task-augmented calls);
//! - a client asking for 2026-07-28 or later that declares the tasks
//!   extension (rmcp 3.11's client does) gets an extension session: the
//!   extension's capability and none of the legacy ones, its task methods
//!   and task-creating calls served as the stateless 2026-07-28 requests
//!   they stand for ([`as_extension_request`]), by the same code as a 2026
//!   client's; `tasks/result` and `tasks/list`, which the extension
//!   removed, answer -32601 as the extension says.
//!
//! Sessions are sealed ([`SessionSeal`]): any replica answers any request
//! of any session, and a session opened by one identity is unknown (404)
//! to every other, as is a session past its maximum age. Sessions cannot
//! be ended early: nothing is kept per session for a `DELETE` to remove,
//! and forgetting one on every replica would cost a store read per
//! request, so `DELETE` answers 405, as the transport allows a server that
//! does not let clients end sessions. Every request is answered with one JSON body, but
//! `tasks/result`: it blocks on its own HTTP request (never the session's
//! others) as server-sent events, sending the task's input requests as
//! server requests whose ids name the task, so the client's responses
//! are recorded by whichever replica they reach. There is no standalone
//! GET stream (405, as the transport allows), so
//! `notifications/tasks/status` is not sent: the client polls
//! `tasks/get`, or blocks on `tasks/result`.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tracing::Instrument;

use super::response::{empty, json_response, refuse, HttpResponse};
use super::session::SessionSeal;
use crate::core::{self, Answer};
use crate::error::RpcError;
use crate::error::TASKS_EXTENSION;
use crate::gate::{Admitted, MessageKind};
use crate::identity::Principal;
use crate::revision::{Revision, CORE_PROTOCOL_VERSION, EXTENSION_PROTOCOL_VERSION};
use crate::server::{DurableTaskServer, TaskTools};
use crate::trace;

/// The session header of the 2025-11-25 transport.
pub(super) const SESSION_HEADER: &str = "mcp-session-id";

/// Whether a request belongs to a 2025-11-25 session (or opens one).
pub(super) fn is_core(parts: &Parts, message: Option<&Admitted>) -> bool {
    if parts.headers.contains_key(SESSION_HEADER) {
        return true;
    }
    matches!(
        message,
        Some(Admitted { kind: MessageKind::Request { method, .. }, .. }) if method == "initialize"
    )
}

/// Whether an `initialize` request opens an extension session: its client
/// declares the tasks extension and asks for a revision that has it.
fn opens_extension_session(message: &Admitted) -> bool {
    let params = message.params();
    let version = params["protocolVersion"].as_str().unwrap_or_default();
    params["capabilities"]["extensions"][TASKS_EXTENSION].is_object()
        && Revision::of_protocol_version(version) != Revision::V2025_11_25
}

/// A request in a session whose client declared the tasks extension,
/// rewritten as the stateless 2026-07-28 request it stands for (the
/// version and the extension in its `_meta` and headers, no session
/// header) for rmcp to serve; `None` for every other message, which the
/// 2025 path answers (refusing a session this identity did not open).
pub(super) fn as_extension_request<T: TaskTools>(
    server: &DurableTaskServer<T>,
    seal: &SessionSeal,
    parts: &mut Parts,
    message: &Admitted,
) -> Option<Bytes> {
    let MessageKind::Request { method, .. } = &message.kind else {
        return None;
    };
    if method == "initialize" {
        return None;
    }
    let session = parts.headers.get(SESSION_HEADER)?.to_str().ok()?;
    let owner = parts
        .extensions
        .get::<Principal>()
        .map(|p| p.owner().to_owned());
    let caller = server.core_caller_as(owner.as_deref());
    if seal.session_of(session, &caller.owner) != Some(true) {
        return None;
    }
    let mut request = message.message.clone();
    if !request["params"].is_object() {
        request["params"] = json!({});
    }
    if !request["params"]["_meta"].is_object() {
        request["params"]["_meta"] = json!({});
    }
    let meta = &mut request["params"]["_meta"];
    meta[PROTOCOL_VERSION_META] = json!(EXTENSION_PROTOCOL_VERSION);
    meta[CLIENT_CAPABILITIES_META] = json!({"extensions": {TASKS_EXTENSION: {}}});
    meta[CLIENT_INFO_META] = json!({"name": "a 2025-11-25 session", "version": "0"});
    let headers = &mut parts.headers;
    headers.remove(SESSION_HEADER);
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(EXTENSION_PROTOCOL_VERSION),
    );
    // The request headers a 2026 client sends (SEP-2243), from the body
    // they must agree with.
    if let Ok(value) = HeaderValue::from_str(method) {
        headers.insert("mcp-method", value);
    }
    headers.remove("mcp-name");
    if let Some(name) = name_of(method, message.params()) {
        if let Ok(value) = HeaderValue::from_str(&header_value(name)) {
            headers.insert("mcp-name", value);
        }
    }
    serde_json::to_vec(&request).ok().map(Bytes::from)
}

/// What the `Mcp-Name` header of a request of `method` carries (SEP-2243,
/// and SEP-2663 for the task methods).
fn name_of<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return None,
    };
    params[field].as_str()
}

/// A header value as SEP-2243 encodes it: as is when it is visible ASCII
/// without surrounding blanks, else Base64 between `=?base64?` and `?=`.
fn header_value(value: &str) -> String {
    use base64::Engine;
    const PREFIX: &str = "=?base64?";
    const SUFFIX: &str = "?=";
    let encode = value.bytes().any(|b| !(0x20..=0x7e).contains(&b))
        || value.starts_with([' ', '\t'])
        || value.ends_with([' ', '\t'])
        || (value.starts_with(PREFIX) && value.ends_with(SUFFIX));
    if encode {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        format!("{PREFIX}{encoded}{SUFFIX}")
    } else {
        value.to_owned()
    }
}

/// The `_meta` keys of a stateless 2026-07-28 request.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";
const CLIENT_INFO_META: &str = "io.modelcontextprotocol/clientInfo";

/// Answers one request of a 2025 session.
pub(super) async fn answer<T: TaskTools>(
    server: &DurableTaskServer<T>,
    seal: &SessionSeal,
    parts: &Parts,
    message: Option<Admitted>,
) -> HttpResponse {
    let owner = parts
        .extensions
        .get::<Principal>()
        .map(|p| p.owner().to_owned());
    let caller = server.core_caller_as(owner.as_deref());
    let opening = matches!(
        &message,
        Some(Admitted { kind: MessageKind::Request { method, .. }, .. }) if method == "initialize"
    );
    if !opening {
        let id = parts
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok());
        match id {
            Some(id) if seal.admits(id, &caller.owner) => {}
            Some(_) => {
                return refusal(
                    StatusCode::NOT_FOUND,
                    "Not Found: no such session for this identity; initialize a new one",
                )
            }
            None => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: a 2025-11-25 request needs the Mcp-Session-Id of its session",
                )
            }
        }
    }
    match parts.method {
        Method::POST => {}
        // No standalone stream: the client polls or blocks on tasks/result.
        Method::GET => {
            let mut response = refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed: this server offers no standalone SSE stream",
            );
            allow_post(&mut response);
            return response;
        }
        // See the module documentation: a session ends at its maximum age.
        Method::DELETE => {
            let mut response = refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed: sessions of this server cannot be ended early; \
                 one ends at its maximum age",
            );
            allow_post(&mut response);
            return response;
        }
        _ => {
            let mut response = refusal(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed: POST");
            allow_post(&mut response);
            return response;
        }
    }
    let Some(message) = message else {
        return refusal(StatusCode::BAD_REQUEST, "Bad Request: no JSON-RPC message");
    };
    let (id, method) = match message.kind {
        MessageKind::Request { ref id, ref method } => (id.clone(), method.clone()),
        MessageKind::Response { ref id } => {
            return match input_of(id) {
                Some((task, key)) => {
                    answer_input(server, &caller, task, key, &message.message).await
                }
                // Not an answer to an input request: nothing waits for it.
                None => empty(StatusCode::ACCEPTED),
            };
        }
        // Notifications need no answer: the task layer keeps no
        // per-session state for them to change.
        MessageKind::Notification { .. } => return empty(StatusCode::ACCEPTED),
    };
    let params = message.params().clone();
    let span = trace::request_span(&method, Revision::V2025_11_25, Some(&params));
    if method == "tasks/result" {
        return stream_result(server, caller, id, params, span);
    }
    let outcome = match method.as_str() {
        "initialize" => {
            let extension = opens_extension_session(&message);
            let mut result = core::initialize_result(server);
            if extension {
                // The extension's capability, and none of the legacy ones
                // (SEP-2663: a server MUST NOT advertise both).
                let capabilities = &mut result["capabilities"];
                if let Some(fields) = capabilities.as_object_mut() {
                    fields.remove("tasks");
                }
                capabilities["extensions"] = json!({TASKS_EXTENSION: {}});
            }
            let mut response = respond(&id, Ok(result));
            let session = seal.open_session(&caller.owner, extension);
            if let Ok(value) = HeaderValue::from_str(&session) {
                response.headers_mut().insert(SESSION_HEADER, value);
            }
            return response;
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(core::tools_list(server)),
        _ => {
            let answer = async {
                match core::request(server, &caller, &method, params) {
                    Some(Answer::Now(handled)) => handled.await,
                    Some(Answer::Direct { name, arguments }) => {
                        server.call_direct(&name, arguments).await
                    }
                    None => Err(RpcError::method_not_found(&method)),
                }
            };
            answer.instrument(span).await
        }
    };
    respond(&id, outcome)
}

/// The prefix of the ids of input requests sent to a 2025 client: the
/// id names the task and the request's key, so the response can be
/// recorded by whichever replica it reaches.
const INPUT_ID_PREFIX: &str = "pmcp-input/";

/// The id of the server-to-client request asking input `key` of `task`.
fn input_request_id(task: &str, key: &str) -> String {
    format!("{INPUT_ID_PREFIX}{task}/{key}")
}

/// The task and key a response answers, when it answers an input request.
fn input_of(id: &Value) -> Option<(&str, &str)> {
    id.as_str()?.strip_prefix(INPUT_ID_PREFIX)?.split_once('/')
}

/// Records the client's answer to an input request for its task's worker
/// (on whatever replica it runs): the result, or the error it sent.
async fn answer_input<T: TaskTools>(
    server: &DurableTaskServer<T>,
    caller: &crate::service::Caller,
    task: &str,
    key: &str,
    message: &Value,
) -> HttpResponse {
    let response = match message.get("result") {
        Some(result) => result.clone(),
        None => json!({ "error": message.get("error").cloned().unwrap_or(Value::Null) }),
    };
    match server
        .service()
        .answer_core_input(caller, task, key, response)
        .await
    {
        Ok(()) => empty(StatusCode::ACCEPTED),
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"jsonrpc": "2.0", "id": Value::Null, "error": e.to_value()}),
        ),
    }
}

/// A 2025 `tasks/result`, answered as server-sent events: while the task
/// waits for input, each of its input requests is sent as a request of
/// the server (tied to the task by `_meta`), then the result once terminal.
fn stream_result<T: TaskTools>(
    server: &DurableTaskServer<T>,
    caller: crate::service::Caller,
    id: Value,
    params: Value,
    span: tracing::Span,
) -> HttpResponse {
    let (mut events, body) = http_body_util::channel::Channel::<Bytes>::new(4);
    let server = server.clone();
    tokio::spawn(async move {
        let task = params["taskId"].as_str().unwrap_or_default().to_owned();
        let (asks, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let waiting = server
            .service()
            .result_asking(&caller, &params, move |request| {
                let _ = asks.send(request.clone());
            });
        tokio::pin!(waiting);
        let outcome = loop {
            tokio::select! {
                outcome = &mut waiting => break outcome,
                Some(request) = asked.recv() => {
                    let mut params = Value::Object(request.params);
                    params["_meta"]["io.modelcontextprotocol/related-task"] = json!({"taskId": task});
                    let message = json!({
                        "jsonrpc": "2.0",
                        "id": input_request_id(&task, &request.key),
                        "method": request.method,
                        "params": params,
                    });
                    // The client left: its next tasks/result asks again.
                    if events.send_data(sse_event(&message)).await.is_err() {
                        return;
                    }
                }
            }
        };
        let _ = events
            .send_data(sse_event(&response_message(&id, outcome)))
            .await;
    }.instrument(span));
    let mut response = HttpResponse::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(CORE_PROTOCOL_VERSION),
    );
    response
}

/// One server-sent event carrying `message`.
fn sse_event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// The JSON-RPC response to request `id`.
fn response_message(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_value()}),
    }
}

/// The JSON-RPC response to request `id`, with the 2025 version header.
fn respond(id: &Value, outcome: Result<Value, RpcError>) -> HttpResponse {
    let message = response_message(id, outcome);
    let mut response = json_response(StatusCode::OK, &message);
    response.headers_mut().insert(
        "mcp-protocol-version",
        HeaderValue::from_static(CORE_PROTOCOL_VERSION),
    );
    response
}

/// Names POST as the one method of a session.
fn allow_post(response: &mut HttpResponse) {
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
}

/// A refusal of a session request.
fn refusal(status: StatusCode, message: &str) -> HttpResponse {
    refuse(status, RpcError::invalid_request(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_plain_when_they_can_be_and_base64_otherwise() {
        assert_eq!(header_value("slow_compute"), "slow_compute");
        assert_eq!(header_value("héllo"), "=?base64?aMOpbGxv?=");
        assert_eq!(header_value(" padded"), "=?base64?IHBhZGRlZA==?=");
        assert_eq!(header_value("=?base64?x?="), "=?base64?PT9iYXNlNjQ/eD89?=");
        assert_eq!(header_value("a\nb"), "=?base64?YQpi?=");
    }

    #[test]
    fn the_name_header_comes_from_the_field_its_method_names() {
        let params = json!({"name": "greet", "uri": "file:///a", "taskId": "t1"});
        assert_eq!(name_of("tools/call", &params), Some("greet"));
        assert_eq!(name_of("resources/read", &params), Some("file:///a"));
        assert_eq!(name_of("tasks/get", &params), Some("t1"));
        assert_eq!(name_of("tools/list", &params), None);
    }
}
