//! Network faults between the host and its store, through a TCP fault
//! proxy (`pmcp_tasks_tests::fault_proxy`): added latency, connections
//! reset mid-request, a black hole that accepts and never answers. Every
//! call returns within its documented bound with a retryable error naming
//! the endpoint, the same host serves again once the fault clears, and no
//! task is left half-written.
#![cfg(any(feature = "redis", feature = "dynamodb"))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pmcp_tasks_host::backend::KvBackend;
use pmcp_tasks_host::{TaskError, TaskHost, TaskStatus};
use pmcp_tasks_tests::fault_proxy::{Fault, FaultProxy};

const OWNER: &str = "https://idp.example/users/alice";

/// Runs the fault scenario on `host`, whose backend reaches its server
/// through `proxy`; `bound` is the documented longest a failing call takes.
async fn survive_faults(host: &TaskHost, proxy: &FaultProxy, bound: Duration) {
    let endpoint = proxy.address().to_string();
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(
            host.create(OWNER, "tools/call", None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }

    proxy.set(Fault::Latency(Duration::from_millis(30)));
    let slow = host
        .create(OWNER, "tools/call", None)
        .await
        .expect("slow, but served");
    created.push(slow.task.task_id);
    host.get(OWNER, &created[0])
        .await
        .expect("slow, but served");

    for fault in [Fault::BlackHole, Fault::Reset] {
        proxy.set(fault);
        let started = Instant::now();
        let attempts: [(&str, Result<(), TaskError>); 2] = [
            ("get", host.get(OWNER, &created[0]).await.map(drop)),
            (
                "update",
                host.update_status(OWNER, &created[1], TaskStatus::InputRequired, Some("?"))
                    .await
                    .map(drop),
            ),
        ];
        for (what, result) in attempts {
            let err = result.expect_err(what);
            assert!(err.is_retryable(), "{fault:?} {what}: {err:?}");
            assert!(
                err.to_string().contains(&endpoint),
                "{fault:?} {what}: the error names the endpoint {endpoint}: {err}"
            );
        }
        let took = started.elapsed();
        assert!(
            took < bound * 2,
            "{fault:?}: two calls took {took:?}, bound {bound:?} each"
        );
    }

    // The fault clears: the same host serves again (a client may need a
    // moment to reconnect; bounded).
    proxy.set(Fault::Pass);
    let deadline = Instant::now() + bound * 2;
    let recovered = loop {
        match host.create(OWNER, "tools/call", None).await {
            Ok(record) => break record,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_retryable(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the host did not recover: {e}"),
        }
    };
    created.push(recovered.task.task_id);

    // Nothing half-written: every listed task reads back whole, every task
    // whose create succeeded is listed, the interrupted update applied or not.
    let listed = host.list(OWNER, None, Some(100)).await.unwrap();
    for task in &listed.tasks {
        let record = host.get(OWNER, &task.task_id).await.expect("readable");
        assert_eq!(record.task, *task);
    }
    for id in &created {
        assert!(listed.tasks.iter().any(|t| &t.task_id == id), "{id} lost");
    }
    let updated = host.get(OWNER, &created[1]).await.unwrap().task;
    assert!(
        matches!(
            updated.status,
            TaskStatus::Working | TaskStatus::InputRequired
        ),
        "{updated:?}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_survives_latency_resets_and_a_black_hole() {
    use pmcp_tasks_host::backend::redis::RedisBackend;
    use pmcp_tasks_tests::redis::RedisFactory;
    let factory = RedisFactory::single();
    let mut config = factory.config("faults");
    let target: SocketAddr = config.urls[0]
        .trim_start_matches("redis://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(target).await;
    config.urls = vec![format!("redis://{}", proxy.address())];
    // Documented bound: the response timeout (2 s) plus the connection
    // manager's reconnect attempts.
    let bound = config.response_timeout + config.connect_timeout + Duration::from_secs(2);
    let backend: Arc<dyn KvBackend> = Arc::new(RedisBackend::connect(config).await.unwrap());
    let host = TaskHost::builder().backend(backend).build().await.unwrap();
    survive_faults(&host, &proxy, bound).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_survives_latency_resets_and_a_black_hole() {
    use pmcp_tasks_host::backend::dynamodb::DynamoDbBackend;
    use pmcp_tasks_tests::dynamodb::{client_for, DynamoDbFactory};
    let factory = DynamoDbFactory::start().await;
    let Some(moto) = factory.moto() else {
        return; // real DynamoDB: no proxy in between
    };
    let table = factory.backend().await.table().to_owned();
    let target: SocketAddr = moto
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(target).await;
    let endpoint = format!("http://{}", proxy.address());
    let backend = DynamoDbBackend::new(client_for(&endpoint), table).with_endpoint_label(endpoint);
    let backend: Arc<dyn KvBackend> = Arc::new(backend);
    let host = TaskHost::builder().backend(backend).build().await.unwrap();
    // Documented bound: the operation timeout (15 s, retries included).
    survive_faults(&host, &proxy, Duration::from_secs(16)).await;
}
