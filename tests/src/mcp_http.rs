//! A minimal MCP 2026-07-28 client over Streamable HTTP for the tests that
//! steer a particular replica (stateless: every request carries its
//! protocol version and capabilities, declaring the tasks extension).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// The `_meta` of a 2026-07-28 request from a client that declares the
/// tasks extension.
pub fn request_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {}}
        },
        "io.modelcontextprotocol/clientInfo": {"name": "pmcp-tasks-tests", "version": "0"},
    })
}

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
    // The request's own `_meta` (a traceparent, say) is kept beside ours.
    let mut meta = request_meta();
    if let (Some(Value::Object(given)), Value::Object(fields)) = (params.get("_meta"), &mut meta) {
        fields.extend(given.clone());
    }
    params["_meta"] = meta;
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut headers = vec![("mcp-method".to_owned(), method.to_owned())];
    if let Some(name) = name {
        headers.push(("mcp-name".to_owned(), name));
    }
    if let Some(token) = bearer {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    let response = post(url, &headers, body.to_string().into_bytes())
        .await
        .map_err(|e| json!({"transport": e.to_string()}))?;
    let message = response
        .message(&json!(1))
        .ok_or_else(|| json!({"unreadable": String::from_utf8_lossy(&response.body)}))?;
    match message.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The JSON-RPC message answering `id` in the body: a JSON body, or
    /// server-sent events whose data lines carry messages.
    pub fn message(&self, id: &Value) -> Option<Value> {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_str::<Value>(&text).ok().or_else(|| {
            text.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
                .find(|m| m.get("id") == Some(id))
        })
    }
}

/// POSTs `body` as it is to the endpoint at `url` with the headers every
/// 2026-07-28 request carries (JSON, both answers accepted, the protocol
/// version) and `extra` ones (a repeated or overriding name is added).
pub async fn post(
    url: &str,
    extra: &[(String, String)],
    body: Vec<u8>,
) -> std::io::Result<RawResponse> {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
        ("mcp-protocol-version".to_owned(), "2026-07-28".to_owned()),
    ];
    headers.extend(extra.iter().cloned());
    send(url, "POST", &headers, body).await
}

/// Sends one request with exactly these headers (and `host`) to `url`.
pub async fn send(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> std::io::Result<RawResponse> {
    send_to(url, "/mcp", method, headers, body).await
}

/// Like [`send`], to another `path` of the server at `url`.
pub async fn send_to(
    url: &str,
    path: &str,
    method: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> std::io::Result<RawResponse> {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &address);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(std::io::Error::other)?;
    let stream = TcpStream::connect(&address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes()
        .to_vec();
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A 2025-11-25 session over Streamable HTTP, as an SDK client opens one:
/// `initialize`, then every request with the session's `Mcp-Session-Id`.
pub struct CoreSession {
    /// The session id the server issued.
    pub id: String,
    bearer: Option<String>,
}

impl CoreSession {
    fn headers(&self, session: Option<&str>) -> Vec<(String, String)> {
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "accept".to_owned(),
                "application/json, text/event-stream".to_owned(),
            ),
            ("mcp-protocol-version".to_owned(), "2025-11-25".to_owned()),
        ];
        if let Some(id) = session {
            headers.push(("mcp-session-id".to_owned(), id.to_owned()));
        }
        if let Some(token) = &self.bearer {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        headers
    }

    /// Opens a session at `url` (as `bearer`, when given).
    pub async fn open(url: &str, bearer: Option<&str>) -> std::io::Result<CoreSession> {
        let (session, _) = CoreSession::open_asking(url, bearer, "2025-11-25", json!({})).await?;
        Ok(session)
    }

    /// Opens a session at `url` whose `initialize` asks for `version` and
    /// declares `capabilities`: the session and the `initialize` result.
    pub async fn open_asking(
        url: &str,
        bearer: Option<&str>,
        version: &str,
        capabilities: Value,
    ) -> std::io::Result<(CoreSession, Value)> {
        let mut session = CoreSession {
            id: String::new(),
            bearer: bearer.map(str::to_owned),
        };
        let body = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities,
                "clientInfo": {"name": "pmcp-tasks-tests", "version": "0"},
            },
        });
        let response = send(
            url,
            "POST",
            &session.headers(None),
            body.to_string().into_bytes(),
        )
        .await?;
        session.id = response
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| std::io::Error::other(format!("no session: {response:?}")))?
            .to_owned();
        let result = response
            .message(&json!(0))
            .and_then(|m| m.get("result").cloned())
            .ok_or_else(|| std::io::Error::other(format!("no result: {response:?}")))?;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        session
            .raw(url, initialized.to_string().into_bytes())
            .await?;
        Ok((session, result))
    }

    /// Asks `url` to end this session (`DELETE` with its id).
    pub async fn delete(&self, url: &str) -> std::io::Result<RawResponse> {
        send(url, "DELETE", &self.headers(Some(&self.id)), Vec::new()).await
    }

    /// The same credentials presenting session `id` instead (a stolen or
    /// forged id).
    pub fn with_id(mut self, id: &str) -> CoreSession {
        self.id = id.to_owned();
        self
    }

    /// POSTs `body` in this session.
    pub async fn raw(&self, url: &str, body: Vec<u8>) -> std::io::Result<RawResponse> {
        send(url, "POST", &self.headers(Some(&self.id)), body).await
    }

    /// A task-augmented `tools/call` of `tool` in this session: the task id.
    pub async fn start_task(&self, url: &str, tool: &str, arguments: Value) -> String {
        let params = json!({"name": tool, "arguments": arguments, "task": {"ttl": 600_000}});
        let created = self
            .call(url, "tools/call", params)
            .await
            .unwrap_or_else(|e| panic!("{tool} as a task: {e}"));
        created["task"]["taskId"]
            .as_str()
            .unwrap_or_else(|| panic!("a task: {created}"))
            .to_owned()
    }

    /// One request in this session: the `result`, or the `error` as `Err`.
    pub async fn call(&self, url: &str, method: &str, params: Value) -> Result<Value, Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .raw(url, body.to_string().into_bytes())
            .await
            .map_err(|e| json!({"transport": e.to_string()}))?;
        let message = response
            .message(&json!(1))
            .ok_or_else(|| json!({"status": response.status, "unreadable": String::from_utf8_lossy(&response.body)}))?;
        match message.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        }
    }
}
