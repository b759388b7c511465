//! MCP 2025-11-25 task traffic on a line-delimited JSON-RPC stream (stdio).
//!
//! rmcp 3.11 speaks tasks only as the 2026-07-28 extension: it no longer
//! parses `params.task` on `tools/call`, and gates `tasks/*` on the
//! extension. This front reads each message first: in a session that
//! negotiated 2025-11-25 it answers `tasks/get`, `tasks/result` (blocking,
//! without holding up the stream), `tasks/list`, `tasks/cancel` and
//! task-augmented `tools/call` itself, from the same [`TaskService`](crate::TaskService);
//! everything else goes to rmcp, whose `initialize` and `tools/list`
//! answers gain the 2025 task capability and each tool's
//! `execution.taskSupport`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tracing::Instrument;

use crate::core;
use crate::error::RpcError;
use crate::gate::{self, MessageKind, MAX_MESSAGE_BYTES};
use crate::revision::Revision;
use crate::server::{DurableTaskServer, TaskTools};
use crate::support::TaskSupport;
use crate::trace;

/// What the front remembers of a session.
#[derive(Default)]
struct Session {
    /// The revision the client asked for at `initialize`.
    revision: Option<Revision>,
    /// Methods of requests passed to rmcp whose answers the front amends.
    amend: HashMap<String, &'static str>,
}

type Output<W> = Arc<tokio::sync::Mutex<W>>;

async fn write_line<W: AsyncWrite + Unpin>(
    output: &Output<W>,
    message: &Value,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    let mut out = output.lock().await;
    out.write_all(&line).await?;
    out.flush().await
}

fn answer(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_value()}),
    }
}

/// Reads the next line into `line` (without its `\r\n` or `\n`), keeping
/// at most `max` bytes: `Some(true)` for a line, `Some(false)` for one that
/// was longer (skipped to its end, nothing kept), `None` at the end.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut read_any = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then_some(fits));
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if fits && line.len() + chunk.len() <= max {
            line.extend_from_slice(chunk);
        } else {
            fits = false;
            line.clear();
        }
        let used = chunk.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(fits));
        }
    }
}

/// Serves `server` on `input` / `output` (newline-delimited JSON-RPC, as
/// on stdio) until the input ends. Every line passes the
/// the JSON-RPC gate first: a line that is not a JSON-RPC message gets
/// its error response and the server reads on; no input ends it but the
/// input's end.
pub async fn serve_lines<T, R, W>(
    server: DurableTaskServer<T>,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    T: TaskTools,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    use rmcp::ServiceExt;
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (rmcp_in, rmcp_out) = tokio::io::split(theirs);
    // rmcp's serve returns after the client's initialize, which comes
    // through this front: run it beside the loop that feeds it.
    let rmcp_server = server.clone();
    let running = tokio::spawn(async move {
        if let Ok(running) = rmcp_server.serve((rmcp_in, rmcp_out)).await {
            let _ = running.waiting().await;
        }
    });
    let (from_rmcp, mut to_rmcp) = tokio::io::split(ours);
    let output: Output<W> = Arc::new(tokio::sync::Mutex::new(output));
    let session = Arc::new(Mutex::new(Session::default()));

    let relay = {
        let (output, session, server) = (output.clone(), session.clone(), server.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(from_rmcp).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let amended = amend(&line, &session, &server);
                let message =
                    amended.unwrap_or_else(|| serde_json::from_str(&line).unwrap_or(Value::Null));
                if message.is_null() {
                    continue;
                }
                if write_line(&output, &message).await.is_err() {
                    return;
                }
            }
        })
    };

    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    while let Some(fits) = read_line(&mut input, &mut line, MAX_MESSAGE_BYTES).await? {
        if !fits {
            let refused = RpcError::invalid_request(format!(
                "Invalid Request: the message is longer than {MAX_MESSAGE_BYTES} bytes"
            ));
            let response =
                json!({"jsonrpc": "2.0", "id": Value::Null, "error": refused.to_value()});
            let _ = write_line(&output, &response).await;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let admitted = match gate::admit(&line) {
            Ok(admitted) => admitted,
            Err(refused) => {
                let _ = write_line(&output, &refused.response()).await;
                continue;
            }
        };
        let params = admitted.params().clone();
        let (method, id) = match &admitted.kind {
            MessageKind::Request { id, method } => (Some(method.as_str()), Some(id.clone())),
            MessageKind::Notification { method } => (Some(method.as_str()), None),
            _ => (None, None),
        };
        if method == Some("initialize") {
            let version = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            s.revision = Some(Revision::of_protocol_version(version));
        }
        let core = session.lock().unwrap_or_else(|p| p.into_inner()).revision
            == Some(Revision::V2025_11_25);
        if let (true, Some(method), Some(id)) = (core, method, id.clone()) {
            let caller = server.core_caller();
            let span = trace::request_span(method, Revision::V2025_11_25, Some(&params));
            let handled = match core::request(&server, &caller, method, params) {
                Some(core::Answer::Now(handled)) => Some(handled),
                // rmcp runs plain calls (and checks them again).
                Some(core::Answer::Direct { .. }) | None => None,
            };
            if let Some(handled) = handled {
                let output = output.clone();
                // Answered on a task of its own: a blocking tasks/result
                // must not hold up the client's other requests.
                tokio::spawn(
                    async move {
                        let outcome = handled.await;
                        let _ = write_line(&output, &answer(&id, outcome)).await;
                    }
                    .instrument(span),
                );
                continue;
            }
        }
        if let (Some(method @ ("initialize" | "tools/list")), Some(id)) = (method, &id) {
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            let name = if method == "initialize" {
                "initialize"
            } else {
                "tools/list"
            };
            s.amend.insert(id.to_string(), name);
        }
        to_rmcp.write_all(&line).await?;
        to_rmcp.write_all(b"\n").await?;
        to_rmcp.flush().await?;
    }
    drop(to_rmcp);
    // The client is gone: give rmcp a moment to answer what it has, then stop.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), running).await;
    relay.abort();
    Ok(())
}

/// Adds the 2025-11-25 task surface to rmcp's `initialize` and
/// `tools/list` answers in a 2025 session; `None` leaves a line as it is.
fn amend<T: TaskTools>(
    line: &str,
    session: &Mutex<Session>,
    server: &DurableTaskServer<T>,
) -> Option<Value> {
    let mut message: Value = serde_json::from_str(line).ok()?;
    let id = message.get("id")?.to_string();
    let method = {
        let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
        if s.revision != Some(Revision::V2025_11_25) {
            s.amend.remove(&id);
            return None;
        }
        s.amend.remove(&id)?
    };
    let result = message.get_mut("result")?;
    match method {
        "initialize" => {
            let capabilities = result.get_mut("capabilities")?.as_object_mut()?;
            capabilities.insert("tasks".into(), core::tasks_capability());
        }
        _ => {
            for tool in result.get_mut("tools")?.as_array_mut()? {
                let name = tool
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let support = server.task_support(&name).unwrap_or(TaskSupport::Forbidden);
                core::mark_execution(tool, support);
            }
        }
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(fits) = read_line(&mut reader, &mut line, max).await.unwrap() {
            out.push(fits.then(|| line.clone()));
        }
        out
    }

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_whole_and_the_next_one_is_read() {
        let got = lines(b"ab\r\nabcdefghij\nc\n\xff\xfe\nlast", 5).await;
        assert_eq!(
            got,
            vec![
                Some(b"ab".to_vec()),
                None,
                Some(b"c".to_vec()),
                Some(b"\xff\xfe".to_vec()),
                Some(b"last".to_vec()),
            ]
        );
        assert!(lines(b"", 5).await.is_empty());
    }
}
