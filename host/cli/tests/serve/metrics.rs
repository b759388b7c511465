//! `serve --metrics-listen`: a scripted workload on two replicas on one
//! Redis, then a scrape of replica B's Prometheus text.

use std::time::{Duration, Instant};

use pmcp_tasks_tests::mcp_http;
use pmcp_tasks_tests::redis::RedisServer;
use serde_json::json;

/// The value of the sample `name` (with its labels, as written) in a
/// Prometheus text; 0 when it is absent.
pub(super) fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

pub(super) async fn scrape(address: &str) -> String {
    let response = mcp_http::send_to(
        &format!("http://{address}/mcp"),
        "/metrics",
        "GET",
        &[],
        Vec::new(),
    )
    .await
    .expect("a scrape");
    assert_eq!(response.status, 200, "{response:?}");
    String::from_utf8(response.body).expect("UTF-8")
}

async fn wait_for(url: &str, id: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = mcp_http::call(url, "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get");
        if got["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "{id} still {}", got["status"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// On B: 5 created, 3 completed, 2 cancelled; A's one task reaped by B
/// after A is killed. B's counters say exactly that, its store call
/// histograms are populated, and its HTTP requests are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_a_scripted_workload_exactly() {
    let redis = RedisServer::start();
    let mut a = super::redis_replica(&redis, "a", "1500");
    let b = super::redis_replica_with(&redis, "b", "1500", &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = b.metrics_address().expect("the metrics address");

    let lost = super::shutdown::start_task(&a.url, 600.0).await;
    let mut quick = Vec::new();
    for _ in 0..3 {
        quick.push(super::shutdown::start_task(&b.url, 0.0).await);
    }
    let slow = [
        super::shutdown::start_task(&b.url, 600.0).await,
        super::shutdown::start_task(&b.url, 600.0).await,
    ];
    for id in &slow {
        mcp_http::call(&b.url, "tasks/cancel", json!({"taskId": id}))
            .await
            .expect("tasks/cancel");
    }
    a.kill();
    for id in &quick {
        wait_for(&b.url, id, "completed").await;
    }
    for id in &slow {
        wait_for(&b.url, id, "cancelled").await;
    }
    wait_for(&b.url, &lost, "failed").await;

    let exact = [
        ("pmcp_tasks_tasks_created_total", 5.0),
        ("pmcp_tasks_tasks_finished_total{status=\"completed\"}", 3.0),
        ("pmcp_tasks_tasks_finished_total{status=\"cancelled\"}", 2.0),
        ("pmcp_tasks_tasks_finished_total{status=\"failed\"}", 0.0),
        ("pmcp_tasks_cancel_requests_total", 2.0),
        ("pmcp_tasks_tasks_reaped_total", 1.0),
        ("pmcp_tasks_running_tasks", 0.0),
    ];
    // A counter moves just after the store write a poller sees (the
    // reaper counts the tasks it failed once its call returns), so the
    // scrape is read again until the counts hold; one that overshoots
    // never matches and fails at the deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&metrics).await;
        let wrong: Vec<_> = exact
            .iter()
            .filter(|(name, want)| sample(&text, name) != *want)
            .collect();
        if wrong.is_empty() {
            break text;
        }
        assert!(Instant::now() < deadline, "{wrong:?}\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for part in ["guest", "backend"] {
        let count = sample(
            &text,
            &format!(
                "pmcp_tasks_store_call_duration_seconds_count{{operation=\"create\",backend=\"redis\",part=\"{part}\"}}"
            ),
        );
        assert_eq!(count, 5.0, "creates timed ({part})\n{text}");
    }
    assert!(
        text.contains(
            "pmcp_tasks_store_call_duration_seconds_bucket{operation=\"inspect\",backend=\"redis\""
        ),
        "{text}"
    );
    // Instances were made and kept warm (the upkeep loop may hold one).
    let live = sample(&text, "pmcp_tasks_instances{state=\"live\"}");
    let idle = sample(&text, "pmcp_tasks_instances{state=\"idle\"}");
    assert!(live >= 1.0 && idle <= live, "{text}");
    assert!(
        sample(
            &text,
            "pmcp_tasks_http_requests_total{method=\"POST\",status=\"200\"}"
        ) >= 10.0,
        "{text}"
    );
}
