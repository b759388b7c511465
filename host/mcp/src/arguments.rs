//! Tool arguments checked against the tool's `inputSchema` before anything
//! runs or any task is created: invalid arguments are -32602 naming where
//! they are wrong.
//!
//! Each schema is compiled once, on the first call of its tool, and again
//! only when the tool's schema changes (a server may change its tools).
//! Schemas resolve no remote `$ref`s: a schema that does not compile is the
//! server's bug, reported as -32603 on every call of that tool.

use std::sync::Arc;

use dashmap::DashMap;
use jsonschema::Validator;
use rmcp::model::{JsonObject, Tool};
use serde_json::{json, Value};

use crate::error::RpcError;

/// How many of a call's schema violations an error lists.
const ERRORS_SHOWN: usize = 3;
/// The longest a violation's message may be in an error.
const MESSAGE_CHARS: usize = 200;

/// One compiled schema, and the schema it was compiled from.
struct Compiled {
    schema: Arc<JsonObject>,
    validator: Result<Arc<Validator>, String>,
}

/// The compiled `inputSchema`s of a server's tools.
#[derive(Default)]
pub(crate) struct ArgumentCheck {
    compiled: DashMap<String, Compiled>,
}

impl ArgumentCheck {
    /// Checks `arguments` of a call of `tool`.
    pub(crate) fn check(&self, tool: &Tool, arguments: &JsonObject) -> Result<(), RpcError> {
        let validator = self.validator(tool)?;
        let instance = Value::Object(arguments.clone());
        let errors: Vec<Value> = validator
            .iter_errors(&instance)
            .take(ERRORS_SHOWN)
            .map(|e| {
                json!({
                    "path": e.instance_path().to_string(),
                    "message": shorten(&e.to_string()),
                })
            })
            .collect();
        let Some(first) = errors.first() else {
            return Ok(());
        };
        let at = match first["path"].as_str() {
            Some("") | None => String::new(),
            Some(path) => format!(" at {path}"),
        };
        Err(RpcError {
            data: Some(json!({"tool": tool.name, "errors": errors})),
            ..RpcError::invalid_params(format!(
                "invalid arguments for tool {}{at}: {}",
                tool.name,
                first["message"].as_str().unwrap_or_default()
            ))
        })
    }

    fn validator(&self, tool: &Tool) -> Result<Arc<Validator>, RpcError> {
        let name = tool.name.as_ref();
        let current = |c: &Compiled| {
            Arc::ptr_eq(&c.schema, &tool.input_schema) || *c.schema == *tool.input_schema
        };
        // The read guard must be gone before the insert takes the shard.
        let cached = self
            .compiled
            .get(name)
            .filter(|c| current(c))
            .map(|c| c.validator.clone());
        let found = match cached {
            Some(validator) => validator,
            None => {
                let schema = Value::Object((*tool.input_schema).clone());
                let validator = jsonschema::validator_for(&schema)
                    .map(Arc::new)
                    .map_err(|e| e.to_string());
                self.compiled.insert(
                    name.to_owned(),
                    Compiled {
                        schema: tool.input_schema.clone(),
                        validator: validator.clone(),
                    },
                );
                validator
            }
        };
        found.map_err(|e| {
            RpcError::internal(format!(
                "the inputSchema of tool {name} does not compile: {e}"
            ))
        })
    }
}

/// `message`, cut to [`MESSAGE_CHARS`] characters.
fn shorten(message: &str) -> String {
    match message.char_indices().nth(MESSAGE_CHARS) {
        Some((end, _)) => format!("{}...", &message[..end]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INTERNAL_ERROR, INVALID_PARAMS};

    fn tool(schema: Value) -> Tool {
        let Value::Object(schema) = schema else {
            panic!("an object schema")
        };
        Tool::new("slow_compute", "test", Arc::new(schema))
    }

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn arguments_of_the_wrong_type_name_the_property() {
        let check = ArgumentCheck::default();
        let t = tool(json!({"type": "object", "properties": {"seconds": {"type": "number"}}}));
        assert!(check.check(&t, &args(json!({"seconds": 2}))).is_ok());
        let e = check
            .check(&t, &args(json!({"seconds": "abc"})))
            .unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("/seconds"), "{}", e.message);
        assert_eq!(e.data.unwrap()["tool"], "slow_compute");
    }

    #[test]
    fn a_changed_schema_is_compiled_again() {
        let check = ArgumentCheck::default();
        let loose = tool(json!({"type": "object"}));
        let strict = tool(json!({"type": "object", "required": ["path"]}));
        assert!(check.check(&loose, &args(json!({}))).is_ok());
        assert!(check.check(&strict, &args(json!({}))).is_err());
        assert!(check.check(&loose, &args(json!({}))).is_ok());
    }

    #[test]
    fn a_schema_that_does_not_compile_is_the_server_s_error() {
        let check = ArgumentCheck::default();
        let broken = tool(json!({"type": "no such type"}));
        let e = check.check(&broken, &args(json!({}))).unwrap_err();
        assert_eq!(e.code, INTERNAL_ERROR);
    }

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(500);
        assert_eq!(shorten(&long).chars().count(), MESSAGE_CHARS + 3);
    }
}
