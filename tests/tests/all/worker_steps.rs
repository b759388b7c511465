//! What a task's worker asks of the store, counted step by step: every
//! step of a task created on Redis or DynamoDB is a round trip.

use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::{StoreConfig, TaskHost};
use pmcp_tasks_mcp::{Caller, Revision, ServiceConfig, TaskService, TaskStart};
use pmcp_tasks_tests::intercepted::{CountedBackend, Step};
use serde_json::{json, Map};

/// A host with `config` over an in-memory backend that counts its steps.
async fn counted_host(config: StoreConfig) -> (Arc<CountedBackend>, TaskHost) {
    let backend = CountedBackend::new();
    let host = TaskHost::builder()
        .backend(backend.clone())
        .config(config)
        .build()
        .await
        .unwrap();
    (backend, host)
}

/// A task whose tool returns at once costs the store its create (the task
/// and its lease's index item) and its outcome (one read, one
/// compare-and-set, the lease's index item removed): the worker reads
/// nothing before its tool runs, since it was subscribed to its task's
/// wakes before the task's id was given out. It read once more before.
#[tokio::test]
async fn a_task_that_ends_at_once_costs_its_create_and_its_outcome() {
    let (backend, host) = counted_host(StoreConfig::default()).await;
    let service = TaskService::new(host, ServiceConfig::default());
    // Building the host may touch the store; counted from here.
    let before = |step| backend.of(step);
    let (gets, creates, replaces, removes) = (
        before(Step::Get),
        before(Step::Create),
        before(Step::Replace),
        before(Step::Remove),
    );
    let alice = Caller::new("alice", Revision::V2026_07_28).with_tasks_extension(true);
    let created = service
        .start_task(
            &alice,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            |_| async { Ok(json!({"content": [{"type": "text", "text": "done"}]})) },
        )
        .await
        .unwrap();
    assert!(created["taskId"].is_string(), "{created}");
    // Removing the lease's index item is the worker's last step.
    tokio::time::timeout(Duration::from_secs(10), async {
        while backend.of(Step::Remove) == removes {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the outcome was written");
    let made = |step, before| backend.of(step) - before;
    assert_eq!(
        made(Step::Create, creates),
        2,
        "the task and its lease's index item"
    );
    assert_eq!(
        made(Step::Get, gets),
        1,
        "one read: the outcome's, before its compare-and-set"
    );
    assert_eq!(made(Step::Replace, replaces), 1, "the outcome");
    assert_eq!(made(Step::Remove, removes), 1, "the lease's index item");
}

/// A tool that reports progress 100 000 times as fast as it can costs the
/// store about one status write per `progress_interval` of the flood
/// (coalesced, the latest message winning), not one per report; a poller
/// sees the messages in order; and the task ends with the tool's result.
/// Before coalescing every report was a read and a compare-and-set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_flood_costs_a_write_per_interval_and_keeps_its_order() {
    let (backend, host) = counted_host(StoreConfig::default()).await;
    let mut config = ServiceConfig::default();
    config.progress_interval = Duration::from_millis(50);
    let interval = config.progress_interval;
    let service = TaskService::new(host.clone(), config);
    let alice = Caller::new("alice", Revision::V2026_07_28).with_tasks_extension(true);
    let replaces = backend.of(Step::Replace);
    let (flooded, flood) = tokio::sync::oneshot::channel();
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    let created = service
        .start_task(
            &alice,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            |worker| async move {
                let start = std::time::Instant::now();
                for i in 0..100_000u32 {
                    worker.progress(&format!("step {i}")).await?;
                    if i % 1_000 == 999 {
                        tokio::task::yield_now().await;
                    }
                }
                let _ = flooded.send(start.elapsed());
                let _ = finished.await;
                Ok(json!({"content": [{"type": "text", "text": "flooded"}]}))
            },
        )
        .await
        .unwrap();
    let id = created["taskId"].as_str().unwrap().to_owned();
    // Poll while the flood runs: the step a poller sees never goes back.
    let poller = {
        let host = host.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let record = host.get("alice", &id).await.unwrap();
                if record.task.status.is_terminal() {
                    return seen;
                }
                if let Some(step) = record
                    .task
                    .status_message
                    .as_deref()
                    .and_then(|m| m.strip_prefix("step "))
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    seen.push(step);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let elapsed = tokio::time::timeout(Duration::from_secs(120), flood)
        .await
        .expect("the flood ended")
        .unwrap();
    // The last report reaches the store within an interval or so.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let record = host.get("alice", &id).await.unwrap();
        if record.task.status_message.as_deref() == Some("step 99999") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last report was not written: {:?}",
            record.task.status_message
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let progress_writes = backend.of(Step::Replace) - replaces;
    finish.send(()).unwrap();
    let seen = poller.await.unwrap();
    let record = host.get("alice", &id).await.unwrap();
    assert_eq!(record.task.status.as_str(), "completed");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "status messages went backwards: {seen:?}"
    );
    // The first report is written at once, then one per interval of the
    // flood, and the last once the flood is over.
    let bound = (elapsed.as_millis() / interval.as_millis()) as usize + 3;
    assert!(
        progress_writes <= bound,
        "{progress_writes} progress writes for a flood of {elapsed:?} (bound {bound})"
    );
}

/// A tool whose result is over the store's limit fails its task at once,
/// the error naming the result's size and the limit, instead of leaving it
/// `working` until its lease lapses and the reaper calls the worker lost
/// (the lease here is an hour: only the worker's own failure can end it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_over_the_limit_fails_its_task_at_once_saying_so() {
    let mut store = StoreConfig::default();
    store.max_result_bytes = 256 * 1024;
    let (_, host) = counted_host(store).await;
    let mut config = ServiceConfig::default();
    config.lease = Duration::from_secs(3600);
    let service = TaskService::new(host.clone(), config);
    let alice = Caller::new("alice", Revision::V2026_07_28).with_tasks_extension(true);
    let too_large = "x".repeat(300 * 1024);
    let created = service
        .start_task(
            &alice,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            move |_| async move { Ok(json!({"content": [{"type": "text", "text": too_large}]})) },
        )
        .await
        .unwrap();
    let id = created["taskId"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let record = loop {
        let record = host.get("alice", &id).await.unwrap();
        if record.task.status.is_terminal() {
            break record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            record.task.status
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(record.task.status.as_str(), "failed");
    let error = host.get_result("alice", &id).await.unwrap().to_string();
    assert!(
        error.contains("could not be stored")
            && error.contains("307")
            && error.contains("exceeds the limit of 262144 bytes"),
        "{error}"
    );
}
