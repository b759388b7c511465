//! Throughput of a mixed workload (60% get, 30% update-status, 10% create)
//! by number of concurrent callers; on Redis and DynamoDB also a baseline
//! that makes the same round trips straight through the client library.

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
        let callers = match backend {
            "memory" => sizes.callers,
            "redis" => std::slice::from_ref(&sizes.redis_callers),
            _ => std::slice::from_ref(&sizes.dynamodb_callers),
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
        let requests = redis_baseline::Requests::connect(&backends.redis_url()).await;
        let baseline: Arc<dyn Mixed> = Arc::new(Baseline::new(requests));
        let callers = sizes.redis_callers;
        rows.push(ConcurrencyRow {
            backend: "redis",
            subject: BASELINE,
            callers,
            ops_per_sec: throughput(&baseline, callers, sizes.run_for).await,
        });
    }
    #[cfg(feature = "dynamodb")]
    {
        let requests = dynamodb_baseline::Requests::create(backends.dynamodb.client()).await;
        let baseline: Arc<dyn Mixed> = Arc::new(Baseline::new(requests));
        let callers = sizes.dynamodb_callers;
        rows.push(ConcurrencyRow {
            backend: "dynamodb",
            subject: BASELINE,
            callers,
            ops_per_sec: throughput(&baseline, callers, sizes.run_for).await,
        });
    }
    rows
}

/// The name of the client-library baselines in the report.
pub const BASELINE: &str = "client-library baseline";

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

/// The two requests a backend baseline makes: a plain read and a plain
/// write of a record-sized value.
#[async_trait]
trait RoundTrips: Send + Sync + 'static {
    async fn read(&self, owner: &str, id: &str);
    async fn write(&self, owner: &str, id: &str);
}

/// A backend's ceiling: the mixed workload with the same round trips per
/// operation as the store makes on that backend (get: a read; update: a
/// read, then a write; create: a write), straight through the client
/// library, with none of the store's work.
struct Baseline<R> {
    requests: R,
    next_id: std::sync::atomic::AtomicU64,
}

impl<R> Baseline<R> {
    fn new(requests: R) -> Self {
        Baseline {
            requests,
            next_id: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl<R: RoundTrips> Mixed for Baseline<R> {
    async fn create(&self, owner: &str) -> String {
        let next = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = next.to_string();
        self.requests.write(owner, &id).await;
        id
    }

    async fn get(&self, owner: &str, id: &str) {
        self.requests.read(owner, id).await
    }

    async fn update(&self, owner: &str, id: &str, _status: TaskStatus) {
        self.requests.read(owner, id).await;
        self.requests.write(owner, id).await
    }
}

/// A value the size of a stored task record.
const RECORD_BYTES: usize = 400;

#[cfg(feature = "redis")]
mod redis_baseline {
    //! Redis round trips: `HMGET` to read, a trivial Lua script to write
    //! (the store's writes are scripts too).

    use async_trait::async_trait;
    use redis::aio::ConnectionManager;
    use redis::Script;

    use super::{RoundTrips, RECORD_BYTES};

    pub struct Requests {
        connection: ConnectionManager,
        script: Script,
        value: Vec<u8>,
    }

    impl Requests {
        pub async fn connect(url: &str) -> Requests {
            let client = redis::Client::open(url).expect("a redis url");
            let connection = ConnectionManager::new(client)
                .await
                .expect("connecting to the benchmark redis");
            Requests {
                connection,
                script: Script::new(
                    "redis.call('HSET', KEYS[1], 'v', ARGV[1]) \
                     return redis.call('HINCRBY', KEYS[1], 'ver', 1)",
                ),
                value: vec![b'x'; RECORD_BYTES],
            }
        }

        fn key(owner: &str, id: &str) -> String {
            format!("baseline:{{{owner}}}:{id}")
        }
    }

    #[async_trait]
    impl RoundTrips for Requests {
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
                .script
                .key(Self::key(owner, id))
                .arg(&self.value)
                .invoke_async(&mut self.connection.clone())
                .await
                .expect("baseline write");
        }
    }
}

#[cfg(feature = "dynamodb")]
mod dynamodb_baseline {
    //! DynamoDB requests: a strongly consistent `GetItem` to read, a
    //! `PutItem` to write, on a table of the store's schema.

    use std::collections::HashMap;

    use async_trait::async_trait;
    use pmcp_tasks_host::backend::dynamodb::{sdk, DynamoDbBackend};
    use sdk::primitives::Blob;
    use sdk::types::AttributeValue;

    use super::{RoundTrips, RECORD_BYTES};

    pub struct Requests {
        client: sdk::Client,
        table: String,
        value: Blob,
    }

    impl Requests {
        pub async fn create(client: &sdk::Client) -> Requests {
            let table = "baseline".to_owned();
            DynamoDbBackend::new(client.clone(), table.clone())
                .create_table()
                .await
                .expect("creating the baseline table");
            Requests {
                client: client.clone(),
                table,
                value: Blob::new(vec![b'x'; RECORD_BYTES]),
            }
        }

        fn key(owner: &str, id: &str) -> HashMap<String, AttributeValue> {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(owner.to_owned())),
                ("sk".to_owned(), AttributeValue::S(format!("i#{id}"))),
            ])
        }
    }

    #[async_trait]
    impl RoundTrips for Requests {
        async fn read(&self, owner: &str, id: &str) {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(owner, id)))
                .consistent_read(true)
                .send()
                .await
                .expect("baseline GetItem");
        }

        async fn write(&self, owner: &str, id: &str) {
            let mut item = Self::key(owner, id);
            item.insert("v".to_owned(), AttributeValue::B(self.value.clone()));
            item.insert("ver".to_owned(), AttributeValue::N("1".to_owned()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .expect("baseline PutItem");
        }
    }
}
