//! Payloads of real size through real processes: a result of an image
//! block with 5 MiB of base64 beside a 10 MiB document, and a 2 MiB
//! argument, through `serve` (the demonstration tools) and `gateway` (the
//! Python upstream), in both revisions, on memory, Redis, Redis Cluster
//! and moto; each comes back byte for byte.

use std::time::{Duration, Instant};

use pmcp_tasks_tests::mcp_http::{self, CoreSession};
use pmcp_tasks_tests::payloads::base64_like;
use pmcp_tasks_tests::replica::Replica;
use serde_json::{json, Value};

use super::binary;

const IMAGE_KIB: usize = 5 * 1024;
const TEXT_KIB: usize = 10 * 1024;
const ARGUMENT_BYTES: usize = 2 << 20;

/// The large result's arguments.
fn large() -> Value {
    json!({"name": "large_result", "arguments": {"text_kib": TEXT_KIB, "image_kib": IMAGE_KIB}})
}

/// Whether `result` is the large result, byte for byte.
fn assert_large(result: &Value, how: &str) {
    let content = &result["content"];
    assert_eq!(content[0]["type"], "image", "{how}");
    let data = content[0]["data"].as_str().unwrap_or_default();
    assert!(
        data == base64_like(IMAGE_KIB * 1024),
        "{how}: the image changed"
    );
    let text = content[1]["text"].as_str().unwrap_or_default();
    assert!(
        text == base64_like(TEXT_KIB * 1024),
        "{how}: the text changed"
    );
}

/// A 2026-07-28 task-creating call at `create`, polled at `read` until it
/// ends: the task as `tasks/get` last answered.
async fn run_2026(create: &str, read: &str, params: Value) -> Value {
    let created = mcp_http::call(create, "tools/call", params)
        .await
        .expect("tools/call");
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"].as_str().expect("a task id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = mcp_http::call(read, "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get");
        if got["status"] != "working" {
            return got;
        }
        assert!(Instant::now() < deadline, "still working");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The large result and the large argument, through the endpoints at
/// `create` and `read` (the same server, or two replicas of one store).
async fn real_payloads_come_back_whole(create: &str, read: &str) {
    let done = run_2026(create, read, large()).await;
    assert_eq!(done["status"], "completed", "{}", done["error"]);
    assert_large(&done["result"], "2026-07-28 tasks/get");

    let document = base64_like(ARGUMENT_BYTES);
    let echoed = run_2026(
        create,
        read,
        json!({"name": "echo", "arguments": {"text": document}}),
    )
    .await;
    assert_eq!(echoed["status"], "completed", "{}", echoed["error"]);
    let text = echoed["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text == document, "the 2 MiB argument changed on its way");

    // 20 MiB (a 10 MiB image beside a 10 MiB text) against the 16 MiB
    // default: failed at once, naming both sizes.
    let started = Instant::now();
    let too_large = run_2026(
        create,
        read,
        json!({"name": "large_result", "arguments": {"text_kib": 10_240, "image_kib": 10_240}}),
    )
    .await;
    assert_eq!(too_large["status"], "failed", "{}", too_large["status"]);
    // The store's limit through `serve`; through a gateway, its limit on
    // one upstream message comes first. Either names both sizes.
    let message = too_large["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2097")
            && (message.contains("exceeds the limit of 16777216 bytes")
                || message.contains("limit of 16777215 bytes for one message")),
        "{message}"
    );
    eprintln!(
        "a 20 MiB result failed {:?} after its call",
        started.elapsed()
    );

    let session = CoreSession::open(create, None).await.expect("a session");
    let id = session
        .start_task(create, "large_result", large()["arguments"].clone())
        .await;
    let result = session
        .call(read, "tasks/result", json!({"taskId": id}))
        .await
        .expect("2025-11-25 tasks/result");
    assert_large(&result, "2025-11-25 tasks/result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_come_back_whole_from_serve_on_memory() {
    let server = Replica::start(binary(), &["--backend", "memory"], &[]);
    real_payloads_come_back_whole(&server.url, &server.url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_come_back_whole_from_two_replicas_on_redis() {
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let (a, b) = (
        super::redis_replica(&redis, "a", "30000"),
        super::redis_replica(&redis, "b", "30000"),
    );
    real_payloads_come_back_whole(&a.url, &b.url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_come_back_whole_from_serve_on_redis_cluster() {
    let cluster = pmcp_tasks_tests::redis::RedisFactory::cluster();
    let backend = cluster_url(&cluster);
    let server = Replica::start(binary(), &["--backend", &backend], &[]);
    real_payloads_come_back_whole(&server.url, &server.url).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_come_back_whole_from_two_replicas_on_moto() {
    let (_moto, a, b) = super::moto_replicas().await;
    real_payloads_come_back_whole(&a.url, &b.url).await;
}

/// Through a gateway in front of the Python upstream (its answers lines of
/// 15 MiB of JSON), on memory, Redis, Redis Cluster and moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_come_back_whole_through_the_gateway() {
    let record = super::gateway::Record::new("payloads");
    let through = |global: Vec<String>| {
        let record = &record;
        async move {
            let global: Vec<&str> = global.iter().map(String::as_str).collect();
            let gateway = super::gateway::gateway(&global, &[], record);
            real_payloads_come_back_whole(&gateway.url, &gateway.url).await;
        }
    };
    through(vec!["--backend".into(), "memory".into()]).await;
    #[cfg(feature = "redis")]
    {
        let redis = pmcp_tasks_tests::redis::RedisServer::start();
        through(vec!["--backend".into(), redis.url()]).await;
        let cluster = pmcp_tasks_tests::redis::RedisFactory::cluster();
        through(vec!["--backend".into(), cluster_url(&cluster)]).await;
    }
    #[cfg(feature = "dynamodb")]
    {
        let moto = pmcp_tasks_tests::dynamodb::MotoServer::start();
        let backend = super::moto_table(&moto);
        through(vec!["--backend".into(), backend]).await;
    }
}

/// The `--backend` URL of `cluster`'s nodes.
#[cfg(feature = "redis")]
fn cluster_url(cluster: &pmcp_tasks_tests::redis::RedisFactory) -> String {
    let nodes: Vec<String> = cluster
        .servers()
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    format!("redis+cluster://{}", nodes.join(","))
}
