//! JSON-RPC errors with the codes the MCP specification names.

use pmcp_tasks_host::TaskError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use pmcp_tasks_contract::json_rpc::{
    INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY, PARSE_ERROR,
};

/// The tasks extension's identifier (SEP-2663).
pub(crate) const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// A JSON-RPC error object, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
#[non_exhaustive]
pub struct RpcError {
    /// The error code.
    pub code: i32,
    /// A short description.
    pub message: String,
    /// Details, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error carrying `data` (the JSON-RPC error's `data` member).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700.
    pub fn parse_error(message: impl Into<String>) -> Self {
        RpcError::new(PARSE_ERROR, message)
    }

    /// -32600.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_REQUEST, message)
    }

    /// -32602.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// -32601 for `method`.
    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    /// -32603.
    pub fn internal(message: impl Into<String>) -> Self {
        RpcError::new(INTERNAL_ERROR, message)
    }

    /// -32021 naming the tasks extension as the missing capability.
    pub fn tasks_extension_required() -> Self {
        RpcError {
            code: MISSING_REQUIRED_CLIENT_CAPABILITY,
            message: "Missing required client capability".into(),
            data: Some(json!({
                "requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}
            })),
        }
    }

    /// The error as a JSON object (`{code, message, data?}`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({"code": self.code}))
    }
}

impl From<TaskError> for RpcError {
    fn from(e: TaskError) -> Self {
        RpcError::new(e.json_rpc_code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_capability_error_names_the_extension() {
        let e = RpcError::tasks_extension_required().to_value();
        assert_eq!(e["code"], -32021);
        assert!(e["data"]["requiredCapabilities"]["extensions"][TASKS_EXTENSION].is_object());
    }

    #[test]
    fn store_errors_keep_their_codes() {
        let not_found = TaskError::NotFound("task not found: x".into());
        assert_eq!(RpcError::from(not_found).code, INVALID_PARAMS);
        let conflict = TaskError::Conflict("busy".into());
        assert_eq!(RpcError::from(conflict).code, INTERNAL_ERROR);
    }
}
