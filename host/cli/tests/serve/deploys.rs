//! Deploys and crashes: retryable tasks outlive the replica that started
//! them (a rolling restart hands them off; a killed replica's tasks run
//! again elsewhere), and the rest end as before.

use std::time::{Duration, Instant};

use pmcp_tasks_tests::mcp_http;
use pmcp_tasks_tests::replica::Replica;
use serde_json::{json, Value};

use super::shutdown::{start_task, task, task_as};

/// The serve options of a replica named `name` whose `slow_compute`
/// tasks are retryable, leases of `lease_ms`, upkeep every 300 ms.
fn retrying<'a>(name: &'a str, lease_ms: &'a str, backoff_ms: &'a str) -> Vec<&'a str> {
    let mut options = super::redis_replica_options(name, lease_ms);
    options.extend_from_slice(&[
        "--retry-tool",
        "slow_compute",
        "--retry-backoff-ms",
        backoff_ms,
        "--claim-interval-ms",
        "100",
        "--handoff-grace-ms",
        "300",
        "--shutdown-grace-ms",
        "3000",
    ]);
    options
}

/// Polls `ids` through `url` until every one is terminal (within
/// `limit`); their last states.
pub(super) async fn until_all_end(url: &str, ids: &[String], limit: Duration) -> Vec<Value> {
    until_all_end_as(url, None, ids, limit).await
}

/// [`until_all_end`] as the owner of bearer `token`.
pub(super) async fn until_all_end_as(
    url: &str,
    token: Option<&str>,
    ids: &[String],
    limit: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut ended: Vec<Option<Value>> = vec![None; ids.len()];
    while ended.iter().any(Option::is_none) {
        let mut still = None;
        for (id, end) in ids.iter().zip(ended.iter_mut()) {
            if end.is_none() {
                let got = task_as(url, token, id).await;
                if got["status"] != "working" && got["status"] != "input_required" {
                    *end = Some(got);
                } else {
                    still = Some(got);
                }
            }
        }
        let open = ended.iter().filter(|e| e.is_none()).count();
        assert!(
            Instant::now() < deadline,
            "{open} tasks still running after {limit:?}, one: {}",
            still.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ended.into_iter().flatten().collect()
}

/// SIGTERMs `replica` and waits for it to exit cleanly.
async fn terminate(mut replica: Replica) {
    let (replica, status) = tokio::task::spawn_blocking(move || {
        let status = replica.terminate(Duration::from_secs(20));
        (replica, status)
    })
    .await
    .expect("terminating");
    let status = status.expect("the replica exited within 20 s of SIGTERM");
    assert!(status.success(), "{status}: {:?}", replica.stderr_lines());
}

/// Twenty retryable 20 s tasks over two replicas, each replica SIGTERMed
/// and started again in turn, as a rolling deploy does: all twenty
/// complete; each ran at most once per replica it crossed, plus once for
/// a claim in flight at a SIGTERM (four runs at most), and every later run
/// resumed from its checkpoint instead of starting over.
async fn a_rolling_restart_completes_every_retryable_task(start: impl Fn(&str) -> Replica) {
    let (a, b) = (start("a"), start("b"));
    let mut ids = Vec::new();
    for n in 0..20 {
        let url = if n % 2 == 0 { &a.url } else { &b.url };
        ids.push(start_task(url, 20.0).await);
    }
    // The deploy: some work done, then one replica after the other.
    tokio::time::sleep(Duration::from_secs(3)).await;
    terminate(a).await;
    let a = start("a");
    tokio::time::sleep(Duration::from_secs(3)).await;
    terminate(b).await;
    let b = start("b");
    let ended = until_all_end(&a.url, &ids, Duration::from_secs(120)).await;
    let mut moved = 0;
    for end in &ended {
        assert_eq!(end["status"], "completed", "{end}");
        let run = &end["result"]["structuredContent"];
        let attempt = run["attempt"].as_u64().unwrap_or(1);
        // One run per replica crossed (old a, b, new a), and one more when
        // a claim was in flight as SIGTERM came (seen on moto, whose claims
        // are slow): that claimed run starts, sees the stop and hands off.
        // Not yet the "at most twice" (see issue 40).
        assert!(attempt <= 4, "{attempt} runs: {end}");
        if attempt > 1 {
            moved += 1;
            let resumed = run["resumedFromMs"].as_u64().unwrap_or(0);
            assert!(resumed >= 2_000, "a later run started over: {end}");
        }
    }
    assert!(moved >= 10, "only {moved} tasks were handed off");
    drop(b);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_on_redis_completes_every_retryable_task() {
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let backend = redis.url();
    a_rolling_restart_completes_every_retryable_task(|name| {
        Replica::start(
            super::binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &retrying(name, "3000", "1000"),
        )
    })
    .await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_on_moto_completes_every_retryable_task() {
    let moto = pmcp_tasks_tests::dynamodb::MotoServer::start();
    let backend = super::moto_table(&moto);
    a_rolling_restart_completes_every_retryable_task(|name| {
        Replica::start_with_env(
            super::binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &retrying(name, "3000", "1000"),
            &super::MOTO_ENV,
        )
    })
    .await;
}

/// Replicas `a` and `b` on `redis` whose `slow_compute` tasks are
/// retryable after `backoff_ms`, with 1.5 s leases (a killed one's tasks
/// are requeued soon).
#[cfg(feature = "redis")]
fn killable_pair(
    redis: &pmcp_tasks_tests::redis::RedisServer,
    backoff_ms: &str,
) -> (Replica, Replica) {
    let backend = redis.url();
    let start = |name: &str| {
        Replica::start(
            super::binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &retrying(name, "1500", backoff_ms),
        )
    };
    (start("a"), start("b"))
}

/// A killed replica (SIGKILL: no hand-off) runs a retryable task and one
/// that is not: once the lease lapses, the retryable one waits out its
/// backoff saying so ("attempt 2 of 3 after its replica was lost"), runs
/// again on the other replica from its checkpoint and completes; the
/// other ends `failed`, its worker lost.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_retryable_task_runs_again_elsewhere() {
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let (mut a, b) = killable_pair(&redis, "1500");
    let retried = start_task(&a.url, 6.0).await;
    let asked = mcp_http::call(
        &a.url,
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"path": "/tmp/x"}}),
    )
    .await
    .expect("tools/call");
    let once = asked["taskId"].as_str().expect("a task").to_owned();
    // Some work checkpointed first.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    a.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut messages = Vec::new();
    let done = loop {
        let got = task(&b.url, &retried).await;
        if let Some(message) = got["statusMessage"].as_str() {
            messages.push(message.to_owned());
        }
        if got["status"] != "working" {
            break got;
        }
        assert!(Instant::now() < deadline, "still working: {got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    let run = &done["result"]["structuredContent"];
    assert_eq!(run["attempt"], 2, "{done}");
    assert!(
        run["resumedFromMs"].as_u64().unwrap_or(0) >= 1_000,
        "{done}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("attempt 2 of 3 after its replica was lost")),
        "{messages:?}"
    );
    let ended = until_all_end(&b.url, &[once], Duration::from_secs(30)).await;
    assert_eq!(ended[0]["status"], "failed", "{}", ended[0]);
    let message = ended[0]["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("worker was lost"), "{}", ended[0]);
}

/// A cancel while a killed replica's retryable task waits out its backoff
/// (60 s here) ends it `cancelled` at once, and no replica runs it again.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_retry_s_backoff_ends_the_task_cancelled() {
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let (mut a, b) = killable_pair(&redis, "60000");
    let id = start_task(&a.url, 30.0).await;
    a.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = task(&b.url, &id).await;
        let message = got["statusMessage"].as_str().unwrap_or("");
        if message.starts_with("attempt 2 of 3 after its replica was lost") {
            break;
        }
        assert_eq!(got["status"], "working", "{got}");
        assert!(Instant::now() < deadline, "not requeued: {got}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mcp_http::call(&b.url, "tasks/cancel", json!({"taskId": id}))
        .await
        .expect("tasks/cancel");
    // Ended by the cancel itself: no worker had to see it.
    let got = task(&b.url, &id).await;
    assert_eq!(got["status"], "cancelled", "{got}");
}

/// SIGKILL chaos on Redis: for half a minute a replica is killed every
/// few seconds (in turn) and started again, while retryable 4 s tasks
/// arrive throughout at whichever replica is up. Afterwards no task
/// failed, none is missing or stuck, and every attempt count is within
/// the policy (10).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_tasks_survive_replicas_killed_every_few_seconds() {
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let backend = redis.url();
    let start = |name: &str| {
        let mut options = retrying(name, "1500", "200");
        options.extend_from_slice(&["--retry-attempts", "10"]);
        Replica::start(
            super::binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &options,
        )
    };
    let mut replicas = [start("a"), start("b")];
    let mut ids = Vec::new();
    let began = Instant::now();
    let mut next_kill = began + Duration::from_secs(4);
    let mut victim = 0;
    let mut kills = 0;
    while began.elapsed() < Duration::from_secs(30) {
        // A new task at the replica killed next (both are up: a killed
        // one is started again before the loop goes on).
        let url = replicas[victim].url.clone();
        ids.push(start_task(&url, 4.0).await);
        if Instant::now() >= next_kill {
            replicas[victim].kill();
            kills += 1;
            replicas[victim] = start(if victim == 0 { "a" } else { "b" });
            victim = 1 - victim;
            next_kill = Instant::now() + Duration::from_secs(4);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ended = until_all_end(&replicas[0].url, &ids, Duration::from_secs(180)).await;
    let mut retried = 0;
    for end in &ended {
        assert_eq!(end["status"], "completed", "{end}");
        let attempt = end["result"]["structuredContent"]["attempt"]
            .as_u64()
            .unwrap_or(1);
        assert!(attempt <= 10, "{end}");
        retried += usize::from(attempt > 1);
    }
    eprintln!(
        "chaos: {} tasks, {kills} kills, {retried} run again",
        ids.len()
    );
    assert!(kills >= 5, "{kills} kills");
    assert!(retried > 0, "no task was run again: {} tasks", ids.len());
}
