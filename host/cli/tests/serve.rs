//! `pmcp-tasks serve` as real processes, checked by peers nobody here
//! wrote: the official conformance suite's tasks scenarios against one
//! server on memory and against two replicas on one Redis behind a
//! round-robin proxy; and a replica killed mid-task, whose task another
//! replica's reaper fails.

use std::path::Path;
#[cfg(feature = "redis")]
use std::time::{Duration, Instant};

use pmcp_tasks_tests::conformance::Conformance;
use pmcp_tasks_tests::mcp_http;
#[cfg(feature = "redis")]
use pmcp_tasks_tests::redis::RedisServer;
use pmcp_tasks_tests::replica::Replica;
#[cfg(any(feature = "redis", feature = "dynamodb"))]
use pmcp_tasks_tests::round_robin::RoundRobin;
use serde_json::json;

#[path = "serve/auth.rs"]
mod auth;
#[path = "serve/core_http.rs"]
mod core_http;
#[cfg(feature = "redis")]
#[path = "serve/deploys.rs"]
mod deploys;
#[path = "serve/gateway.rs"]
mod gateway;
#[path = "serve/hostile.rs"]
mod hostile;
#[cfg(feature = "redis")]
#[path = "serve/metrics.rs"]
mod metrics;
#[path = "serve/payloads.rs"]
mod payloads;
#[cfg(feature = "redis")]
#[path = "serve/queueing.rs"]
mod queueing;
#[cfg(feature = "redis")]
#[path = "serve/shutdown.rs"]
mod shutdown;
#[cfg(feature = "redis")]
#[path = "serve/traces.rs"]
mod traces;

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

/// The official Python SDK (mcp==1.30.0) drives `pmcp-tasks serve` over
/// stdio through the 2025-11-25 task flows: a blocking `tasks/result`
/// while `tasks/get` answers, `isError` failing the task, pagination over
/// 25+ tasks, cancel of a running task, -32602 for a terminal cancel and an
/// unknown id, -32601 for a task-required tool called without a task.
#[test]
fn the_python_sdk_runs_the_2025_task_flows_over_stdio() {
    let script = pmcp_tasks_tests::conformance::client_script("python_core_tasks.py");
    let output = std::process::Command::new(pmcp_tasks_tests::conformance::mcp_python())
        .arg(script)
        .arg(binary())
        .arg("serve")
        .output()
        .expect("running the Python SDK client");
    assert_client_said(&output, "task flows: ok");
}

/// The client exited successfully and printed `verdict`; otherwise shows
/// all it printed.
fn assert_client_said(output: &std::process::Output, verdict: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(verdict),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The official TypeScript SDK (1.32.2) streams a 2025-11-25 task to its
/// result against `pmcp-tasks serve` over stdio.
#[test]
fn the_typescript_sdk_streams_a_2025_task_to_its_result() {
    let output = pmcp_tasks_tests::conformance::run_node_client(
        "ts_core_tasks.mjs",
        &[binary().as_os_str(), "serve".as_ref()],
    );
    assert_client_said(&output, "task stream: ok");
}

/// With `--insecure-token-owners` each bearer token is its own owner: a
/// task is invisible to every other identity (and to unauthenticated
/// callers), exactly like an unknown id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_invisible_to_every_other_identity() {
    let server = Replica::start(
        binary(),
        &["--backend", "memory"],
        &["--insecure-token-owners"],
    );
    let call = |bearer, method, params| mcp_http::call_as(&server.url, bearer, method, params);
    let created = call(
        Some("alice-token"),
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
    )
    .await
    .expect("tools/call");
    let id = created["taskId"].as_str().expect("a task").to_owned();
    let mine = call(Some("alice-token"), "tasks/get", json!({"taskId": id})).await;
    assert_eq!(mine.expect("the owner sees it")["status"], "working");
    let unknown = call(
        Some("bob-token"),
        "tasks/get",
        json!({"taskId": "0".repeat(46)}),
    )
    .await
    .expect_err("unknown id");
    for bearer in [Some("bob-token"), None] {
        for method in ["tasks/get", "tasks/cancel"] {
            let foreign = call(bearer, method, json!({"taskId": id}))
                .await
                .expect_err("another identity");
            assert_eq!(foreign["code"], -32602, "{method} as {bearer:?}: {foreign}");
            assert_eq!(foreign["code"], unknown["code"]);
        }
    }
    let still = call(Some("alice-token"), "tasks/get", json!({"taskId": id})).await;
    assert_eq!(still.expect("untouched")["status"], "working");
}

#[cfg(feature = "redis")]
/// A replica on `redis`, its workers leased for `lease_ms`, reaping and
/// cleaning up every 300 ms.
fn redis_replica(redis: &RedisServer, name: &str, lease_ms: &str) -> Replica {
    redis_replica_with(redis, name, lease_ms, &[])
}

#[cfg(feature = "redis")]
/// The serving options of a replica named `name` whose workers are leased
/// for `lease_ms`, reaping and cleaning up every 300 ms.
fn redis_replica_options<'a>(name: &'a str, lease_ms: &'a str) -> Vec<&'a str> {
    vec![
        "--replica",
        name,
        "--lease-ms",
        lease_ms,
        "--upkeep-ms",
        "300",
    ]
}

#[cfg(feature = "redis")]
/// [`redis_replica`] with `extra` serve options.
fn redis_replica_with(redis: &RedisServer, name: &str, lease_ms: &str, extra: &[&str]) -> Replica {
    let backend = redis.url();
    let mut serve = redis_replica_options(name, lease_ms);
    serve.extend_from_slice(extra);
    Replica::start(
        binary(),
        &["--backend", &backend, "--cursor-secret", "one deployment"],
        &serve,
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
    assert_both_served(&proxy);
}

/// Each replica behind the proxy served more than a handful of requests.
#[cfg(feature = "redis")]
fn assert_both_served(proxy: &RoundRobin) {
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

/// Credentials moto accepts, for the replica processes.
#[cfg(feature = "dynamodb")]
const MOTO_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "moto"),
    ("AWS_SECRET_ACCESS_KEY", "moto"),
    ("AWS_REGION", "us-east-1"),
];

/// A moto server with the table made, and two replicas on it.
#[cfg(feature = "dynamodb")]
async fn moto_replicas() -> (pmcp_tasks_tests::dynamodb::MotoServer, Replica, Replica) {
    let moto = pmcp_tasks_tests::dynamodb::MotoServer::start();
    let backend = moto_table(&moto);
    let replica = |name: &str| {
        Replica::start_with_env(
            binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &["--replica", name, "--upkeep-ms", "300"],
            &MOTO_ENV,
        )
    };
    let (a, b) = (replica("a"), replica("b"));
    (moto, a, b)
}

/// The `--backend` URL of a table made on `moto` (credentials from
/// `MOTO_ENV`, which the process must also be started with).
#[cfg(feature = "dynamodb")]
fn moto_table(moto: &pmcp_tasks_tests::dynamodb::MotoServer) -> String {
    let backend = format!(
        "dynamodb://tasks?endpoint={}&region=us-east-1",
        moto.endpoint()
    );
    let created = std::process::Command::new(binary())
        .envs(MOTO_ENV)
        .args(["--backend", &backend, "create-table"])
        .output()
        .expect("pmcp-tasks create-table");
    assert!(created.status.success(), "{created:?}");
    backend
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_against_two_replicas_on_moto_round_robin() {
    let (_moto, a, b) = moto_replicas().await;
    let proxy = RoundRobin::start(vec![a.address.clone(), b.address.clone()]).await;
    run_suite(proxy.url.clone(), "two replicas on moto").await;
}
