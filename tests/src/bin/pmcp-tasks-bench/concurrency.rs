//! Throughput of a mixed workload (60% get, 30% update-status, 10% create)
//! by number of concurrent callers; on Redis and DynamoDB also a baseline
//! that makes the same round trips straight through the client library.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_host::{InstanceStrategy, TaskStatus};
use pmcp_tasks_tests::bench::{HostSubject, Rng, Subject, SubjectKind};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

#[cfg(any(feature = "redis", feature = "dynamodb"))]
use crate::baseline::{self, Baseline};
use crate::report::ConcurrencyRow;
use crate::{Backends, Sizes};

/// Tasks each caller creates before the clock starts and then works on.
const TASKS_PER_CALLER: usize = 16;

/// The three operations of the mixed workload.
#[async_trait]
pub trait Mixed: Send + Sync + 'static {
    /// Creates a task; returns its id.
    async fn create(&self, owner: &str) -> String;
    /// Reads a task.
    async fn get(&self, owner: &str, id: &str);
    /// Moves a task to `status`.
    async fn update(&self, owner: &str, id: &str, status: TaskStatus);
}

#[async_trait]
impl Mixed for HostSubject {
    async fn create(&self, owner: &str) -> String {
        Subject::create(self, owner).await
    }

    async fn get(&self, owner: &str, id: &str) {
        Subject::get(self, owner, id).await
    }

    async fn update(&self, owner: &str, id: &str, status: TaskStatus) {
        self.update_status(owner, id, status).await
    }
}

/// Every throughput figure: each backend with each strategy, then the
/// client-library baselines.
pub async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ConcurrencyRow> {
    let mut rows = Vec::new();
    for (backend, factory) in backends.list() {
        let callers = match backend {
            "memory" => sizes.callers,
            "redis" => std::slice::from_ref(&sizes.redis_callers),
            _ => std::slice::from_ref(&sizes.dynamodb_callers),
        };
        for strategy in [InstanceStrategy::FreshPerCall, InstanceStrategy::default()] {
            let subject = Arc::new(HostSubject::new(factory.fresh().await, strategy).await);
            for &n in callers {
                let name = SubjectKind::Component(strategy).name();
                rows.push(row(backend, name, subject.clone(), n, sizes.run_for).await);
            }
        }
    }
    #[cfg(feature = "redis")]
    {
        let requests = baseline::redis::Requests::connect(&backends.redis_url()).await;
        let baseline = Arc::new(Baseline::new(requests));
        let n = sizes.redis_callers;
        rows.push(row("redis", BASELINE, baseline, n, sizes.run_for).await);
    }
    #[cfg(feature = "dynamodb")]
    {
        let requests = baseline::dynamodb::Requests::create(backends.dynamodb.client()).await;
        let baseline = Arc::new(Baseline::new(requests));
        let n = sizes.dynamodb_callers;
        rows.push(row("dynamodb", BASELINE, baseline, n, sizes.run_for).await);
    }
    rows
}

/// The throughput of `subject` with `callers` callers, as a report row.
async fn row(
    backend: &'static str,
    subject_name: &'static str,
    subject: Arc<dyn Mixed>,
    callers: usize,
    run_for: Duration,
) -> ConcurrencyRow {
    ConcurrencyRow {
        backend,
        subject: subject_name,
        callers,
        ops_per_sec: throughput(&subject, callers, run_for).await,
    }
}

/// The name of the client-library baselines in the report.
pub const BASELINE: &str = "client-library baseline";

/// Operations per second of `callers` concurrent callers running the mixed
/// workload for `run_for`, each on its own owner's tasks.
async fn throughput(subject: &Arc<dyn Mixed>, callers: usize, run_for: Duration) -> f64 {
    let barrier = Arc::new(Barrier::new(callers));
    let mut running = JoinSet::new();
    for caller in 0..callers {
        let subject = subject.clone();
        let barrier = barrier.clone();
        running.spawn(async move {
            let owner = format!("caller-{caller}");
            let mut tasks = Vec::with_capacity(TASKS_PER_CALLER);
            for _ in 0..TASKS_PER_CALLER {
                tasks.push((subject.create(&owner).await, TaskStatus::Working));
            }
            let mut rng = Rng::new(caller as u64 + 1);
            barrier.wait().await;
            let start = Instant::now();
            let mut ops = 0u64;
            while start.elapsed() < run_for {
                let (id, status) = &mut tasks[rng.below(TASKS_PER_CALLER)];
                match rng.below(10) {
                    0..=5 => subject.get(&owner, id).await,
                    6..=8 => {
                        *status = match status {
                            TaskStatus::Working => TaskStatus::InputRequired,
                            _ => TaskStatus::Working,
                        };
                        subject.update(&owner, id, *status).await
                    }
                    _ => drop(subject.create(&owner).await),
                }
                ops += 1;
            }
            (start, Instant::now(), ops)
        });
    }
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    let mut total = 0u64;
    while let Some(done) = running.join_next().await {
        let (start, end, ops) = done.expect("a benchmark caller panicked");
        first_start = Some(first_start.map_or(start, |s| s.min(start)));
        last_end = Some(last_end.map_or(end, |e| e.max(end)));
        total += ops;
    }
    let elapsed = match (first_start, last_end) {
        (Some(start), Some(end)) => end - start,
        _ => return 0.0,
    };
    total as f64 / elapsed.as_secs_f64()
}
