//! Capacity and queueing across replicas: a replica runs at most
//! `--max-running-tasks` workers, a call beyond them waits in the queue
//! for any replica with room (a worker-only replica included), and the
//! owners with waiting calls are served in turn.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pmcp_tasks_tests::redis::RedisServer;
use pmcp_tasks_tests::replica::Replica;

use super::deploys::{until_all_end, until_all_end_as};
use super::shutdown::{start_task, start_task_as, task, task_as};

/// Serve options of a replica named `name` with four worker slots.
fn four_slots(name: &str) -> Vec<&str> {
    let mut options = super::redis_replica_options(name, "3000");
    options.extend_from_slice(&["--max-running-tasks", "4", "--claim-interval-ms", "100"]);
    options
}

/// 200 task calls over two replicas of four slots each, a worker-only
/// replica started half-way: every task completes, no process ever ran
/// more than four at once (as the tool counts them), calls beyond the
/// slots waited `queued`, and the worker-only replica ran a share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_calls_over_full_replicas_all_complete_within_each_replica_s_slots() {
    let redis = RedisServer::start();
    let backend = redis.url();
    let global = [
        "--backend",
        backend.as_str(),
        "--cursor-secret",
        "one deployment",
    ];
    let (a, b) = (
        Replica::start(super::binary(), &global, &four_slots("a")),
        Replica::start(super::binary(), &global, &four_slots("b")),
    );
    let mut ids = Vec::new();
    let mut queued = 0;
    let mut worker = None;
    for n in 0..200 {
        if n == 100 {
            worker = Some(Replica::start_worker_only(
                super::binary(),
                &global,
                "serve",
                &four_slots("w"),
                &[],
            ));
        }
        let url = if n % 2 == 0 { &a.url } else { &b.url };
        let id = start_task(url, 0.4).await;
        let created = task(url, &id).await;
        if created["statusMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("queued"))
        {
            queued += 1;
        }
        ids.push(id);
    }
    let ended = until_all_end(&a.url, &ids, Duration::from_secs(240)).await;
    let mut ran_on: BTreeMap<String, usize> = BTreeMap::new();
    for end in &ended {
        assert_eq!(end["status"], "completed", "{end}");
        let run = &end["result"]["structuredContent"];
        let running = run["runningAtStart"].as_u64().unwrap_or(u64::MAX);
        assert!(running <= 4, "{running} runs at once: {end}");
        let replica = run["replica"].as_str().unwrap_or("?").to_owned();
        *ran_on.entry(replica).or_default() += 1;
    }
    assert!(queued >= 50, "only {queued} of 200 calls waited");
    assert!(
        ran_on.get("w").copied().unwrap_or(0) >= 10,
        "the worker-only replica ran too few: {ran_on:?}"
    );
    assert_eq!(ran_on.values().sum::<usize>(), 200, "{ran_on:?}");
    drop(worker);
}

/// One owner's 1 000 calls wait behind a replica's two slots; another
/// owner's one call then starts at the next free slot, not after them:
/// within 30 s, where serving in arrival order would take 500 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_s_thousand_waiting_calls_do_not_hold_another_owner_s_call_behind_them() {
    let redis = RedisServer::start();
    let backend = redis.url();
    let mut options = super::redis_replica_options("a", "3000");
    options.extend_from_slice(&[
        "--max-running-tasks",
        "2",
        "--claim-interval-ms",
        "100",
        "--insecure-token-owners",
    ]);
    let a = Replica::start(
        super::binary(),
        &["--backend", &backend, "--cursor-secret", "one deployment"],
        &options,
    );
    let url = a.url.clone();
    let mut busy = tokio::task::JoinSet::new();
    for lane in 0..10 {
        let url = url.clone();
        busy.spawn(async move {
            for _ in 0..100 {
                start_task_as(&url, Some("busy-owner"), 1.0).await;
            }
            lane
        });
    }
    while let Some(lane) = busy.join_next().await {
        lane.expect("a lane of busy calls");
    }
    let quiet = start_task_as(&url, Some("quiet-owner"), 0.1).await;
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(30);
    loop {
        let got = task_as(&url, Some("quiet-owner"), &quiet).await;
        let waiting = got["statusMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("queued"));
        if !waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the quiet owner's call still waits after 30 s: {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended =
        until_all_end_as(&url, Some("quiet-owner"), &[quiet], Duration::from_secs(60)).await;
    assert_eq!(ended[0]["status"], "completed", "{}", ended[0]);
}
