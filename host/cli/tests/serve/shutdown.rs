//! Stopping a replica cleanly: SIGTERM while it runs tasks.

use std::time::{Duration, Instant};

use pmcp_tasks_tests::mcp_http;
use pmcp_tasks_tests::redis::RedisServer;
use pmcp_tasks_tests::replica::Replica;
use serde_json::{json, Value};

use super::binary;

/// A 2026-07-28 call of `slow_compute` for `seconds`: its task id.
pub(super) async fn start_task(url: &str, seconds: f64) -> String {
    start_task_as(url, None, seconds).await
}

/// [`start_task`] as the owner of bearer `token` (`None`: the replica's
/// identity).
pub(super) async fn start_task_as(url: &str, token: Option<&str>, seconds: f64) -> String {
    let created = mcp_http::call_as(
        url,
        token,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": seconds}}),
    )
    .await
    .expect("tools/call");
    created["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned()
}

/// The task `id` as `tasks/get` reads it through `url`.
pub(super) async fn task(url: &str, id: &str) -> Value {
    task_as(url, None, id).await
}

/// [`task`] as the owner of bearer `token`.
pub(super) async fn task_as(url: &str, token: Option<&str>, id: &str) -> Value {
    mcp_http::call_as(url, token, "tasks/get", json!({"taskId": id}))
        .await
        .expect("tasks/get")
}

/// SIGTERM while replica A runs two tasks (leases of 30 s, a grace of
/// 2 s): the tool that finishes within the grace ends `completed`, the
/// one still running ends `failed` with the shutdown message, both by the
/// time A exits (0) well inside the lease; B's task runs on untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_ends_its_tasks_within_the_grace_not_the_lease() {
    let redis = RedisServer::start();
    let replica = |name: &str| {
        super::redis_replica_with(&redis, name, "30000", &["--shutdown-grace-ms", "2000"])
    };
    let (mut a, b) = (replica("a"), replica("b"));
    let quick = start_task(&a.url, 0.5).await;
    let slow = start_task(&a.url, 600.0).await;
    let elsewhere = start_task(&b.url, 600.0).await;
    let exited = tokio::task::spawn_blocking(move || {
        let status = a.terminate(Duration::from_secs(20));
        (a, status)
    })
    .await
    .expect("terminating A")
    .1;
    let status = exited.expect("A exited within 20 s of SIGTERM (its leases are 30 s)");
    assert!(status.success(), "{status}");

    assert_eq!(task(&b.url, &quick).await["status"], "completed");
    let failed = task(&b.url, &slow).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the replica shut down")),
        "{failed}"
    );
    assert_eq!(task(&b.url, &elsewhere).await["status"], "working");
}

/// `--log-format json`: every line on stderr is one JSON object with a
/// level and a message, from start to stop (the warnings of a replica
/// without a deployment secret, the announcements of serving and stopping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_from_start_to_stop() {
    let mut server = Replica::start_with_env(
        binary(),
        &["--backend", "memory", "--log-format", "json"],
        &[],
        &[("RUST_LOG", "warn")],
    );
    start_task(&server.url, 0.0).await;
    let mut server = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        server
    })
    .await
    .expect("terminating the server");
    // The reader thread may still hold the last line.
    let mut lines = server.stderr_lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l| l.contains("stopped (")) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        lines = server.stderr_lines();
    }
    assert!(!server.is_running());
    let messages: Vec<String> = lines
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(event["level"].is_string(), "{line}");
            event["fields"]["message"]
                .as_str()
                .unwrap_or_else(|| panic!("no message: {line}"))
                .to_owned()
        })
        .collect();
    let said = |text: &str| messages.iter().any(|m| m.contains(text));
    assert!(said("serving MCP at"), "{messages:?}");
    assert!(said("sealed by a random key"), "{messages:?}");
    assert!(said("stopped ("), "{messages:?}");
}
