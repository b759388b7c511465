//! What a task's worker asks of the store, counted step by step: every
//! step of a task created on Redis or DynamoDB is a round trip.

use std::time::Duration;

use pmcp_tasks_host::TaskHost;
use pmcp_tasks_mcp::{Caller, Revision, ServiceConfig, TaskService};
use pmcp_tasks_tests::intercepted::{CountedBackend, Step};
use serde_json::{json, Map};

/// A task whose tool returns at once costs the store its create (the task
/// and its lease's index item) and its outcome (one read, one
/// compare-and-set, the lease's index item removed): the worker reads
/// nothing before its tool runs, since it was subscribed to its task's
/// wakes before the task's id was given out. It read once more before.
#[tokio::test]
async fn a_task_that_ends_at_once_costs_its_create_and_its_outcome() {
    let backend = CountedBackend::new();
    let host = TaskHost::builder()
        .backend(backend.clone())
        .build()
        .await
        .unwrap();
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
        .start_task(&alice, "slow_compute", Map::new(), None, |_| async {
            Ok(json!({"content": [{"type": "text", "text": "done"}]}))
        })
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
