//! A minimal MCP 2026-07-28 client over Streamable HTTP for the tests that
//! steer a particular replica (stateless: every request carries its
//! protocol version and capabilities, declaring the tasks extension).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// Sends one request to the endpoint at `url` (`http://host:port/mcp`);
/// returns the JSON-RPC `result`, or the `error` object as `Err`.
pub async fn call(url: &str, method: &str, params: Value) -> Result<Value, Value> {
    call_as(url, None, method, params).await
}

/// Like [`call`], authenticated with `Authorization: Bearer <token>`.
pub async fn call_as(
    url: &str,
    bearer: Option<&str>,
    method: &str,
    mut params: Value,
) -> Result<Value, Value> {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {}}
        },
        "io.modelcontextprotocol/clientInfo": {"name": "pmcp-tasks-tests", "version": "0"},
    });
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = Request::post("/mcp")
        .header("host", &address)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let stream = TcpStream::connect(&address)
        .await
        .map_err(|e| json!({"transport": e.to_string()}))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| json!({"transport": e.to_string()}))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| json!({"transport": e.to_string()}))?;
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| json!({"transport": e.to_string()}))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    // A JSON body, or server-sent events whose data lines carry messages.
    let message = serde_json::from_str::<Value>(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|m| m.get("id") == Some(&json!(1)))
    });
    let message = message.ok_or_else(|| json!({"unreadable": text.to_string()}))?;
    match message.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
    }
}
