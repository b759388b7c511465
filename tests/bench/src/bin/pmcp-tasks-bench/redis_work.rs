//! Redis's work per operation, counted: the instructions the Redis process
//! executes for the mixed workload, under callgrind, for the component and
//! for the client-library baseline. CPU time on a shared VM drifts by the
//! minute; the count repeats run to run, so it shows what a change to the
//! scripts saves on the Redis side of the throughput ratio. Beside the
//! mixed workload, each of its operations alone (where the Redis work of
//! each script and command shows) and the floor: a `PING` and an
//! `EVALSHA` of a script that does nothing, the least any request and any
//! script costs.

use std::sync::Arc;

use tokio::task::JoinSet;

use pmcp_tasks_bench::{HostSubject, SubjectKind};
use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::callgrind;
use pmcp_tasks_tests::redis::RedisFactory;
use pmcp_tasks_tests::BackendFactory;

use crate::baseline::{self, Baseline};
use crate::concurrency::{mixed_workload, Mix, Mixed, Operation, Until, BASELINE};
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
        // The mix, then each of its operations alone, on half as many calls.
        let alone = (sizes.counted_ops_per_caller / 2).max(1);
        let workloads = [(Mix::Mixed, sizes.counted_ops_per_caller)]
            .into_iter()
            .chain(Operation::ALL.map(|operation| (Mix::Only(operation), alone)));
        for (mix, per_caller) in workloads {
            let zero = {
                let counter = counter.clone();
                move || counter.zero()
            };
            let until = Until::Ops(per_caller);
            let (_, ops) = mixed_workload(&mixed, CALLERS, until, mix, zero).await;
            rows.extend(row(subject, mix.name(), CALLERS, ops, counter.count()));
        }
    }
    let floor = floor(&url, sizes.counted_ops_per_caller, &counter).await;
    rows.extend(floor);
    // The server stops before its counts' directory goes.
    drop(factory);
    drop(counts);
    rows
}

fn row(
    subject: &'static str,
    workload: &'static str,
    callers: usize,
    ops: u64,
    instructions: Option<u64>,
) -> Option<RedisWorkRow> {
    Some(RedisWorkRow {
        subject,
        workload,
        callers,
        ops,
        instructions_per_op: instructions? as f64 / ops.max(1) as f64,
    })
}

/// The floor: [`CALLERS`] callers making `n` `PING`s each, then as many
/// `EVALSHA`s of a script that does nothing, counted.
async fn floor(url: &str, n: u64, counter: &callgrind::InstructionCounter) -> Vec<RedisWorkRow> {
    let client = redis::Client::open(url).expect("a redis url");
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connecting to the counted redis");
    let empty = redis::Script::new("return 0");
    // Loaded before counting: what is counted is EVALSHA alone.
    let _: i64 = empty
        .invoke_async(&mut connection.clone())
        .await
        .expect("the empty script");
    let mut rows = Vec::new();
    for workload in ["PING", "empty EVALSHA"] {
        counter.zero();
        let mut callers = JoinSet::new();
        for _ in 0..CALLERS {
            let (mut connection, empty) = (connection.clone(), empty.clone());
            callers.spawn(async move {
                for _ in 0..n {
                    let _: redis::Value = match workload {
                        "PING" => redis::cmd("PING").query_async(&mut connection).await,
                        _ => empty.invoke_async(&mut connection).await,
                    }
                    .expect("a floor request");
                }
            });
        }
        while let Some(done) = callers.join_next().await {
            done.expect("a floor caller panicked");
        }
        let ops = n * CALLERS as u64;
        rows.extend(row("floor", workload, CALLERS, ops, counter.count()));
    }
    rows
}
