//! Throughput of a mixed workload (60% get, 30% update-status, 10% create)
//! by number of concurrent callers; on Redis also a baseline that makes the
//! same round trips straight through redis-rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_host::{InstanceStrategy, TaskStatus};
use pmcp_tasks_tests::bench::{HostSubject, Rng, Subject};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::report::ConcurrencyRow;
use crate::{Backends, Sizes};

/// Tasks each caller creates before the clock starts and then works on.
const TASKS_PER_CALLER: usize = 16;

/// The three operations of the mixed workload.
#[async_trait]
trait Mixed: Send + Sync + 'static {
    async fn create(&self, owner: &str) -> String;
    async fn get(&self, owner: &str, id: &str);
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
/// Redis baseline.
pub async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ConcurrencyRow> {
    let mut rows = Vec::new();
    for (backend, factory) in backends.list() {
        let callers: &[usize] = if backend == "memory" {
            sizes.callers
        } else {
            std::slice::from_ref(&sizes.redis_callers)
        };
        for strategy in [InstanceStrategy::FreshPerCall, InstanceStrategy::default()] {
            let subject = HostSubject::new(factory.fresh().await, strategy).await;
            let subject: Arc<dyn Mixed> = Arc::new(subject);
            for &n in callers {
                rows.push(ConcurrencyRow {
                    backend,
                    subject: strategy_name(strategy),
                    callers: n,
                    ops_per_sec: throughput(&subject, n, sizes.run_for).await,
                });
            }
        }
    }
    #[cfg(feature = "redis")]
    {
        let baseline: Arc<dyn Mixed> =
            Arc::new(redis_baseline::RoundTrips::connect(&backends.redis_url()).await);
        rows.push(ConcurrencyRow {
            backend: "redis",
            subject: "redis-rs baseline",
            callers: sizes.redis_callers,
            ops_per_sec: throughput(&baseline, sizes.redis_callers, sizes.run_for).await,
        });
    }
    rows
}

fn strategy_name(strategy: InstanceStrategy) -> &'static str {
    match strategy {
        InstanceStrategy::FreshPerCall => "component-fresh",
        InstanceStrategy::Reuse { .. } => "component-reuse",
    }
}

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

#[cfg(feature = "redis")]
mod redis_baseline {
    //! The Redis ceiling: the same round trips per operation as the Redis
    //! backend makes (get: one read; update: a read, then a script; create:
    //! a script), issued directly through redis-rs with trivial work.

    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use pmcp_tasks_host::TaskStatus;
    use redis::aio::ConnectionManager;
    use redis::Script;

    use super::Mixed;

    /// A value the size of a stored task record.
    const RECORD_BYTES: usize = 400;

    pub struct RoundTrips {
        connection: ConnectionManager,
        write: Script,
        next_id: AtomicU64,
        value: Vec<u8>,
    }

    impl RoundTrips {
        pub async fn connect(url: &str) -> RoundTrips {
            let client = redis::Client::open(url).expect("a redis url");
            let connection = ConnectionManager::new(client)
                .await
                .expect("connecting to the benchmark redis");
            RoundTrips {
                connection,
                write: Script::new(
                    "redis.call('HSET', KEYS[1], 'v', ARGV[1]) \
                     return redis.call('HINCRBY', KEYS[1], 'ver', 1)",
                ),
                next_id: AtomicU64::new(0),
                value: vec![b'x'; RECORD_BYTES],
            }
        }

        fn key(owner: &str, id: &str) -> String {
            format!("baseline:{{{owner}}}:{id}")
        }

        async fn read(&self, owner: &str, id: &str) {
            let _: (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
                .arg(Self::key(owner, id))
                .arg(&["v", "ver"][..])
                .query_async(&mut self.connection.clone())
                .await
                .expect("baseline read");
        }

        async fn write(&self, owner: &str, id: &str) {
            let _: u64 = self
                .write
                .key(Self::key(owner, id))
                .arg(&self.value)
                .invoke_async(&mut self.connection.clone())
                .await
                .expect("baseline write");
        }
    }

    #[async_trait]
    impl Mixed for RoundTrips {
        async fn create(&self, owner: &str) -> String {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
            self.write(owner, &id).await;
            id
        }

        async fn get(&self, owner: &str, id: &str) {
            self.read(owner, id).await
        }

        async fn update(&self, owner: &str, id: &str, _status: TaskStatus) {
            self.read(owner, id).await;
            self.write(owner, id).await
        }
    }
}
