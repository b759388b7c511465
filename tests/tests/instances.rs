//! Instance strategies: a fresh instance per call and reused warm
//! instances serve the same results, and warm instances held idle by one
//! host never starve another host of instance slots.
//!
//! Its own test binary: the slot test fills every slot of the shared
//! embedded runtime, which other tests in the same process would share.

use std::time::Duration;

use pmcp_tasks_host::{InstanceStrategy, TaskHost, TaskStatus};
use pmcp_tasks_tests::gated::GatedBackend;

/// Instance slots of a runtime (`MAX_CONCURRENT_CALLS` in the host).
const SLOTS: usize = 1000;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_of_one_host_yield_their_slots_to_another() {
    let backend = GatedBackend::new();
    let hoarder = TaskHost::builder()
        .backend(backend.clone())
        .instances(InstanceStrategy::Reuse {
            max_idle: SLOTS,
            max_uses: 10_000,
        })
        .build()
        .await
        .unwrap();
    let id = hoarder
        .create("alice", "m", None)
        .await
        .unwrap()
        .task
        .task_id;
    // Every slot of the runtime in use at once, each call parked in the backend...
    let calls: Vec<_> = (0..SLOTS)
        .map(|_| {
            let (host, id) = (hoarder.clone(), id.clone());
            tokio::spawn(async move { host.get("alice", &id).await })
        })
        .collect();
    backend.wait_for_arrivals(SLOTS).await;
    backend.open();
    for call in calls {
        call.await.unwrap().expect("a parked call completes");
    }
    // ...then all of them idle in the hoarder's pool. Another host's call
    // must reclaim them rather than wait forever.
    let created = tokio::time::timeout(Duration::from_secs(20), async {
        let other = TaskHost::builder()
            .build()
            .await
            .expect("another host builds");
        other.create("bob", "m", None).await
    })
    .await
    .expect("another host gets a slot while the first holds idle instances");
    created.expect("the other host's call succeeds");
    // The hoarder still works: it instantiates again as needed.
    hoarder
        .get("alice", &id)
        .await
        .expect("the hoarder still serves");
}
