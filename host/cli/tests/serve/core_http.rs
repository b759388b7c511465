//! MCP 2025-11-25 over Streamable HTTP at the same endpoint as
//! 2026-07-28: sealed sessions any replica serves, bound to the identity
//! that opened them; the official SDK clients' task flows through a
//! round-robin proxy to two replicas (no affinity); a replica killed
//! mid-task.

use pmcp_tasks_tests::mcp_http::{self, CoreSession};
use pmcp_tasks_tests::replica::Replica;
use serde_json::json;

use super::{assert_client_said, binary};

/// Runs the Python and TypeScript SDK clients' 2025 flows against `url`.
pub(super) async fn run_sdk_clients(url: &str) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let script = pmcp_tasks_tests::conformance::client_script("python_core_tasks.py");
        let output = std::process::Command::new(pmcp_tasks_tests::conformance::mcp_python())
            .arg(script)
            .arg(&url)
            .output()
            .expect("running the Python SDK client");
        assert_client_said(&output, "task flows: ok");
        let output =
            pmcp_tasks_tests::conformance::run_node_client("ts_core_tasks.mjs", &[url.as_ref()]);
        assert_client_said(&output, "task stream: ok");
    })
    .await
    .expect("the clients ran");
}

/// One server on memory: both SDKs' 2025 flows over HTTP; the 2026-07-28
/// surface still answers at the same URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_run_the_2025_task_flows_over_http() {
    let server = Replica::start(binary(), &["--backend", "memory"], &[]);
    run_sdk_clients(&server.url).await;
    let listed = mcp_http::call(&server.url, "tools/list", json!({}))
        .await
        .expect("2026-07-28 tools/list");
    assert!(listed["tools"].as_array().is_some_and(|t| !t.is_empty()));
}

/// A session is sealed to the identity that opened it: another token's
/// requests with the same id are refused as an unknown session (404), and
/// a forged id is unknown too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_unknown_to_every_other_identity() {
    let server = Replica::start(
        binary(),
        &["--backend", "memory"],
        &["--insecure-token-owners"],
    );
    let alice = CoreSession::open(&server.url, Some("alice-token"))
        .await
        .expect("a session");
    let id = alice
        .start_task(&server.url, "slow_compute", json!({"seconds": 60}))
        .await;
    let mallory = CoreSession::open(&server.url, Some("mallory-token"))
        .await
        .expect("a session");
    let get = json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"taskId": id}})
        .to_string()
        .into_bytes();
    let stolen = mallory.with_id(&alice.id);
    let refused = stolen
        .raw(&server.url, get.clone())
        .await
        .expect("an answer");
    assert_eq!(refused.status, 404, "{refused:?}");
    let forged = alice.with_id(&format!(
        "s2-{}-{:x}-{}",
        "0".repeat(32),
        pmcp_tasks_tests::jwt::now_s(),
        "0".repeat(64)
    ));
    let unknown = forged.raw(&server.url, get).await.expect("an answer");
    assert_eq!(unknown.status, 404, "{unknown:?}");
}

#[cfg(feature = "redis")]
mod on_redis {
    use std::time::{Duration, Instant};

    use pmcp_tasks_tests::redis::RedisServer;
    use pmcp_tasks_tests::round_robin::RoundRobin;
    use serde_json::json;

    use super::*;

    /// Both SDKs' 2025 flows through a per-request round-robin proxy to two
    /// replicas on one Redis: a session opened on one replica is served by
    /// both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sdks_run_the_2025_task_flows_through_two_replicas_on_redis() {
        let redis = RedisServer::start();
        let (a, b) = (
            super::super::redis_replica(&redis, "a", "30000"),
            super::super::redis_replica(&redis, "b", "30000"),
        );
        let proxy = RoundRobin::start(vec![a.address.clone(), b.address.clone()]).await;
        run_sdk_clients(&proxy.url).await;
        super::super::assert_both_served(&proxy);
    }

    /// Two replicas on one Redis, sessions opened on A.
    fn two_replicas(redis: &RedisServer) -> (Replica, Replica) {
        (
            super::super::redis_replica(redis, "a", "30000"),
            super::super::redis_replica(redis, "b", "30000"),
        )
    }

    /// `DELETE` of a session answers 405 (Allow: POST) on every replica
    /// and ends nothing: the server does not let clients end sessions (a
    /// session ends at its maximum age), and says so instead of answering
    /// 200 for a session that lives on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_is_not_ended_by_delete_and_the_answer_says_so() {
        let redis = RedisServer::start();
        let (a, b) = two_replicas(&redis);
        let session = CoreSession::open(&a.url, None).await.expect("a session");
        for replica in [&a, &b] {
            let deleted = session.delete(&replica.url).await.expect("an answer");
            assert_eq!(deleted.status, 405, "{deleted:?}");
            assert_eq!(
                deleted.headers.get("allow").and_then(|v| v.to_str().ok()),
                Some("POST"),
                "{deleted:?}"
            );
            let listed = session
                .call(&replica.url, "tasks/list", json!({}))
                .await
                .expect("the session still serves");
            assert!(listed["tasks"].is_array(), "{listed}");
        }
        let unknown = session
            .with_id("s2-unknown")
            .delete(&b.url)
            .await
            .expect("an answer");
        assert_eq!(unknown.status, 404, "{unknown:?}");
    }

    /// What an `initialize` advertises, the session serves, on every
    /// replica: a client asking for 2025-11-25 gets 2025 tasks even when
    /// it also declares the extension (SEP-2663: the extension is not
    /// defined under 2025-11-25), with `tasks/list` and `tasks/result`; a
    /// client asking for 2026-07-28 with the extension (rmcp's) gets the
    /// extension's capability alone, and the methods the extension removed
    /// answer -32601.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_serves_what_its_initialize_advertised() {
        let redis = RedisServer::start();
        let (a, b) = two_replicas(&redis);
        let extension = json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
        let declared = json!({
            "tasks": {"requests": {"tools": {"call": {}}}},
            "extensions": {"io.modelcontextprotocol/tasks": {}},
        });

        let (core, result) = CoreSession::open_asking(&a.url, None, "2025-11-25", declared)
            .await
            .expect("a 2025 session");
        let capabilities = &result["capabilities"];
        assert!(capabilities["tasks"]["list"].is_object(), "{result}");
        assert!(
            capabilities["tasks"]["requests"]["tools"]["call"].is_object(),
            "{result}"
        );
        assert!(capabilities.get("extensions").is_none(), "{result}");
        let id = core
            .start_task(&a.url, "slow_compute", json!({"seconds": 0}))
            .await;
        for replica in [&a, &b] {
            let listed = core
                .call(&replica.url, "tasks/list", json!({}))
                .await
                .expect("tasks/list, advertised");
            assert!(
                listed["tasks"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["taskId"] == id)),
                "{listed}"
            );
            let outcome = core
                .call(&replica.url, "tasks/result", json!({"taskId": id}))
                .await
                .expect("tasks/result, advertised");
            assert!(outcome["content"].is_array(), "{outcome}");
        }

        let (ext, result) = CoreSession::open_asking(&a.url, None, "2026-07-28", extension)
            .await
            .expect("an extension session");
        let capabilities = &result["capabilities"];
        assert!(
            capabilities["extensions"]["io.modelcontextprotocol/tasks"].is_object(),
            "{result}"
        );
        assert!(capabilities.get("tasks").is_none(), "{result}");
        for replica in [&a, &b] {
            for method in ["tasks/list", "tasks/result"] {
                let refused = ext
                    .call(&replica.url, method, json!({"taskId": id}))
                    .await
                    .expect_err("not part of the extension");
                assert_eq!(refused["code"], -32601, "{method}: {refused}");
            }
            let created = ext
                .call(
                    &replica.url,
                    "tools/call",
                    json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
                )
                .await
                .expect("a task-creating call");
            assert_eq!(created["resultType"], "task", "{created}");
            let task = created["taskId"].as_str().expect("a task");
            let got = ext
                .call(&replica.url, "tasks/get", json!({"taskId": task}))
                .await
                .expect("tasks/get");
            assert_eq!(got["status"], "working", "{got}");
        }
    }

    /// A 2025 session's task whose replica dies: the other replica serves
    /// the same session and its reaper fails the task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_2025_session_outlives_the_replica_that_opened_it() {
        let redis = RedisServer::start();
        let (mut a, b) = (
            super::super::redis_replica(&redis, "a", "1500"),
            super::super::redis_replica(&redis, "b", "1500"),
        );
        let session = CoreSession::open(&a.url, None)
            .await
            .expect("a session on A");
        let id = session
            .start_task(&a.url, "slow_compute", json!({"seconds": 600}))
            .await;
        a.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ended = loop {
            let got = session
                .call(&b.url, "tasks/get", json!({"taskId": id}))
                .await
                .expect("B serves A's session");
            if got["status"] != "working" {
                break got;
            }
            assert!(Instant::now() < deadline, "still working: {got}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(ended["status"], "failed", "{ended}");
        let result = session
            .call(&b.url, "tasks/result", json!({"taskId": id}))
            .await
            .expect_err("the lost worker's outcome is an error");
        assert_eq!(result["code"], -32603, "{result}");
    }
}

#[cfg(feature = "dynamodb")]
/// Both SDKs' 2025 flows through the round-robin proxy to two replicas on
/// moto's DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_run_the_2025_task_flows_through_two_replicas_on_moto() {
    let (_moto, a, b) = super::moto_replicas().await;
    let proxy = pmcp_tasks_tests::round_robin::RoundRobin::start(vec![
        a.address.clone(),
        b.address.clone(),
    ])
    .await;
    run_sdk_clients(&proxy.url).await;
}
