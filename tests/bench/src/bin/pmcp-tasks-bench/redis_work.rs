//! Redis's work per operation, counted: the instructions the Redis process
//! executes for the mixed workload, under callgrind, for the component and
//! for the client-library baseline. CPU time on a shared VM drifts by the
//! minute; the count repeats run to run, so it shows what a change to the
//! scripts saves on the Redis side of the throughput ratio.

use std::sync::Arc;

use pmcp_tasks_bench::{HostSubject, SubjectKind};
use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::callgrind;
use pmcp_tasks_tests::redis::RedisFactory;
use pmcp_tasks_tests::BackendFactory;

use crate::baseline::{self, Baseline};
use crate::concurrency::{mixed_workload, Mixed, Until, BASELINE};
use crate::report::RedisWorkRow;
use crate::Sizes;

/// Concurrent callers of the counted workload (Redis under callgrind runs
/// tens of times slower, so the counted run is short).
const CALLERS: usize = 8;

/// Both subjects on one Redis server under callgrind; no rows when
/// valgrind is not installed.
pub(crate) async fn measure(sizes: Sizes) -> Vec<RedisWorkRow> {
    if !callgrind::available() {
        eprintln!("valgrind is not installed: Redis's work per operation is not counted");
        return Vec::new();
    }
    let counts = callgrind::CountsDir::create("redis-counts")
        .expect("creating the callgrind output directory");
    let factory = RedisFactory::counted(counts.path());
    let counter = factory.servers()[0]
        .instruction_counter()
        .expect("a counted server has a counter while it runs");
    let strategy = InstanceStrategy::default();
    let component: Arc<dyn Mixed> =
        Arc::new(HostSubject::new(factory.fresh().await, strategy).await);
    let url = factory.config("").urls.remove(0);
    let requests = baseline::redis::Requests::connect(&url).await;
    let baseline: Arc<dyn Mixed> = Arc::new(Baseline::new(requests));
    let mut rows = Vec::new();
    for (subject, mixed) in [
        (SubjectKind::Component(strategy).name(), component),
        (BASELINE, baseline),
    ] {
        let zero = {
            let counter = counter.clone();
            move || counter.zero()
        };
        let until = Until::Ops(sizes.counted_ops_per_caller);
        let (_, ops) = mixed_workload(&mixed, CALLERS, until, zero).await;
        if let Some(instructions) = counter.count() {
            rows.push(RedisWorkRow {
                subject,
                callers: CALLERS,
                ops,
                instructions_per_op: instructions as f64 / ops.max(1) as f64,
            });
        }
    }
    // The server stops before its counts' directory goes.
    drop(factory);
    drop(counts);
    rows
}
