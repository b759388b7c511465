//! `pmcp-tasks-bench`: the benchmark harness. Runs every scenario (the
//! per-operation overhead with the criterion bench's code, subjects in
//! turns; scaling, concurrency, memory, engine, protocol), prints one
//! markdown report and writes the same figures as JSON.
//!
//! ```text
//! pmcp-tasks-bench [--smoke] [--only SCENARIOS] [--criterion DIR] [--peer FILE] [--json FILE] [--markdown FILE]
//! ```
//!
//! SCENARIOS is a comma-separated subset of
//! `memory,overhead,counted,engine,scaling,concurrency,protocol,protocol-http,payloads`.
//!
//! `--smoke` runs every scenario at tiny sizes (CI keeps the harness from
//! rotting; its figures mean nothing). With `--criterion DIR` the overhead
//! figures are the estimates criterion wrote there (when complete). With the
//! `redis` and `dynamodb` features it also measures those backends, on a
//! `redis-server` and a moto server it starts on free loopback ports. With
//! `--peer FILE` the report carries the rows `pmcp-tasks-peer-bench` wrote
//! there (our host against the Rust peer: `tests/peer`, a workspace of its
//! own).

#![expect(
    clippy::exhaustive_structs,
    reason = "the benchmark's own types, built by this binary only"
)]

#[cfg(any(feature = "redis", feature = "dynamodb"))]
mod baseline;
mod concurrency;
mod counted;
mod engine;
mod memory;
mod overhead;
mod payloads;
mod protocol;
mod protocol_http;
#[cfg(feature = "redis")]
mod redis_work;
mod report;
mod scaling;
mod telemetry;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use report::{Machine, Report};

/// How big each scenario is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Live-task counts of the measured owner.
    pub task_counts: &'static [usize],
    /// Other owners present (one task each) while scaling.
    pub other_owners: usize,
    /// Timed operations per figure.
    pub samples: usize,
    /// Caller counts on the in-memory backend.
    pub callers: &'static [usize],
    /// Callers on Redis.
    pub redis_callers: usize,
    /// Callers on DynamoDB (moto serves one request at a time).
    pub dynamodb_callers: usize,
    /// How long each throughput figure runs.
    pub run_for: Duration,
    /// Calls parked in the backend for the memory figure.
    pub in_flight: usize,
    /// Operations per caller of the counted Redis workload.
    pub counted_ops_per_caller: u64,
    /// Calls of each operation in the counted sandbox overhead.
    pub counted_calls: u64,
}

const FULL: Sizes = Sizes {
    task_counts: &[100, 10_000, 100_000],
    other_owners: 10_000,
    samples: 2_000,
    callers: &[1, 2, 8, 64],
    redis_callers: 64,
    dynamodb_callers: 8,
    run_for: Duration::from_secs(3),
    in_flight: 1_000,
    counted_ops_per_caller: 500,
    counted_calls: 300,
};

const SMOKE: Sizes = Sizes {
    task_counts: &[10, 100],
    other_owners: 10,
    samples: 20,
    callers: &[1, 4],
    redis_callers: 4,
    dynamodb_callers: 2,
    run_for: Duration::from_millis(100),
    in_flight: 16,
    counted_ops_per_caller: 10,
    counted_calls: 3,
};

/// Every scenario, in the order they run.
const SCENARIOS: [&str; 9] = [
    "memory",
    "overhead",
    "counted",
    "engine",
    "scaling",
    "concurrency",
    "protocol",
    "protocol-http",
    "payloads",
];

struct Args {
    smoke: bool,
    only: Vec<String>,
    criterion: Option<PathBuf>,
    peer: Option<PathBuf>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

impl Args {
    fn parse() -> anyhow::Result<Args> {
        let mut args = Args {
            smoke: false,
            only: SCENARIOS.map(String::from).to_vec(),
            criterion: None,
            peer: None,
            json: None,
            markdown: None,
        };
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            let mut path = || {
                words
                    .next()
                    .map(PathBuf::from)
                    .with_context(|| format!("{word} needs a path"))
            };
            match word.as_str() {
                "--smoke" => args.smoke = true,
                "--only" => {
                    let list = words.next().context("--only needs a list of scenarios")?;
                    args.only = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = args.only.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                        bail!("unknown scenario {bad:?}; the scenarios are {SCENARIOS:?}");
                    }
                }
                "--criterion" => args.criterion = Some(path()?),
                "--peer" => args.peer = Some(path()?),
                "--json" => args.json = Some(path()?),
                "--markdown" => args.markdown = Some(path()?),
                other => bail!(
                    "unknown argument {other:?}; usage: pmcp-tasks-bench [--smoke] \
                     [--only SCENARIOS] [--criterion DIR] [--peer FILE] [--json FILE] [--markdown FILE]"
                ),
            }
        }
        Ok(args)
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // Internal: one memory reading in a process of its own (memory.rs).
    let words: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, strategy, in_flight] = words.as_slice() {
        if flag == "--memory-probe" {
            let in_flight = in_flight.parse().context("--memory-probe needs a count")?;
            return runtime.block_on(memory::probe(strategy, in_flight));
        }
    }
    // Internal: one subject's calls counted under callgrind (counted.rs),
    // on this thread alone, so no idle worker adds to the count.
    if let [flag, subject, calls] = words.as_slice() {
        if flag == counted::PROBE_FLAG {
            let calls = calls.parse().context("--count-probe needs a count")?;
            drop(runtime);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            return runtime.block_on(counted::probe(subject, calls));
        }
    }
    let args = Args::parse()?;
    let report = runtime.block_on(run(&args))?;
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    match &args.json {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?
        }
        None => println!("```json\n{json}\n```"),
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    // Read first: a bad file fails the run before anything is measured.
    let peer = match &args.peer {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => report::PeerRun::default(),
    };
    let sizes = if args.smoke { SMOKE } else { FULL };
    let measured_at = now_iso8601();
    let wanted = |scenario: &str| {
        let run = args.only.iter().any(|s| s == scenario);
        if run {
            eprintln!("running the {scenario} scenario");
        }
        run
    };
    let mut memory = Vec::new();
    if wanted("memory") {
        memory = memory::measure(sizes)?;
    }
    let (mut overhead_source, mut overhead) = ("not run", Vec::new());
    if wanted("overhead") {
        (overhead_source, overhead) = overhead::measure(args.criterion.as_deref(), sizes).await?;
    }
    let mut counted = Vec::new();
    if wanted("counted") {
        counted = counted::measure(sizes).await?;
    }
    let mut engine = Vec::new();
    if wanted("engine") {
        engine = engine::measure(sizes).await;
    }
    let backends = Backends::start().await;
    let mut scaling = Vec::new();
    if wanted("scaling") {
        scaling = scaling::measure(&backends, sizes).await;
    }
    let (mut concurrency, mut redis_work) = (Vec::new(), Vec::new());
    if wanted("concurrency") {
        concurrency = concurrency::measure(&backends, sizes).await;
        redis_work = count_redis_work(sizes).await;
    }
    let (mut protocol, mut telemetry) = (Vec::new(), Vec::new());
    if wanted("protocol") {
        protocol = protocol::measure(&backends, sizes).await;
        telemetry = telemetry::measure(&backends, sizes).await?;
    }
    let mut protocol_http = Vec::new();
    if wanted("protocol-http") {
        protocol_http = protocol_http::measure(&backends, sizes).await;
    }
    let (mut payloads, mut progress) = (Vec::new(), Vec::new());
    if wanted("payloads") {
        payloads = payloads::measure_results(&backends, sizes).await;
        progress = payloads::measure_progress(sizes).await;
    }
    Ok(Report {
        measured_at,
        mode: if args.smoke { "smoke" } else { "full" },
        machine: machine(),
        overhead_source,
        overhead,
        counted,
        scaling,
        concurrency,
        redis_work,
        memory,
        protocol,
        protocol_http,
        telemetry,
        engine,
        payloads,
        progress,
        peer: peer.peer,
        peer_mixed: peer.peer_mixed,
    })
}

/// Redis's work per operation, counted (with the `redis` feature).
async fn count_redis_work(sizes: Sizes) -> Vec<report::RedisWorkRow> {
    #[cfg(feature = "redis")]
    return redis_work::measure(sizes).await;
    #[cfg(not(feature = "redis"))]
    {
        let _ = sizes;
        Vec::new()
    }
}

/// The backends the scenarios run on: the in-memory one, and with the
/// `redis` and `dynamodb` features a `redis-server` and a moto server of
/// their own on free loopback ports (stopped on drop).
pub struct Backends {
    memory: pmcp_tasks_tests::InMemory,
    #[cfg(feature = "redis")]
    redis: pmcp_tasks_tests::redis::RedisFactory,
    #[cfg(feature = "dynamodb")]
    dynamodb: pmcp_tasks_tests::dynamodb::DynamoDbFactory,
}

impl Backends {
    async fn start() -> Backends {
        Backends {
            memory: pmcp_tasks_tests::InMemory,
            #[cfg(feature = "redis")]
            redis: pmcp_tasks_tests::redis::RedisFactory::volatile(),
            #[cfg(feature = "dynamodb")]
            dynamodb: pmcp_tasks_tests::dynamodb::DynamoDbFactory::start().await,
        }
    }

    /// Each backend with its report name.
    pub fn list(&self) -> Vec<(&'static str, &dyn pmcp_tasks_tests::BackendFactory)> {
        vec![
            ("memory", &self.memory),
            #[cfg(feature = "redis")]
            ("redis", &self.redis),
            #[cfg(feature = "dynamodb")]
            ("dynamodb", &self.dynamodb),
        ]
    }

    /// The Redis server's process id (`None` without the `redis` feature).
    pub fn redis_pid(&self) -> Option<u32> {
        #[cfg(feature = "redis")]
        return self.redis.servers().first().and_then(|s| s.pid());
        #[cfg(not(feature = "redis"))]
        None
    }

    /// The Redis server's URL.
    #[cfg(feature = "redis")]
    pub fn redis_url(&self) -> String {
        self.redis.config("").urls.remove(0)
    }
}

fn now_iso8601() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    pmcp_tasks_guest::iso8601_utc(ms)
}

fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    };
    let memory_kib: u64 = field(&read("/proc/meminfo"), "MemTotal")
        .trim_end_matches(" kB")
        .parse()
        .unwrap_or(0);
    Machine {
        cpu: field(&read("/proc/cpuinfo"), "model name"),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_mib: memory_kib / 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
    }
}
