//! JSON input limits, canonical form and the variables merge.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::StoreError;

/// Caps applied to one JSON document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonLimits {
    /// Largest serialized size (bytes).
    pub max_bytes: usize,
    /// Deepest nesting (a scalar is depth 0, `[]` depth 1).
    pub max_depth: usize,
    /// Longest string or object key (bytes).
    pub max_string_bytes: usize,
}

/// Parses untrusted JSON text, enforcing `limits`; `what` names it in errors.
pub(crate) fn parse_limited(
    text: &str,
    limits: JsonLimits,
    what: &str,
) -> Result<Value, StoreError> {
    let invalid = |why: String| StoreError::InvalidParams(format!("{what}: {why}"));
    if text.len() > limits.max_bytes {
        return Err(invalid(format!(
            "{} bytes exceeds the limit of {} bytes",
            text.len(),
            limits.max_bytes
        )));
    }
    // serde_json refuses nesting beyond its recursion limit without
    // overflowing the stack, so parsing first is safe.
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("invalid JSON ({e})")))?;
    check_shape(&value, limits).map_err(invalid)?;
    Ok(value)
}

/// Checks nesting depth and string lengths without recursion.
fn check_shape(root: &Value, limits: JsonLimits) -> Result<(), String> {
    let long = |s: &str| s.len() > limits.max_string_bytes;
    let too_long = |s: &str| {
        format!(
            "a string of {} bytes exceeds the limit of {} bytes",
            s.len(),
            limits.max_string_bytes
        )
    };
    let mut pending = vec![(root, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        match value {
            Value::String(s) if long(s) => return Err(too_long(s)),
            Value::Array(items) => {
                if depth + 1 > limits.max_depth {
                    return Err(format!(
                        "nesting exceeds the limit of {} levels",
                        limits.max_depth
                    ));
                }
                pending.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(map) => {
                if depth + 1 > limits.max_depth {
                    return Err(format!(
                        "nesting exceeds the limit of {} levels",
                        limits.max_depth
                    ));
                }
                if let Some(key) = map.keys().find(|k| long(k)) {
                    return Err(too_long(key));
                }
                pending.extend(map.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Canonical serialization: compact, object keys sorted (serde_json's
/// default map is ordered by key). Written straight into a buffer (not
/// through `Display`, whose per-fragment `fmt` calls cost several times
/// more in wasm) and never re-validated: the serializer only writes JSON.
pub(crate) fn canonical(value: &Value) -> Result<Box<RawValue>, StoreError> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| StoreError::Internal(format!("cannot serialize JSON: {e}")))
}

/// Applies a variables patch: each key is set, and a `null` value removes it.
pub(crate) fn merge_variables(variables: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            variables.remove(&key);
        } else {
            variables.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: JsonLimits = JsonLimits {
        max_bytes: 1_000,
        max_depth: 4,
        max_string_bytes: 10,
    };

    #[test]
    fn accepts_within_limits_and_canonicalizes_key_order() {
        let v = parse_limited(r#"{ "b": 1, "a": [true, null] }"#, LIMITS, "variables").unwrap();
        assert_eq!(canonical(&v).unwrap().get(), r#"{"a":[true,null],"b":1}"#);
    }

    #[test]
    fn refuses_oversized_deep_long_and_malformed_input() {
        let err = |text: &str| {
            parse_limited(text, LIMITS, "result")
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&format!("\"{}\"", "x".repeat(2_000))).contains("exceeds the limit of 1000 bytes")
        );
        assert!(err("[[[[[1]]]]]").contains("nesting exceeds the limit of 4 levels"));
        assert!(err(r#"{"k": "01234567890"}"#).contains("string of 11 bytes exceeds"));
        assert!(err(r#"{"01234567890": 1}"#).contains("string of 11 bytes exceeds"));
        assert!(err("{").starts_with("result: invalid JSON"));
    }

    #[test]
    fn hostile_nesting_beyond_the_parser_limit_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let limits = JsonLimits {
            max_bytes: 1 << 20,
            ..LIMITS
        };
        assert!(matches!(
            parse_limited(&deep, limits, "x"),
            Err(StoreError::InvalidParams(_))
        ));
    }

    #[test]
    fn merge_sets_and_null_deletes() {
        let mut vars = json!({"keep": 1, "drop": 2, "change": 3})
            .as_object()
            .unwrap()
            .clone();
        let patch = json!({"drop": null, "change": "x", "new": [1]})
            .as_object()
            .unwrap()
            .clone();
        merge_variables(&mut vars, patch);
        assert_eq!(
            Value::Object(vars),
            json!({"keep": 1, "change": "x", "new": [1]})
        );
    }
}
