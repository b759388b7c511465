//! Which tool calls become tasks: the tool's declared support, the
//! request, and the revision decide, as the specification lays down.

use serde_json::Value;

use crate::error::RpcError;
use crate::revision::Revision;

/// A tool's `execution.taskSupport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TaskSupport {
    /// Never runs as a task (also when the tool declares nothing).
    #[default]
    Forbidden,
    /// Runs as a task when asked (2025-11-25) or when the server chooses
    /// and the client declared the extension (2026-07-28).
    Optional,
    /// Only runs as a task.
    Required,
}

impl TaskSupport {
    /// The wire name (`forbidden`, `optional`, `required`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSupport::Forbidden => "forbidden",
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}

/// A task support name that is none of `forbidden`, `optional`, `required`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task support `{name}` (expected forbidden, optional or required)")]
#[non_exhaustive]
pub struct UnknownTaskSupport {
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for TaskSupport {
    type Err = UnknownTaskSupport;

    /// Reads the wire name, as [`TaskSupport::as_str`] writes it.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [
            TaskSupport::Forbidden,
            TaskSupport::Optional,
            TaskSupport::Required,
        ]
        .into_iter()
        .find(|support| support.as_str() == name)
        .ok_or_else(|| UnknownTaskSupport {
            name: name.to_owned(),
        })
    }
}

/// How one tool call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Execution {
    /// As a plain call: the result is the response.
    Direct,
    /// As a task, with the ttl the request asked for (ms), if any.
    Task {
        /// The requested ttl.
        ttl_ms: Option<u64>,
    },
}

/// Decides how a `tools/call` runs.
///
/// - 2025-11-25: the request's `params.task` (an object, possibly empty)
///   asks for a task. A task on a `forbidden` tool and a `required` tool
///   called without one are -32601.
/// - 2026-07-28: the server decides. A task only when the request declared
///   the tasks extension; a `required` tool without that declaration is
///   -32021 naming the extension. `optional` tools run as tasks for
///   declaring clients (they are the long-running ones).
pub fn decide(
    revision: Revision,
    support: TaskSupport,
    task_param: Option<&Value>,
    declares_extension: bool,
) -> Result<Execution, RpcError> {
    match revision {
        Revision::V2025_11_25 => match (task_param, support) {
            (None, TaskSupport::Required) => Err(RpcError::method_not_found(
                "tools/call without a task on a tool that requires one",
            )),
            (None, _) => Ok(Execution::Direct),
            (Some(_), TaskSupport::Forbidden) => Err(RpcError::method_not_found(
                "tools/call as a task on a tool that does not support tasks",
            )),
            (Some(Value::Object(task)), _) => {
                let ttl_ms = match task.get("ttl") {
                    None | Some(Value::Null) => None,
                    Some(ttl) => Some(ttl.as_u64().ok_or_else(|| {
                        RpcError::invalid_params("task.ttl must be a non-negative integer (ms)")
                    })?),
                };
                Ok(Execution::Task { ttl_ms })
            }
            (Some(_), _) => Err(RpcError::invalid_params("params.task must be an object")),
        },
        Revision::V2026_07_28 => match (support, declares_extension) {
            (TaskSupport::Forbidden, _) => Ok(Execution::Direct),
            (_, true) => Ok(Execution::Task { ttl_ms: None }),
            (TaskSupport::Optional, false) => Ok(Execution::Direct),
            (TaskSupport::Required, false) => Err(RpcError::tasks_extension_required()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{METHOD_NOT_FOUND, MISSING_REQUIRED_CLIENT_CAPABILITY};
    use serde_json::json;

    const OLD: Revision = Revision::V2025_11_25;
    const NEW: Revision = Revision::V2026_07_28;

    #[test]
    fn task_support_reads_its_wire_names_back() {
        for support in [
            TaskSupport::Forbidden,
            TaskSupport::Optional,
            TaskSupport::Required,
        ] {
            assert_eq!(support.as_str().parse(), Ok(support));
        }
        assert!("Required".parse::<TaskSupport>().is_err());
    }

    #[test]
    fn the_2025_client_asks_and_the_tool_permits() {
        use TaskSupport::*;
        let task = json!({});
        let ttl = json!({"ttl": 60000});
        assert_eq!(decide(OLD, Optional, None, false), Ok(Execution::Direct));
        assert_eq!(
            decide(OLD, Optional, Some(&task), false),
            Ok(Execution::Task { ttl_ms: None })
        );
        assert_eq!(
            decide(OLD, Required, Some(&ttl), false),
            Ok(Execution::Task {
                ttl_ms: Some(60_000)
            })
        );
        for (support, param) in [(Forbidden, Some(&task)), (Required, None)] {
            let e = decide(OLD, support, param, false).unwrap_err();
            assert_eq!(e.code, METHOD_NOT_FOUND, "{support:?}");
        }
        assert!(decide(OLD, Optional, Some(&json!({"ttl": -1})), false).is_err());
    }

    #[test]
    fn the_2026_server_decides_for_declaring_clients_only() {
        use TaskSupport::*;
        assert_eq!(decide(NEW, Forbidden, None, true), Ok(Execution::Direct));
        assert_eq!(
            decide(NEW, Optional, None, true),
            Ok(Execution::Task { ttl_ms: None })
        );
        assert_eq!(decide(NEW, Optional, None, false), Ok(Execution::Direct));
        let e = decide(NEW, Required, None, false).unwrap_err();
        assert_eq!(e.code, MISSING_REQUIRED_CLIENT_CAPABILITY);
    }
}
