//! The gate every transport puts in front of the server: one JSON-RPC
//! message in, either the message (fit for rmcp and the task service) or
//! the error to answer with.
//!
//! Whatever arrives, nothing behind the gate sees a message it cannot
//! parse: bytes that are not UTF-8 or not JSON are -32700, JSON that is
//! not one JSON-RPC message is -32600 (with `id: null` when the id itself
//! is unusable), and a request whose params have the wrong types is -32602
//! naming the field. Nesting is bounded by the JSON parser's own recursion
//! limit (128), so deep input is refused without deep recursion.

use rmcp::model::ClientJsonRpcMessage;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::RpcError;
use crate::params;

/// The largest message a transport reads by default (4 MiB): a longer
/// one is refused (-32600 on stdio, HTTP 413) without being kept.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What kind of JSON-RPC message passed the gate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub(crate) enum MessageKind {
    /// A request: it gets a response with this id.
    Request {
        /// The request's id (a string or an integer).
        id: Value,
        /// The method.
        method: String,
    },
    /// A notification: no response.
    Notification {
        /// The method.
        method: String,
    },
    /// A response to a request the server sent (2025-11-25 sessions).
    Response {
        /// The id of the server's request.
        id: Value,
    },
}

/// A message that passed the gate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Admitted {
    /// The whole message, as parsed.
    pub message: Value,
    /// What it is.
    pub kind: MessageKind,
}

impl Admitted {
    /// The params (`Null` when absent).
    pub(crate) fn params(&self) -> &Value {
        self.message.get("params").unwrap_or(&Value::Null)
    }
}

/// A message refused at the gate, and the error response it gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    /// The request's id when it had a usable one, else `null`.
    pub id: Value,
    /// The error.
    pub error: RpcError,
}

impl Refused {
    fn anonymous(error: RpcError) -> Self {
        Refused {
            id: Value::Null,
            error,
        }
    }

    /// The JSON-RPC error response.
    pub(crate) fn response(&self) -> Value {
        serde_json::json!({"jsonrpc": "2.0", "id": self.id, "error": self.error.to_value()})
    }
}

/// Checks one message's bytes.
pub(crate) fn admit(bytes: &[u8]) -> Result<Admitted, Refused> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Refused::anonymous(RpcError::parse_error(format!(
            "Parse error: the message is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        )))
    })?;
    let message: Value = serde_json::from_str(text)
        .map_err(|e| Refused::anonymous(RpcError::parse_error(format!("Parse error: {e}"))))?;
    let kind = envelope(&message)?;
    if let MessageKind::Request { id, method } = &kind {
        let params = message.get("params").unwrap_or(&Value::Null);
        let refuse = |error| Refused {
            id: id.clone(),
            error,
        };
        params::check(method, params).map_err(refuse)?;
        // Anything rmcp's own types would still refuse is refused here,
        // with its reason, instead of being dropped behind the gate.
        ClientJsonRpcMessage::deserialize(&message).map_err(|e| {
            refuse(RpcError::invalid_params(format!(
                "Invalid params for {method}: {e}"
            )))
        })?;
    } else {
        ClientJsonRpcMessage::deserialize(&message).map_err(|e| {
            Refused::anonymous(RpcError::invalid_request(format!("Invalid Request: {e}")))
        })?;
    }
    Ok(Admitted { message, kind })
}

/// The JSON-RPC 2.0 envelope of one MCP message.
fn envelope(message: &Value) -> Result<MessageKind, Refused> {
    let invalid = |reason: &str| RpcError::invalid_request(format!("Invalid Request: {reason}"));
    let fields: &Map<String, Value> = match message {
        Value::Object(fields) => fields,
        Value::Array(_) => {
            return Err(Refused::anonymous(invalid(
                "batches are not supported; send one JSON-RPC message at a time",
            )))
        }
        _ => {
            return Err(Refused::anonymous(invalid(
                "a JSON-RPC message is a JSON object",
            )))
        }
    };
    let id = match fields.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(id.clone()),
        Some(_) => {
            return Err(Refused::anonymous(invalid(
                "id must be a string or an integer",
            )))
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    let refuse = |error| Refused {
        id: answer_id.clone(),
        error,
    };
    if fields.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(invalid("jsonrpc must be \"2.0\"")));
    }
    match fields.get("params") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => return Err(refuse(invalid("params must be an object"))),
    }
    match (fields.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Ok(MessageKind::Request {
            id,
            method: method.clone(),
        }),
        (Some(Value::String(method)), None) => Ok(MessageKind::Notification {
            method: method.clone(),
        }),
        (Some(_), _) => Err(refuse(invalid("method must be a string"))),
        (None, Some(id)) if fields.contains_key("result") != fields.contains_key("error") => {
            Ok(MessageKind::Response { id })
        }
        (None, _) => Err(refuse(invalid(
            "a message needs a method (request, notification) or one of result and error (response)",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};
    use serde_json::json;

    fn refused(bytes: &[u8]) -> Refused {
        admit(bytes).expect_err("refused")
    }

    #[test]
    fn bytes_that_are_not_json_are_parse_errors_without_an_id() {
        let deep = "[".repeat(10_000);
        let cases: [&[u8]; 6] = [
            b"",
            b"{",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} trailing",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"x\":\"\xff\"}}",
            b"\xff\xfe",
            deep.as_bytes(),
        ];
        for bytes in cases {
            let r = refused(bytes);
            assert_eq!(
                r.error.code,
                PARSE_ERROR,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(r.id, Value::Null);
        }
    }

    #[test]
    fn json_that_is_not_one_message_is_an_invalid_request() {
        let cases = [
            (json!(42), Value::Null),
            (json!("hi"), Value::Null),
            (Value::Null, Value::Null),
            (json!([]), Value::Null),
            (
                json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
                Value::Null,
            ),
            (json!({"id": 1, "method": "ping"}), json!(1)),
            (
                json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
                json!(1),
            ),
            (json!({"jsonrpc": "2.0", "id": 1, "method": 5}), json!(1)),
            (
                json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}),
                Value::Null,
            ),
            (
                json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
                Value::Null,
            ),
            (
                json!({"jsonrpc": "2.0", "id": "x", "method": "ping", "params": [1]}),
                json!("x"),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": "p"}),
                json!(2),
            ),
            (json!({"jsonrpc": "2.0", "id": 3}), json!(3)),
        ];
        for (message, id) in cases {
            let r = refused(message.to_string().as_bytes());
            assert_eq!(r.error.code, INVALID_REQUEST, "{message}");
            assert_eq!(r.id, id, "{message}");
            assert_eq!(r.response()["jsonrpc"], "2.0");
        }
    }

    #[test]
    fn wrong_param_types_are_invalid_params_with_the_request_id() {
        let message =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {"taskId": 1}});
        let r = refused(message.to_string().as_bytes());
        assert_eq!((r.error.code, r.id), (INVALID_PARAMS, json!(7)));
        assert!(r.error.message.contains("taskId"));
    }

    #[test]
    fn well_formed_messages_pass_with_their_kind() {
        let request = admit(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#).unwrap();
        assert_eq!(
            request.kind,
            MessageKind::Request {
                id: json!("a"),
                method: "tools/list".into()
            }
        );
        let note = admit(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note.kind, MessageKind::Notification { .. }));
        let response = admit(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(response.kind, MessageKind::Response { id: json!(3) });
        let custom = admit(br#"{"jsonrpc":"2.0","id":4,"method":"no/such","params":{}}"#);
        assert!(custom.is_ok(), "unknown methods are the server's to answer");
    }
}
