//! `pmcp-tasks-peer-bench`: our host against the Rust peer, `pmcp-tasks`
//! 0.2.0's `GenericTaskStore`, through the same workloads in one run.
//!
//! ```text
//! pmcp-tasks-peer-bench [--smoke] --json FILE
//! pmcp-tasks-peer-bench --profile ours|peer get|progress|set-variables CALLS
//! ```
//!
//! Each backend (memory; Redis on a `redis-server` this starts on a free
//! loopback port) gets both stores, each seeded with the same owners: one
//! measured owner per live-task count and many other owners with one task
//! each. The operations (create, get, a progress update, a variables merge,
//! complete with a result, a list page of 50) are then timed in rounds in
//! which the two stores take turns at every count, so a VM that slows down
//! for a minute slows both alike; the figure is each one's median. On
//! Redis the 64-caller mixed workload of the main benchmark (60 % get,
//! 30 % status change, 10 % create) runs in turns too. `tests/bench.sh`
//! passes the JSON it writes to `pmcp-tasks-bench --peer`, which puts the
//! rows in the report. `--profile` runs one operation of one store on
//! Redis in a loop and prints its wall and CPU time per call, for `perf`
//! and `strace -c` to look at.
//!
//! Its tests (`cargo test` here, with `redis-server` on the path) show
//! two guarantees the peer lacks that the report names: owner isolation
//! against an owner id holding `:`, and an atomic quota.

mod redis_server;
mod stores;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use stores::{Ours, Peer, Store};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// How big a run is.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Live tasks of each measured owner.
    task_counts: &'static [usize],
    /// Other owners present (one task each).
    other_owners: usize,
    /// Samples of each operation at each count, over all rounds, at most.
    samples: usize,
    /// What one operation at one count may take of one round, at most
    /// (the peer's creates and pages read every task of the owner: at
    /// 100 000 on Redis one takes seconds). At least one sample is taken.
    budget: Duration,
    /// Callers of the mixed workload.
    callers: usize,
    /// How long each turn of the mixed workload runs.
    run_for: Duration,
}

const FULL: Sizes = Sizes {
    task_counts: &[100, 10_000, 100_000],
    other_owners: 10_000,
    samples: 400,
    budget: Duration::from_secs(2),
    callers: 64,
    run_for: Duration::from_secs(3),
};

const SMOKE: Sizes = Sizes {
    task_counts: &[10, 100],
    other_owners: 10,
    samples: 8,
    budget: Duration::from_millis(50),
    callers: 4,
    run_for: Duration::from_millis(100),
};

/// Rounds in which the stores take turns.
const ROUNDS: usize = 4;
/// Turns of each store in the mixed workload.
const MIXED_TURNS: usize = 3;
/// Tasks per listed page.
const PAGE_SIZE: usize = 50;
/// Concurrent callers seeding the stores.
const SEEDERS: usize = 32;
/// Tasks each mixed-workload caller creates before the clock starts.
const TASKS_PER_CALLER: usize = 16;

/// One operation at one task count: our median against the peer's.
#[derive(Debug, Serialize)]
struct PeerRow {
    backend: &'static str,
    operation: &'static str,
    tasks: usize,
    ours_ns: f64,
    peer_ns: f64,
    /// Of ours, the component call's fixed cost (a refused `get`: the
    /// crossing into the sandbox and back, no backend call), in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox_ns: Option<f64>,
    /// Samples behind each median (the fewer of the two).
    samples: usize,
}

/// The mixed workload's throughput, ours against the peer's.
#[derive(Debug, Serialize)]
struct PeerMixedRow {
    backend: &'static str,
    callers: usize,
    ours_ops_per_second: f64,
    peer_ops_per_second: f64,
}

#[derive(Debug, Serialize)]
struct Output {
    peer: Vec<PeerRow>,
    peer_mixed: Vec<PeerMixedRow>,
}

/// An operation timed at every count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Get,
    Progress,
    SetVariables,
    CompleteWithResult,
    ListPage,
}

impl Operation {
    /// Every operation, in report order.
    const ALL: [Operation; 6] = [
        Operation::Create,
        Operation::Get,
        Operation::Progress,
        Operation::SetVariables,
        Operation::CompleteWithResult,
        Operation::ListPage,
    ];

    /// Its name in the report.
    fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Progress => "progress",
            Operation::SetVariables => "set-variables",
            Operation::CompleteWithResult => "complete-with-result",
            Operation::ListPage => "list-page",
        }
    }

    /// Whether it reads or writes one task: the operations whose time the
    /// sandbox crossing is a share of (creates and pages are not compared
    /// so: the peer's read every task of the owner).
    fn is_point(self) -> bool {
        !matches!(self, Operation::Create | Operation::ListPage)
    }
}

fn main() -> anyhow::Result<()> {
    let mut smoke = false;
    let mut json: Option<PathBuf> = None;
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--smoke" => smoke = true,
            "--profile" => {
                let store = words
                    .next()
                    .context("--profile ours|peer OPERATION CALLS")?;
                let operation = words.next().context("--profile needs an operation")?;
                let calls = words.next().context("--profile needs a count")?.parse()?;
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                return runtime.block_on(profile(&store, &operation, calls));
            }
            "--json" => json = Some(words.next().context("--json needs a path")?.into()),
            other => bail!(
                "unknown argument {other:?}; usage: pmcp-tasks-peer-bench [--smoke] --json FILE"
            ),
        }
    }
    let json = json.context("--json FILE is required")?;
    let sizes = if smoke { SMOKE } else { FULL };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let output = runtime.block_on(run(sizes))?;
    let text = serde_json::to_string_pretty(&output)?;
    std::fs::write(&json, text).with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}

async fn run(sizes: Sizes) -> anyhow::Result<Output> {
    let mut output = Output {
        peer: Vec::new(),
        peer_mixed: Vec::new(),
    };
    let ours = Ours::in_memory().await?;
    let sandbox = ours.refused_get_ns().await;
    let memory_ours: Arc<dyn Store> = Arc::new(ours);
    let memory_peer: Arc<dyn Store> = Arc::new(Peer::in_memory());
    eprintln!("memory: seeding and timing");
    let rows = operations("memory", &memory_ours, &memory_peer, sizes).await?;
    output
        .peer
        .extend(rows.into_iter().map(|(operation, mut row)| {
            if operation.is_point() {
                row.sandbox_ns = Some(sandbox);
            }
            row
        }));
    drop((memory_ours, memory_peer));

    let server = redis_server::RedisServer::start().await?;
    let redis_ours: Arc<dyn Store> = Arc::new(Ours::on_redis(&server.url()).await?);
    let redis_peer: Arc<dyn Store> = Arc::new(Peer::on_redis(&server.url()).await?);
    eprintln!("redis: seeding and timing");
    let rows = operations("redis", &redis_ours, &redis_peer, sizes).await?;
    output.peer.extend(rows.into_iter().map(|(_, row)| row));
    eprintln!("redis: the mixed workload");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for turn in 0..MIXED_TURNS {
        ours.push(mixed(&redis_ours, sizes, &format!("ours-{turn}")).await?);
        peer.push(mixed(&redis_peer, sizes, &format!("peer-{turn}")).await?);
    }
    output.peer_mixed.push(PeerMixedRow {
        backend: "redis",
        callers: sizes.callers,
        ours_ops_per_second: median_f64(ours),
        peer_ops_per_second: median_f64(peer),
    });
    drop((redis_ours, redis_peer));
    server.stop().await;
    Ok(output)
}

/// Internal, for profilers: `calls` of one operation of one store on
/// Redis, one after another, and what they took: wall time and this
/// process's CPU time per call. The owner holds `PROFILE_TASKS` tasks
/// (1 000 unless set), beside `PROFILE_OTHER_OWNERS` owners of one task
/// each (none unless set; the benchmark's Redis holds 10 000).
async fn profile(store: &str, operation: &str, calls: usize) -> anyhow::Result<()> {
    let operation = match operation {
        "get" => Operation::Get,
        "progress" => Operation::Progress,
        "set-variables" => Operation::SetVariables,
        other => bail!("--profile times get, progress or set-variables, not {other:?}"),
    };
    let server = redis_server::RedisServer::start().await?;
    let store: Arc<dyn Store> = match store {
        "ours" => Arc::new(Ours::on_redis(&server.url()).await?),
        "peer" => Arc::new(Peer::on_redis(&server.url()).await?),
        other => bail!("--profile times ours or peer, not {other:?}"),
    };
    // The store's contents, as the benchmark's (or smaller) to compare.
    let count = |name: &str, default: usize| -> anyhow::Result<usize> {
        std::env::var(name).map_or(Ok(default), |v| Ok(v.parse()?))
    };
    seed(&store, count("PROFILE_OTHER_OWNERS", 0)?, |i| {
        format!("other-owner-{i}")
    })
    .await?;
    let owner = "profiled-owner";
    let ids = seed(&store, count("PROFILE_TASKS", 1_000)?, move |_| {
        owner.to_owned()
    })
    .await?;
    let mut pick = Pick(7);
    let (cpu, wall) = (cpu_time()?, Instant::now());
    for seq in 0..calls as u64 {
        let id = &ids[pick.below(ids.len())];
        match operation {
            Operation::Get => store.get(owner, id).await?,
            Operation::Progress => {
                let message = stores::progress_message(seq);
                store.progress(owner, id, &message).await?
            }
            _ => {
                store
                    .set_variables(owner, id, stores::variables(seq))
                    .await?
            }
        }
    }
    let (cpu, wall) = (cpu_time()? - cpu, wall.elapsed());
    eprintln!(
        "{} {}: {:.1} µs per call, {:.1} µs of this process's CPU per call",
        store.name(),
        operation.name(),
        wall.as_secs_f64() * 1e6 / calls as f64,
        cpu.as_secs_f64() * 1e6 / calls as f64
    );
    server.stop().await;
    Ok(())
}

/// This process's user and system CPU time so far (`/proc/self/stat`).
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a /proc stat line")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of the line, in clock ticks (100 Hz).
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// One measured owner of one store: its tasks and the samples so far.
struct Owner {
    name: String,
    ids: Vec<String>,
    cursor: Option<String>,
    samples: [Vec<Duration>; Operation::ALL.len()],
    /// Numbers every write, so none repeats the one before (ours skips a
    /// write that changes nothing).
    seq: u64,
}

impl Owner {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// Seeds both stores alike, then times every operation at every count,
/// the stores taking turns within each round; a row per operation and
/// count.
async fn operations(
    backend: &'static str,
    ours: &Arc<dyn Store>,
    peer: &Arc<dyn Store>,
    sizes: Sizes,
) -> anyhow::Result<Vec<(Operation, PeerRow)>> {
    let stores = [ours, peer];
    let mut owners: [Vec<Owner>; 2] = [Vec::new(), Vec::new()];
    for (store, owners) in stores.iter().zip(&mut owners) {
        let started = Instant::now();
        seed(store, sizes.other_owners, |i| format!("other-owner-{i}")).await?;
        for &tasks in sizes.task_counts {
            let name = format!("bench-owner/{tasks}");
            let ids = seed(store, tasks, {
                let name = name.clone();
                move |_| name.clone()
            })
            .await?;
            owners.push(Owner {
                name,
                ids,
                cursor: None,
                samples: Default::default(),
                seq: 0,
            });
        }
        eprintln!("  {} seeded in {:.1?}", store.name(), started.elapsed());
    }
    // An untimed first round lets connections and caches settle.
    for round in 0..=ROUNDS {
        for count in 0..sizes.task_counts.len() {
            for (store, owners) in stores.iter().zip(&mut owners) {
                let owner = &mut owners[count];
                let taken = owner_round(store.as_ref(), owner, sizes).await?;
                if round > 0 {
                    for (all, new) in owner.samples.iter_mut().zip(taken) {
                        all.extend(new);
                    }
                }
            }
        }
        eprintln!("  round {round} of {ROUNDS} done");
    }
    let [ours, peer] = owners;
    let mut rows = Vec::new();
    for ((ours, peer), &tasks) in ours.into_iter().zip(peer).zip(sizes.task_counts) {
        let timed = Operation::ALL
            .into_iter()
            .zip(ours.samples)
            .zip(peer.samples);
        for ((operation, ours), peer) in timed {
            let row = PeerRow {
                backend,
                operation: operation.name(),
                tasks,
                samples: ours.len().min(peer.len()),
                ours_ns: median_ns(ours),
                peer_ns: median_ns(peer),
                sandbox_ns: None,
            };
            rows.push((operation, row));
        }
    }
    Ok(rows)
}

/// One round's samples of every operation for `owner`: each as many times
/// as its share of the samples, or as fit in the budget, at least once.
async fn owner_round(
    store: &dyn Store,
    owner: &mut Owner,
    sizes: Sizes,
) -> anyhow::Result<[Vec<Duration>; Operation::ALL.len()]> {
    let share = (sizes.samples / ROUNDS).max(1);
    let mut taken: [Vec<Duration>; Operation::ALL.len()] = Default::default();
    let mut pick = Pick(owner.ids.len() as u64 * 2_654_435_761 + 1);
    for (operation, samples) in Operation::ALL.into_iter().zip(&mut taken) {
        let started = Instant::now();
        while samples.len() < share && (samples.is_empty() || started.elapsed() < sizes.budget) {
            let sample = match operation {
                Operation::Create => {
                    let start = Instant::now();
                    let id = store.create(&owner.name).await?;
                    let took = start.elapsed();
                    owner.ids.push(id);
                    took
                }
                Operation::Get => {
                    let id = &owner.ids[pick.below(owner.ids.len())];
                    let start = Instant::now();
                    store.get(&owner.name, id).await?;
                    start.elapsed()
                }
                Operation::Progress => {
                    let message = stores::progress_message(owner.next_seq());
                    let id = &owner.ids[pick.below(owner.ids.len())];
                    let start = Instant::now();
                    store.progress(&owner.name, id, &message).await?;
                    start.elapsed()
                }
                Operation::SetVariables => {
                    let patch = stores::variables(owner.next_seq());
                    let id = &owner.ids[pick.below(owner.ids.len())];
                    let start = Instant::now();
                    store.set_variables(&owner.name, id, patch).await?;
                    start.elapsed()
                }
                Operation::CompleteWithResult => {
                    // A task of its own, made untimed the way seeding makes
                    // them: the owner's other tasks stay working.
                    let id = store.seed_one(&owner.name).await?;
                    let start = Instant::now();
                    store.complete(&owner.name, &id).await?;
                    start.elapsed()
                }
                Operation::ListPage => {
                    let cursor = owner.cursor.take();
                    let start = Instant::now();
                    owner.cursor = store.list_page(&owner.name, cursor, PAGE_SIZE).await?;
                    start.elapsed()
                }
            };
            samples.push(sample);
        }
    }
    Ok(taken)
}

/// Creates `count` tasks, the i-th for `owner(i)`, from concurrent callers,
/// by the store's own fastest way; returns their ids.
async fn seed(
    store: &Arc<dyn Store>,
    count: usize,
    owner: impl Fn(usize) -> String + Clone + Send + 'static,
) -> anyhow::Result<Vec<String>> {
    let mut callers = JoinSet::new();
    for caller in 0..SEEDERS {
        let store = store.clone();
        let owner = owner.clone();
        callers.spawn(async move {
            let mut ids = Vec::new();
            for i in (caller..count).step_by(SEEDERS) {
                ids.push(store.seed_one(&owner(i)).await?);
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(created) = callers.join_next().await {
        ids.extend(created.context("a seeding caller panicked")??);
    }
    Ok(ids)
}

/// Operations per second of the mixed workload: `sizes.callers` callers,
/// each on its own owner's tasks (named after `turn`), for `sizes.run_for`.
async fn mixed(store: &Arc<dyn Store>, sizes: Sizes, turn: &str) -> anyhow::Result<f64> {
    let ready = Arc::new(Barrier::new(sizes.callers));
    let mut callers = JoinSet::new();
    for caller in 0..sizes.callers {
        let store = store.clone();
        let ready = ready.clone();
        let owner = format!("mixed-{turn}-{caller}");
        callers.spawn(async move {
            let mut tasks = Vec::with_capacity(TASKS_PER_CALLER);
            for _ in 0..TASKS_PER_CALLER {
                tasks.push((store.create(&owner).await?, false));
            }
            let mut pick = Pick(caller as u64 + 1);
            ready.wait().await;
            let start = Instant::now();
            let mut ops = 0u64;
            while start.elapsed() < sizes.run_for {
                let (id, input_required) = &mut tasks[pick.below(TASKS_PER_CALLER)];
                match pick.below(10) {
                    0..=5 => store.get(&owner, id).await?,
                    6..=8 => {
                        *input_required = !*input_required;
                        store.flip_status(&owner, id, *input_required).await?
                    }
                    _ => drop(store.create(&owner).await?),
                }
                ops += 1;
            }
            anyhow::Ok((start, Instant::now(), ops))
        });
    }
    let (mut first, mut last, mut total) = (None::<Instant>, None::<Instant>, 0u64);
    while let Some(done) = callers.join_next().await {
        let (start, end, ops) = done.context("a mixed-workload caller panicked")??;
        first = Some(first.map_or(start, |s| s.min(start)));
        last = Some(last.map_or(end, |e| e.max(end)));
        total += ops;
    }
    let elapsed = match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => return Ok(0.0),
    };
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// A small deterministic generator (xorshift64*), so a run is repeatable.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % n
    }
}

fn median_ns(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, |d| d.as_nanos() as f64)
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
