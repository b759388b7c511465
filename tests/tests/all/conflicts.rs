//! Lost races: the component retries, and waits longer before each retry.

use std::time::Duration;

use pmcp_tasks_host::{ConflictBackoff, TaskHost};
use pmcp_tasks_tests::intercepted::ContendedBackend;

#[tokio::test]
async fn retries_after_lost_races_wait_longer_each_time() {
    let backend = ContendedBackend::new(3);
    let base = Duration::from_millis(20);
    let host = TaskHost::builder()
        .backend(backend.clone())
        .conflict_backoff(ConflictBackoff::new(base, Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    host.create("alice", "tools/call", None)
        .await
        .expect("the fourth attempt wins");
    let arrivals = backend.create_arrivals();
    assert_eq!(arrivals.len(), 4, "three lost races, then success");
    for (n, pair) in arrivals.windows(2).enumerate() {
        // The n-th wait is at least half of base × 2^n.
        let least = base * (1 << n) / 2;
        let gap = pair[1] - pair[0];
        assert!(gap >= least, "wait {n}: {gap:?} < {least:?}");
    }
}

#[tokio::test]
async fn without_backoff_retries_follow_at_once_and_still_win() {
    let backend = ContendedBackend::new(5);
    let host = TaskHost::builder()
        .backend(backend.clone())
        .conflict_backoff(ConflictBackoff::none())
        .build()
        .await
        .unwrap();
    host.create("alice", "tools/call", None).await.unwrap();
    assert_eq!(backend.create_arrivals().len(), 6);
}
