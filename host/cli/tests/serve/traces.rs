//! Traces through two replicas on Redis, exported over OTLP to a receiver
//! the test runs: each client request is one trace parented on the
//! client's `traceparent`, with the store calls beneath, and every read of
//! a task (on any replica, in either revision) and its worker link to the
//! trace that created it.

use std::time::Duration;

use pmcp_tasks_tests::mcp_http::{self, CoreSession};
use pmcp_tasks_tests::otlp::{OtlpReceiver, ReceivedSpan};
use pmcp_tasks_tests::redis::RedisServer;
use serde_json::json;

/// Client trace contexts: trace id, parent span id.
const CREATE: (&str, &str) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
const READ: (&str, &str) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
const READ_2025: (&str, &str) = ("5ce0e9a56015fec5aadfa328ae398115", "ab12cd34ef567890");

fn traceparent((trace, span): (&str, &str)) -> String {
    format!("00-{trace}-{span}-01")
}

/// The one span of `trace` named `name`.
fn only<'a>(spans: &'a [ReceivedSpan], trace: &str, name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == trace && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "{name} in {trace}: {spans:#?}");
    found[0]
}

/// The store calls made beneath `parent`, by operation.
fn store_calls(spans: &[ReceivedSpan], parent: &ReceivedSpan) -> Vec<String> {
    spans
        .iter()
        .filter(|s| s.name == "pmcp_tasks.call" && s.parent_span_id == parent.span_id)
        .inspect(|s| assert_eq!(s.trace_id, parent.trace_id))
        .map(|s| s.attributes.get("op").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_trace_linked_to_the_task_s_creating_trace() {
    let receiver = OtlpReceiver::start().await;
    let redis = RedisServer::start();
    let exporting = ["--otlp-endpoint", receiver.endpoint.as_str()];
    let replica = |name: &str| super::redis_replica_with(&redis, name, "30000", &exporting);
    let (mut a, mut b) = (replica("a"), replica("b"));

    let created = mcp_http::call(
        &a.url,
        "tools/call",
        json!({
            "name": "slow_compute",
            "arguments": {"seconds": 0.2},
            "_meta": {"traceparent": traceparent(CREATE)},
        }),
    )
    .await
    .expect("tools/call on A");
    let id = created["taskId"].as_str().expect("a task").to_owned();
    let mut status = json!(null);
    for _ in 0..200 {
        let read = mcp_http::call(
            &b.url,
            "tasks/get",
            json!({"taskId": id, "_meta": {"traceparent": traceparent(READ)}}),
        )
        .await
        .expect("tasks/get on B");
        status = read["status"].clone();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "completed");
    let session = CoreSession::open(&b.url, None)
        .await
        .expect("a 2025 session");
    let read = session
        .call(
            &b.url,
            "tasks/get",
            json!({"taskId": id, "_meta": {"traceparent": traceparent(READ_2025)}}),
        )
        .await
        .expect("2025 tasks/get on B");
    assert_eq!(read["status"], "completed");

    // Stopping flushes each replica's queued spans.
    tokio::task::spawn_blocking(move || {
        for replica in [&mut a, &mut b] {
            let status = replica.terminate(Duration::from_secs(20));
            assert!(status.is_some_and(|s| s.success()), "{status:?}");
        }
    })
    .await
    .expect("stopping the replicas");
    let spans = receiver.spans();

    // The creating request: one span on A, the client's child, with the
    // task's create beneath it.
    let create = only(&spans, CREATE.0, "tools/call slow_compute");
    assert_eq!(create.parent_span_id, CREATE.1);
    assert_eq!(create.service, "pmcp-tasks");
    assert_eq!(create.attributes["mcp.method.name"], "tools/call");
    assert_eq!(create.attributes["mcp.protocol.version"], "2026-07-28");
    assert_eq!(create.attributes["pmcp_tasks.task_id"], id);
    let tag = &create.attributes["pmcp_tasks.owner_tag"];
    assert!(
        tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{tag}"
    );
    assert_eq!(store_calls(&spans, create), ["create"]);

    // The worker on A: linked to the creating span, its store calls
    // (the outcome at least) beneath it.
    let worker: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "task worker" && s.attributes.get("pmcp_tasks.task_id") == Some(&id))
        .collect();
    assert_eq!(worker.len(), 1, "{spans:#?}");
    let worker = worker[0];
    assert_ne!(worker.trace_id, CREATE.0, "the worker's trace is its own");
    assert!(worker
        .links
        .contains(&(CREATE.0.to_owned(), create.span_id.clone())));
    assert!(
        store_calls(&spans, worker).iter().any(|op| op == "finish"),
        "{spans:#?}"
    );

    // Every read on B: its own trace under the client's span, linked to
    // the creating span, the read beneath it; in both revisions.
    let reads: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == READ.0 && s.name == "tasks/get")
        .collect();
    assert!(!reads.is_empty());
    for read in reads {
        assert_eq!(read.parent_span_id, READ.1);
        assert_eq!(read.attributes["pmcp_tasks.task_id"], id);
        assert_eq!(&read.attributes["pmcp_tasks.owner_tag"], tag);
        assert!(read
            .links
            .contains(&(CREATE.0.to_owned(), create.span_id.clone())));
        assert_eq!(store_calls(&spans, read), ["inspect"]);
    }
    let read_2025 = only(&spans, READ_2025.0, "tasks/get");
    assert_eq!(read_2025.parent_span_id, READ_2025.1);
    assert_eq!(read_2025.attributes["mcp.protocol.version"], "2025-11-25");
    assert!(read_2025
        .links
        .contains(&(CREATE.0.to_owned(), create.span_id.clone())));

    // Nothing names the owner.
    for span in &spans {
        for value in span.attributes.values() {
            assert!(!value.contains("anonymous"), "{span:#?}");
        }
    }
}
