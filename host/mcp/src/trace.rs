//! Trace context from the client through every replica into the store
//! (SEP-414: W3C trace context in a request's `params._meta`).
//!
//! Each request the task layer answers runs in one `mcp.request` span
//! (method, revision, task id, owner tag: never the owner id or a token),
//! a root in this process whose OpenTelemetry parent is the request's
//! `_meta.traceparent` when it carries one. The store calls it makes
//! (`pmcp_tasks.call`, with guest and backend time) are its children. A
//! task keeps the `traceparent` of the span that created it, so a later
//! read on any replica, and the task's worker (renewals, progress, the
//! outcome), link to the creating trace.
//!
//! Without an OpenTelemetry layer installed (see the `otlp` feature's
//! `telemetry` module) this costs a span per request and exports nothing.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use pmcp_tasks_contract::trace_parent::is_trace_parent;
use serde_json::{Map, Value};
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::revision::Revision;

/// The target of the spans this crate makes (`mcp.request`,
/// `pmcp_tasks.worker`): what a tracing filter names to export them.
pub const SPAN_TARGET: &str = "pmcp_tasks";

/// The span one request of `method` runs in, read from its JSON `params`:
/// the tool of a `tools/call`, the task id, and the trace context in
/// `_meta` (see [`span_of`]).
pub(crate) fn request_span(method: &str, revision: Revision, params: Option<&Value>) -> Span {
    let field = |name: &str| params.and_then(|p| p.get(name));
    let tool = field("name")
        .and_then(Value::as_str)
        .filter(|_| method == "tools/call");
    let task_id = field("taskId").and_then(Value::as_str);
    let meta = field("_meta").and_then(Value::as_object);
    span_of(method, revision, tool, task_id, meta)
}

/// The span one request of `method` runs in: the `tool` it calls, the
/// task it concerns, parented on the trace context in its `_meta` (when
/// valid).
pub(crate) fn span_of(
    method: &str,
    revision: Revision,
    tool: Option<&str>,
    task_id: Option<&str>,
    meta: Option<&Map<String, Value>>,
) -> Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        parent: None,
        "mcp.request",
        otel.name = %span_name(method, tool),
        otel.kind = "server",
        mcp.method.name = %method,
        mcp.protocol.version = revision.protocol_version(),
        gen_ai.tool.name = tool,
        pmcp_tasks.task_id = task_id,
        pmcp_tasks.owner_tag = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(parent) = meta.and_then(remote_parent) {
        // Fails only without an OpenTelemetry layer: nothing to parent then.
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }
    span
}

/// The span a task's worker runs in, linked to the span that created the
/// task.
pub(crate) fn worker_span(task_id: &str, created_by: Option<&str>) -> Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        parent: None,
        "pmcp_tasks.worker",
        otel.name = "task worker",
        otel.kind = "internal",
        pmcp_tasks.task_id = task_id,
    );
    add_creation_link(&span, created_by);
    span
}

/// The span name OpenTelemetry's MCP conventions give a request:
/// `{method} {target}`, the target being the tool of a `tools/call`.
fn span_name(method: &str, tool: Option<&str>) -> String {
    match tool {
        Some(tool) => format!("{method} {tool}"),
        None => method.to_owned(),
    }
}

/// The client's trace context in a request's `_meta`: `traceparent`, and
/// `tracestate` if it parses.
fn remote_parent(meta: &Map<String, Value>) -> Option<SpanContext> {
    let state = meta
        .get("tracestate")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    span_context_with(meta.get("traceparent")?.as_str()?, state)
}

/// A remote span context from a W3C `traceparent`.
fn span_context(trace_parent: &str) -> Option<SpanContext> {
    span_context_with(trace_parent, TraceState::default())
}

fn span_context_with(trace_parent: &str, state: TraceState) -> Option<SpanContext> {
    if !is_trace_parent(trace_parent) {
        return None;
    }
    let mut fields = trace_parent.split('-').skip(1);
    let trace_id = TraceId::from_hex(fields.next()?).ok()?;
    let span_id = SpanId::from_hex(fields.next()?).ok()?;
    let flags = u8::from_str_radix(fields.next()?, 16).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    ))
}

/// The W3C `traceparent` of a span context.
fn trace_parent_of(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// The `traceparent` of the current span, when an OpenTelemetry layer
/// gives it one: what a new task keeps.
pub(crate) fn current_trace_parent() -> Option<String> {
    let span = Span::current();
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span = context.span();
    let current = span.span_context();
    current.is_valid().then(|| trace_parent_of(current))
}

/// Links the current span to the span that created a task.
pub(crate) fn link_to_creation(created_by: Option<&str>) {
    add_creation_link(&Span::current(), created_by);
}

/// Links `span` to the span whose `traceparent` a task kept.
fn add_creation_link(span: &Span, created_by: Option<&str>) {
    if let Some(creation) = created_by
        .filter(|_| !span.is_disabled())
        .and_then(span_context)
    {
        span.add_link(creation);
    }
}

/// Records the task a request concerns on its span.
pub(crate) fn record_task(task_id: &str) {
    Span::current().record("pmcp_tasks.task_id", task_id);
}

/// Records who calls on the current span, as a tag that cannot be read
/// back into the owner id.
pub(crate) fn record_owner(owner: &str) {
    let span = Span::current();
    // Only a request span has the field: the digest is not computed for
    // nothing.
    if span.field(OWNER_TAG).is_some() {
        span.record(OWNER_TAG, pmcp_tasks_host::owner_tag(owner).as_str());
    }
}

/// The field of a request span that tags its owner.
const OWNER_TAG: &str = "pmcp_tasks.owner_tag";

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_reads_back_as_itself() {
        let context = span_context(PARENT).expect("valid");
        assert!(context.is_remote());
        assert!(context.is_sampled());
        assert_eq!(trace_parent_of(&context), PARENT);
    }

    #[test]
    fn the_client_context_comes_from_meta_with_its_state() {
        let meta = |v: Value| v.as_object().cloned().expect("an object");
        let context = remote_parent(&meta(serde_json::json!({
            "traceparent": PARENT,
            "tracestate": "vendor=1",
        })))
        .expect("parent");
        assert_eq!(context.trace_state().get("vendor"), Some("1"));
        assert!(remote_parent(&meta(serde_json::json!({"traceparent": "00-x-y-01"}))).is_none());
        assert!(remote_parent(&meta(serde_json::json!({"traceparent": 7}))).is_none());
    }

    #[test]
    fn a_tool_call_span_is_named_after_its_tool() {
        assert_eq!(span_name("tools/call", Some("greet")), "tools/call greet");
        assert_eq!(span_name("tasks/get", None), "tasks/get");
    }
}
