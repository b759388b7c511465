//! What a task may finish with and what it may ask its client: the shapes
//! MCP gives tool results, JSON-RPC errors and input requests.

use serde_json::Value;

use crate::record::OutcomeKind;

/// Server-to-client methods a task may wait on (MCP input requests).
pub(crate) const INPUT_METHODS: [&str; 3] =
    ["elicitation/create", "sampling/createMessage", "roots/list"];

/// The kind of a tool result: it must be a JSON object; `isError: true`
/// makes it an error result.
pub(crate) fn tool_result_kind(value: &Value) -> Result<OutcomeKind, String> {
    let Value::Object(map) = value else {
        return Err("a tool result must be a JSON object".into());
    };
    Ok(match map.get("isError") {
        Some(Value::Bool(true)) => OutcomeKind::ErrorResult,
        Some(Value::Bool(false)) | None => OutcomeKind::Result,
        Some(_) => return Err("a tool result's isError must be a boolean".into()),
    })
}

/// The kind of a result stored by the generic `set-result` and
/// `complete-with-result`: any JSON, an error result when it is an object
/// with `isError: true`.
pub(crate) fn any_result_kind(value: &Value) -> OutcomeKind {
    match value.get("isError") {
        Some(Value::Bool(true)) => OutcomeKind::ErrorResult,
        _ => OutcomeKind::Result,
    }
}

/// Checks a JSON-RPC error object: an integer `code`, a string `message`,
/// an optional `data`, nothing else.
pub(crate) fn check_rpc_error(value: &Value) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Err("a JSON-RPC error must be a JSON object".into());
    };
    if !map.get("code").is_some_and(|c| c.is_i64()) {
        return Err("a JSON-RPC error needs an integer code".into());
    }
    if !map.get("message").is_some_and(Value::is_string) {
        return Err("a JSON-RPC error needs a string message".into());
    }
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "code" | "message" | "data"))
    {
        return Err(format!("a JSON-RPC error has no member {extra:?}"));
    }
    Ok(())
}

/// The error a task whose worker was lost ends with.
/// `exhausted` is the retry policy's attempts when every one was used
/// (`None`: the task was not retryable).
pub(crate) fn worker_lost(holder: &str, lapsed_at: &str, exhausted: Option<u32>) -> String {
    let why = match exhausted {
        None => "the task's worker was lost (its replica stopped or was cut off)".to_owned(),
        Some(n) => format!(
            "the task's worker was lost on its last attempt ({n} of {n}: each one's replica stopped or was cut off)"
        ),
    };
    serde_json::json!({
        "code": -32603,
        "message": format!("{why}: its lease lapsed at {lapsed_at}"),
        "data": {"holder": holder},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_results_are_objects_and_is_error_decides_the_kind() {
        assert_eq!(
            tool_result_kind(&json!({"content": []})),
            Ok(OutcomeKind::Result)
        );
        assert_eq!(
            tool_result_kind(&json!({"content": [], "isError": true})),
            Ok(OutcomeKind::ErrorResult)
        );
        assert!(tool_result_kind(&json!([1])).is_err());
        assert!(tool_result_kind(&json!({"isError": "yes"})).is_err());
    }

    #[test]
    fn rpc_errors_need_code_and_message_only() {
        assert!(check_rpc_error(&json!({"code": -32000, "message": "x", "data": [1]})).is_ok());
        assert!(check_rpc_error(&json!({"code": 1.5, "message": "x"})).is_err());
        assert!(check_rpc_error(&json!({"code": 1})).is_err());
        assert!(check_rpc_error(&json!({"code": 1, "message": "x", "extra": 0})).is_err());
        assert!(check_rpc_error(&json!("boom")).is_err());
    }

    #[test]
    fn a_lost_worker_is_an_internal_error_naming_the_holder() {
        let e: Value = serde_json::from_str(&worker_lost("w1", "t", None)).unwrap();
        assert!(check_rpc_error(&e).is_ok());
        assert_eq!(e["code"], -32603);
        assert_eq!(e["data"]["holder"], "w1");
    }
}
