//! Real payloads: the time to store and to read back a task whose result
//! is a document of megabytes (kept in parts past one backend item), and
//! what a tool's progress reports cost the store at three rates
//! (coalesced by `Worker::progress`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pmcp_tasks_host::{TaskHost, TaskStatus};
use pmcp_tasks_mcp::{Caller, Revision, ServiceConfig, TaskService, TaskStart};
use pmcp_tasks_tests::intercepted::{CountedBackend, Step};
use pmcp_tasks_tests::payloads::base64_like;
use serde_json::{json, Map};

use crate::report::{PayloadRow, ProgressRow};
use crate::{Backends, Sizes};

const OWNER: &str = "bench-payloads";

/// Store and read-back times of results of each size, on each backend.
pub(crate) async fn measure_results(backends: &Backends, sizes: Sizes) -> Vec<PayloadRow> {
    let (result_sizes, repeats): (&[usize], usize) = if sizes.samples < 100 {
        (&[64 << 10, 1 << 20], 1)
    } else {
        (&[1 << 20, 10 << 20], 5)
    };
    let mut rows = Vec::new();
    for (backend, factory) in backends.list() {
        // moto takes most of a second per megabyte: its figures would
        // measure the emulator.
        if backend == "dynamodb" {
            continue;
        }
        let host = TaskHost::builder()
            .backend(factory.fresh().await)
            .build()
            .await
            .expect("a host");
        for &bytes in result_sizes {
            let result = json!({"content": [{"type": "text", "text": base64_like(bytes)}]});
            let (mut store, mut read) = (Vec::new(), Vec::new());
            for _ in 0..repeats {
                let started = Instant::now();
                let id = host
                    .create(OWNER, "tools/call", None)
                    .await
                    .expect("create")
                    .task
                    .task_id;
                host.complete_with_result(OWNER, &id, TaskStatus::Completed, &result)
                    .await
                    .expect("store the result");
                store.push(started.elapsed());
                let started = Instant::now();
                let back = host.get_result(OWNER, &id).await.expect("read it back");
                read.push(started.elapsed());
                assert!(back == result, "the result changed");
                host.delete(OWNER, &id).await.expect("delete");
            }
            rows.push(PayloadRow {
                backend,
                result_bytes: bytes,
                store_ms: median_ms(&mut store),
                read_ms: median_ms(&mut read),
            });
        }
    }
    rows
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

/// Store writes per progress report of a tool reporting at each rate for
/// a while (in-memory backend, the steps counted).
pub(crate) async fn measure_progress(sizes: Sizes) -> Vec<ProgressRow> {
    let run_for = if sizes.samples < 100 {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    };
    let mut rows = Vec::new();
    for rate in [10u64, 1_000, 100_000] {
        let backend = CountedBackend::new();
        let host = TaskHost::builder()
            .backend(backend.clone())
            .build()
            .await
            .expect("a host");
        let config = ServiceConfig::default();
        let interval = config.progress_interval;
        let service = TaskService::new(host.clone(), config);
        let caller = Caller::new("bench", Revision::V2026_07_28).with_tasks_extension(true);
        let before = backend.of(Step::Replace);
        let reports = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sent = reports.clone();
        let (done, finished) = tokio::sync::oneshot::channel();
        service
            .start_task(
                &caller,
                "report",
                Map::new(),
                TaskStart::new(),
                move |worker| async move {
                    let started = Instant::now();
                    let mut n = 0u64;
                    // Reports in batches of one millisecond's worth.
                    let per_ms = (rate / 1_000).max(1);
                    let gap = Duration::from_micros(1_000_000 * per_ms / rate);
                    while started.elapsed() < run_for {
                        for _ in 0..per_ms {
                            n += 1;
                            worker.progress(&format!("item {n}")).await?;
                        }
                        tokio::time::sleep(gap).await;
                    }
                    sent.store(n, std::sync::atomic::Ordering::SeqCst);
                    let _ = done.send(());
                    Ok(json!({"content": [{"type": "text", "text": "reported"}]}))
                },
            )
            .await
            .expect("a task");
        let _ = finished.await;
        // The outcome is the worker's last write; wait for it.
        tokio::time::sleep(interval * 3).await;
        let writes = backend.of(Step::Replace) - before;
        let reports = reports.load(std::sync::atomic::Ordering::SeqCst);
        rows.push(ProgressRow {
            reports_per_second: rate,
            reports,
            store_writes: writes as u64,
            writes_per_report: writes as f64 / reports.max(1) as f64,
        });
    }
    rows
}
