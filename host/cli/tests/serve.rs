//! `pmcp-tasks serve` as real processes, checked by peers nobody here
//! wrote: the official conformance suite's tasks scenarios against one
//! server on memory and against two replicas on one Redis behind a
//! round-robin proxy; and a replica killed mid-task, whose task another
//! replica's reaper fails.

use std::path::Path;
#[cfg(feature = "redis")]
use std::time::{Duration, Instant};

use pmcp_tasks_tests::conformance::Conformance;
#[cfg(feature = "redis")]
use pmcp_tasks_tests::mcp_http;
#[cfg(feature = "redis")]
use pmcp_tasks_tests::redis::RedisServer;
use pmcp_tasks_tests::replica::Replica;
#[cfg(feature = "redis")]
use pmcp_tasks_tests::round_robin::RoundRobin;
#[cfg(feature = "redis")]
use serde_json::json;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pmcp-tasks"))
}

/// Runs the blocking suite off the async runtime.
async fn run_suite(url: String, label: &'static str) {
    tokio::task::spawn_blocking(move || Conformance::locate().run_task_scenarios(&url, label))
        .await
        .expect("the suite ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_against_one_server_on_memory() {
    let server = Replica::start(binary(), &["--backend", "memory"], &[]);
    run_suite(server.url.clone(), "memory").await;
}

#[cfg(feature = "redis")]
/// A replica on `redis`, its workers leased for `lease_ms`, reaping and
/// cleaning up every 300 ms.
fn redis_replica(redis: &RedisServer, name: &str, lease_ms: &str) -> Replica {
    let backend = redis.url();
    Replica::start(
        binary(),
        &["--backend", &backend, "--cursor-secret", "one deployment"],
        &[
            "--replica",
            name,
            "--lease-ms",
            lease_ms,
            "--upkeep-ms",
            "300",
        ],
    )
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_against_two_replicas_on_redis_round_robin() {
    let redis = RedisServer::start();
    let (a, b) = (
        redis_replica(&redis, "a", "30000"),
        redis_replica(&redis, "b", "30000"),
    );
    let proxy = RoundRobin::start(vec![a.address.clone(), b.address.clone()]).await;
    run_suite(proxy.url.clone(), "two replicas on redis").await;
    let counts: Vec<usize> = proxy
        .forwarded
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    assert!(
        counts.iter().all(|&n| n > 10),
        "both replicas served: {counts:?}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_task_ends_failed_instead_of_working_forever() {
    let redis = RedisServer::start();
    let (mut a, b) = (
        redis_replica(&redis, "a", "1500"),
        redis_replica(&redis, "b", "1500"),
    );
    // A long task whose worker runs on replica a.
    let created = mcp_http::call(
        &a.url,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 600, "label": "doomed"}}),
    )
    .await
    .expect("tools/call");
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"].as_str().expect("taskId").to_owned();
    let seen = mcp_http::call(&b.url, "tasks/get", json!({"taskId": id}))
        .await
        .unwrap();
    assert_eq!(seen["status"], "working", "{seen}");
    a.kill();
    // b's upkeep reaps the lapsed lease: the task fails with a JSON-RPC error.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        let got = mcp_http::call(&b.url, "tasks/get", json!({"taskId": id}))
            .await
            .unwrap();
        if got["status"] != "working" {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "still working 30 s after its replica died"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"]["code"], -32603);
    assert!(
        ended["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("worker was lost"),
        "{ended}"
    );
}
