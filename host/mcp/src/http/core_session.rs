//! MCP 2025-11-25 over Streamable HTTP, at the same endpoint as
//! 2026-07-28 (the 2026 transport's backward-compatibility section): a
//! POST of `initialize` asking for a version before 2026-07-28, and every
//! request carrying `Mcp-Session-Id`, is a 2025 session's, answered here
//! from the task layer; the rest goes to rmcp, which serves 2026-07-28
//! statelessly.
//!
//! Sessions are sealed ([`SessionSeal`]): any replica answers any request
//! of any session, and a session opened by one identity is unknown (404)
//! to every other. Every request is answered with one JSON body, but
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
use crate::gate::{Admitted, MessageKind};
use crate::identity::Principal;
use crate::revision::{Revision, CORE_PROTOCOL_VERSION};
use crate::server::{DurableTaskServer, TaskTools};
use crate::trace;

/// The session header of the 2025-11-25 transport.
pub(super) const SESSION_HEADER: &str = "mcp-session-id";

/// Whether a request belongs to a 2025-11-25 session (or opens one).
pub(super) fn is_core(parts: &Parts, message: Option<&Admitted>) -> bool {
    if parts.headers.contains_key(SESSION_HEADER) {
        return true;
    }
    let Some(Admitted {
        kind: MessageKind::Request { method, .. },
        message,
    }) = message
    else {
        return false;
    };
    let version = message["params"]["protocolVersion"].as_str().unwrap_or("");
    method == "initialize" && Revision::of_protocol_version(version) == Revision::V2025_11_25
}

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
            response.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("POST, DELETE"),
            );
            return response;
        }
        // Nothing is kept per session, so ending one frees nothing.
        Method::DELETE => return empty(StatusCode::OK),
        _ => {
            return refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed: POST, GET or DELETE",
            )
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
            let result = core::initialize_result(server);
            let mut response = respond(&id, Ok(result));
            if let Ok(value) = HeaderValue::from_str(&seal.open(&caller.owner)) {
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

/// A refusal of a session request.
fn refusal(status: StatusCode, message: &str) -> HttpResponse {
    refuse(status, RpcError::invalid_request(message))
}
