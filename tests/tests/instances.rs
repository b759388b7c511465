//! Instance strategies: a fresh instance per call and reused warm
//! instances serve the same results, and warm instances held idle by one
//! host never starve another host of instance slots.
//!
//! Its own test binary: the slot test fills every slot of the shared
//! embedded runtime, which other tests in the same process would share.

use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::{InstanceStrategy, TaskError, TaskHost, TaskRecord, TaskStatus};
use pmcp_tasks_tests::intercepted::GatedBackend;

/// Instance slots of a runtime (`MAX_CONCURRENT_CALLS` in the host).
const SLOTS: usize = 1000;

/// Held by each test that fills every slot: two at once would each hold
/// part of the slots and wait for the rest.
static ALL_SLOTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn both_strategies_serve_the_same_results() {
    for strategy in [
        InstanceStrategy::FreshPerCall,
        InstanceStrategy::Reuse {
            max_idle: 1,
            max_uses: 3,
        },
    ] {
        let host = TaskHost::builder()
            .instances(strategy)
            .build()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(
                host.create("alice", "tools/call", None)
                    .await
                    .unwrap()
                    .task
                    .task_id,
            );
        }
        let updated = host
            .update_status("alice", &ids[2], TaskStatus::InputRequired, None)
            .await
            .unwrap();
        assert_eq!(updated.version, 2, "{strategy:?}");
        let page = host.list("alice", None, Some(10)).await.unwrap();
        let listed: Vec<_> = page.tasks.iter().map(|t| t.task_id.clone()).collect();
        assert_eq!(listed, ids, "{strategy:?}");
        let err = host.get("bob", &ids[0]).await.unwrap_err();
        assert_eq!(err.json_rpc_code(), pmcp_tasks_host::INVALID_PARAMS);
    }
}

/// Starts `count` reads on `host` that park in `backend`, and waits until
/// all are parked (each holding an instance slot).
async fn park_reads(
    host: &TaskHost,
    backend: &GatedBackend,
    id: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<TaskRecord, TaskError>>> {
    let calls = (0..count)
        .map(|_| {
            let (host, id) = (host.clone(), id.to_owned());
            tokio::spawn(async move { host.get("alice", &id).await })
        })
        .collect();
    backend.wait_for_arrivals(count).await;
    calls
}

/// A host that keeps every instance it ever used idle, over a gated
/// backend, with one task of alice's.
async fn hoarder() -> (TaskHost, Arc<GatedBackend>, String) {
    let backend = GatedBackend::new();
    let host = TaskHost::builder()
        .backend(backend.clone())
        .instances(InstanceStrategy::Reuse {
            max_idle: SLOTS,
            max_uses: 10_000,
        })
        .build()
        .await
        .unwrap();
    let created = host.create("alice", "m", None).await.unwrap();
    (host, backend, created.task.task_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_of_one_host_yield_their_slots_to_another() {
    let _all_slots = ALL_SLOTS.lock().await;
    let (hoarder, hoarder_backend, id) = hoarder().await;
    // Every slot of the runtime in use at once...
    let calls = park_reads(&hoarder, &hoarder_backend, &id, SLOTS).await;
    hoarder_backend.open();
    for call in calls {
        call.await.unwrap().expect("a parked call completes");
    }
    // ...then (all but the one freed while every slot was taken) idle in
    // the hoarder's pool. Another host needing many slots at once must
    // reclaim them rather than wait forever.
    let other_backend = GatedBackend::new();
    let parked = tokio::time::timeout(Duration::from_secs(20), async {
        let other = TaskHost::builder()
            .backend(other_backend.clone())
            .build()
            .await
            .expect("another host builds");
        let id = other.create("alice", "m", None).await.unwrap().task.task_id;
        let calls = park_reads(&other, &other_backend, &id, 10).await;
        (other, calls)
    })
    .await;
    let (_other, calls) =
        parked.expect("another host gets 10 slots while the first holds idle instances");
    other_backend.open();
    for call in calls {
        call.await.unwrap().expect("the other host's calls succeed");
    }
    // The hoarder still works: it instantiates again as needed.
    hoarder
        .get("alice", &id)
        .await
        .expect("the hoarder still serves");
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_waiting_for_a_slot_is_not_starved_by_instances_going_idle() {
    let _all_slots = ALL_SLOTS.lock().await;
    let waiter = TaskHost::builder()
        .instances(InstanceStrategy::FreshPerCall)
        .build()
        .await
        .unwrap();
    let (hoarder, backend, id) = hoarder().await;
    let calls = park_reads(&hoarder, &backend, &id, SLOTS).await;
    // Every slot is in flight, none idle: the waiter's call queues for one
    // (on this single-threaded runtime, one yield takes it to that wait).
    let waiting = tokio::spawn(async move { waiter.create("bob", "m", None).await });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "no slot was free");
    // The hoarder's calls finish; were their instances all kept idle, the
    // waiter would wait forever.
    backend.open();
    for call in calls {
        call.await.unwrap().expect("a parked call completes");
    }
    let created = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the waiting call gets a slot");
    created.unwrap().expect("the waiting call succeeds");
}
