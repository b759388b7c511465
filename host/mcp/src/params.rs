//! The types of every method's params, in one place: the gate checks
//! them before a request reaches rmcp or the task service, and the service
//! reads its fields through the same functions, so a wrong type is -32602
//! naming the field wherever it comes from.

use serde_json::{Map, Value};

use crate::error::RpcError;

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Object => "an object",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_string(),
            Kind::Object => value.is_object(),
        }
    }
}

/// Whether a field must be there (`null` counts as absent for optional ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    Optional,
}

use Kind::{Object, String as Str};
use Presence::{Optional, Required};

/// One field rule: `(field, presence, kind)`.
type Rule = (&'static str, Presence, Kind);

/// The fields of the methods this server answers, for both revisions.
/// Methods not listed here have no rule of ours (rmcp's own types decide).
fn rules(method: &str) -> &'static [Rule] {
    match method {
        "tasks/get" | "tasks/result" | "tasks/cancel" => &[("taskId", Required, Str)],
        "tasks/update" => &[
            ("taskId", Required, Str),
            ("inputResponses", Required, Object),
        ],
        "tasks/list"
        | "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list" => &[("cursor", Optional, Str)],
        "tools/call" => &[
            ("name", Required, Str),
            ("arguments", Optional, Object),
            ("task", Optional, Object),
            ("inputResponses", Optional, Object),
        ],
        "initialize" => &[
            ("protocolVersion", Required, Str),
            ("capabilities", Required, Object),
            ("clientInfo", Required, Object),
        ],
        _ => &[],
    }
}

/// Checks `params` (an object, or `Null` when absent) of `method` against
/// its rules and the `_meta` member every method may carry.
pub(crate) fn check(method: &str, params: &Value) -> Result<(), RpcError> {
    field(params, "_meta", Optional, Object)?;
    for &(name, presence, kind) in rules(method) {
        field(params, name, presence, kind)?;
    }
    if method == "initialize" {
        let info = params.get("clientInfo");
        for name in ["name", "version"] {
            if !info.and_then(|i| i.get(name)).is_some_and(Value::is_string) {
                return Err(wrong_type(&format!("clientInfo.{name}"), Str));
            }
        }
    }
    Ok(())
}

fn wrong_type(path: &str, kind: Kind) -> RpcError {
    RpcError {
        data: Some(serde_json::json!({"field": format!("params.{path}")})),
        ..RpcError::invalid_params(format!("params.{path} must be {}", kind.name()))
    }
}

/// The field `name` of `params` if it has the `kind`; absent (or `null`)
/// is `None` for optional fields and an error for required ones.
fn field<'a>(
    params: &'a Value,
    name: &str,
    presence: Presence,
    kind: Kind,
) -> Result<Option<&'a Value>, RpcError> {
    match params.get(name) {
        Some(value) if kind.admits(value) => Ok(Some(value)),
        None | Some(Value::Null) if presence == Optional => Ok(None),
        _ => Err(wrong_type(name, kind)),
    }
}

/// The required string field `name` of `params`.
pub(crate) fn required_str<'a>(params: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    Ok(field(params, name, Required, Str)?
        .and_then(Value::as_str)
        .unwrap_or_default())
}

/// The optional string field `name` of `params`.
pub(crate) fn optional_str<'a>(params: &'a Value, name: &str) -> Result<Option<&'a str>, RpcError> {
    Ok(field(params, name, Optional, Str)?.and_then(Value::as_str))
}

/// The required object field `name` of `params`.
pub(crate) fn required_object<'a>(
    params: &'a Value,
    name: &str,
) -> Result<&'a Map<String, Value>, RpcError> {
    field(params, name, Required, Object)?
        .and_then(Value::as_object)
        .ok_or_else(|| wrong_type(name, Object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::INVALID_PARAMS;
    use serde_json::json;

    fn refused(method: &str, params: Value) -> String {
        let e = check(method, &params).expect_err("refused");
        assert_eq!(e.code, INVALID_PARAMS);
        e.message
    }

    #[test]
    fn a_task_id_of_any_other_type_names_the_field() {
        for bad in [json!(1), json!(null), json!({}), json!([]), json!(true)] {
            for method in ["tasks/get", "tasks/result", "tasks/cancel", "tasks/update"] {
                let message = refused(method, json!({"taskId": bad, "inputResponses": {}}));
                assert_eq!(message, "params.taskId must be a string", "{method}");
            }
        }
        assert!(refused("tasks/get", json!({})).contains("taskId"));
        assert!(check("tasks/get", &json!({"taskId": "t"})).is_ok());
    }

    #[test]
    fn tool_calls_need_a_name_and_object_arguments() {
        assert!(refused("tools/call", json!({"name": 5})).contains("params.name"));
        assert!(refused("tools/call", json!({})).contains("params.name"));
        for bad in [json!("x"), json!([1]), json!(3)] {
            let message = refused("tools/call", json!({"name": "greet", "arguments": bad}));
            assert_eq!(message, "params.arguments must be an object");
        }
        let message = refused("tools/call", json!({"name": "greet", "task": "yes"}));
        assert_eq!(message, "params.task must be an object");
        assert!(check("tools/call", &json!({"name": "greet", "arguments": null})).is_ok());
        assert!(check("tools/call", &json!({"name": "greet", "task": {"ttl": 5}})).is_ok());
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        assert!(check("tasks/list", &Value::Null).is_ok());
        assert!(check("tasks/list", &json!({"cursor": null})).is_ok());
        assert!(refused("tasks/list", json!({"cursor": 7})).contains("cursor"));
        assert!(refused("ping", json!({"_meta": 1})).contains("_meta"));
        assert!(check("ping", &json!({"anything": [1, 2]})).is_ok());
    }

    #[test]
    fn initialize_names_the_missing_client_field() {
        let good = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "c", "version": "1"},
        });
        assert!(check("initialize", &good).is_ok());
        let mut bad = good.clone();
        bad["clientInfo"] = json!({"name": "c"});
        assert_eq!(
            refused("initialize", bad),
            "params.clientInfo.version must be a string"
        );
    }

    #[test]
    fn the_readers_agree_with_the_rules() {
        let params = json!({"taskId": "t", "inputResponses": {"k": 1}, "cursor": null});
        assert_eq!(required_str(&params, "taskId").unwrap(), "t");
        assert_eq!(optional_str(&params, "cursor").unwrap(), None);
        assert_eq!(required_object(&params, "inputResponses").unwrap().len(), 1);
        assert!(required_object(&params, "taskId").is_err());
    }
}
