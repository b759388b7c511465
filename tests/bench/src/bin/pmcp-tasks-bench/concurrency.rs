//! Throughput of a mixed workload (60% get, 30% update-status, 10% create)
//! by number of concurrent callers; on Redis and DynamoDB also a baseline
//! that makes the same round trips straight through the client library.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_bench::{HostSubject, Rng, Subject, SubjectKind};
use pmcp_tasks_host::{InstanceStrategy, TaskStatus};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

#[cfg(any(feature = "redis", feature = "dynamodb"))]
use crate::baseline::{self, Baseline};
use crate::report::{ConcurrencyRow, CpuSplit};
use crate::{Backends, Sizes};

/// Tasks each caller creates before the clock starts and then works on.
const TASKS_PER_CALLER: usize = 16;

/// The three operations of the mixed workload.
#[async_trait]
pub(crate) trait Mixed: Send + Sync + 'static {
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
pub(crate) async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ConcurrencyRow> {
    let mut rows = Vec::new();
    for (backend, factory) in backends.list() {
        let callers = match backend {
            "memory" => sizes.callers,
            "redis" => std::slice::from_ref(&sizes.redis_callers),
            _ => std::slice::from_ref(&sizes.dynamodb_callers),
        };
        let server = match backend {
            "redis" => backends.redis_pid(),
            _ => None,
        };
        for strategy in [InstanceStrategy::FreshPerCall, InstanceStrategy::default()] {
            let subject = Arc::new(HostSubject::new(factory.fresh().await, strategy).await);
            for &n in callers {
                let name = SubjectKind::Component(strategy).name();
                let run = Run::new(backend, name, n, sizes.run_for, server);
                rows.push(run.measure(subject.clone()).await);
            }
        }
    }
    #[cfg(feature = "redis")]
    {
        let requests = baseline::redis::Requests::connect(&backends.redis_url()).await;
        let baseline: Arc<dyn Mixed> = Arc::new(Baseline::new(requests));
        let n = sizes.redis_callers;
        let server = backends.redis_pid();
        let run = Run::new("redis", BASELINE, n, sizes.run_for, server);
        rows.push(run.measure(baseline.clone()).await);
        // Redis and this process share two cores above; pinned apart, each
        // has one to itself, so the client's own CPU cost shows.
        if let Some(pinning) = server.and_then(Pinning::apart) {
            let strategy = InstanceStrategy::default();
            let factory: &dyn pmcp_tasks_tests::BackendFactory = &backends.redis;
            let subject: Arc<dyn Mixed> =
                Arc::new(HostSubject::new(factory.fresh().await, strategy).await);
            let name = SubjectKind::Component(strategy).name();
            for (name, subject) in [(name, subject), (BASELINE, baseline)] {
                let mut run = Run::new("redis", name, n, sizes.run_for, server);
                run.pinned = true;
                rows.push(run.measure(subject).await);
            }
            drop(pinning);
        }
    }
    #[cfg(feature = "dynamodb")]
    {
        let requests = baseline::dynamodb::Requests::create(backends.dynamodb.client()).await;
        let baseline = Arc::new(Baseline::new(requests));
        let n = sizes.dynamodb_callers;
        let run = Run::new("dynamodb", BASELINE, n, sizes.run_for, None);
        rows.push(run.measure(baseline).await);
    }
    rows
}

/// The throughput of `subject` with `callers` callers, as a report row.
/// One measured run: what runs, on what, and whose CPU is accounted.
struct Run {
    backend: &'static str,
    subject: &'static str,
    callers: usize,
    run_for: Duration,
    /// The server process whose CPU is read alongside this process's.
    server: Option<u32>,
    pinned: bool,
}

impl Run {
    fn new(
        backend: &'static str,
        subject: &'static str,
        callers: usize,
        run_for: Duration,
        server: Option<u32>,
    ) -> Run {
        Run {
            backend,
            subject,
            callers,
            run_for,
            server,
            pinned: false,
        }
    }

    async fn measure(&self, subject: Arc<dyn Mixed>) -> ConcurrencyRow {
        let own = std::process::id();
        let before = self
            .server
            .map(|server| (cpu_ticks(own), cpu_ticks(server)));
        let (ops_per_sec, ops) = throughput(&subject, self.callers, self.run_for).await;
        let cpu = self
            .server
            .zip(before)
            .and_then(|(server, (own_before, server_before))| {
                let per_op = |before: Option<u64>, now: Option<u64>| {
                    let ticks = now?.checked_sub(before?)?;
                    Some(ticks as f64 * 1e6 / ticks_per_second() / ops.max(1) as f64)
                };
                Some(CpuSplit {
                    client_us_per_op: per_op(own_before, cpu_ticks(own))?,
                    server_us_per_op: per_op(server_before, cpu_ticks(server))?,
                    pinned: self.pinned,
                })
            });
        ConcurrencyRow {
            backend: self.backend,
            subject: self.subject,
            callers: self.callers,
            ops_per_sec,
            cpu,
        }
    }
}

/// CPU time (utime + stime, in clock ticks) process `pid` has used.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it start at
    // field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(field(11)? + field(12)?)
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`), asked
/// once per process.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The server pinned to the first core and this process (every thread) to
/// the second, while it lives; both get every core back on drop.
#[cfg(feature = "redis")]
struct Pinning {
    server: u32,
    /// Every core, as `taskset` names them (read before pinning: a pinned
    /// process sees one).
    all: String,
}

#[cfg(feature = "redis")]
impl Pinning {
    /// Pins `server` and this process apart, if the machine has two cores
    /// and `taskset` works.
    fn apart(server: u32) -> Option<Pinning> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        let pinning = Pinning {
            server,
            all: format!("0-{}", cores - 1),
        };
        let pinned = taskset("0", server) && taskset("1", std::process::id());
        pinned.then_some(pinning)
    }
}

#[cfg(feature = "redis")]
impl Drop for Pinning {
    fn drop(&mut self) {
        taskset(&self.all, self.server);
        taskset(&self.all, std::process::id());
    }
}

/// Sets the CPU affinity of every thread of `pid` to `cores`.
#[cfg(feature = "redis")]
fn taskset(cores: &str, pid: u32) -> bool {
    std::process::Command::new("taskset")
        .args(["-a", "-cp", cores, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The name of the client-library baselines in the report.
pub(crate) const BASELINE: &str = "client-library baseline";

/// How long each caller of the mixed workload runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// For this long.
    Elapsed(Duration),
    /// For this many operations (the counted Redis run's).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Ops(u64),
}

/// Which operations a workload's callers make.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mix {
    /// 60 % get, 30 % update-status, 10 % create.
    Mixed,
    /// One of them alone (`redis_work.rs` counts each).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Only(Operation),
}

/// An operation of the mixed workload.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Operation {
    Get,
    UpdateStatus,
    Create,
}

impl Operation {
    /// Every operation of the mix, in report order.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) const ALL: [Operation; 3] =
        [Operation::Get, Operation::UpdateStatus, Operation::Create];

    /// Its name in the report.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::UpdateStatus => "update-status",
            Operation::Create => "create",
        }
    }
}

impl Mix {
    /// Its name in the report.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mix::Mixed => "mixed",
            Mix::Only(operation) => operation.name(),
        }
    }

    /// The next operation.
    fn pick(self, rng: &mut Rng) -> Operation {
        match self {
            Mix::Only(operation) => operation,
            Mix::Mixed => match rng.below(10) {
                0..=5 => Operation::Get,
                6..=8 => Operation::UpdateStatus,
                _ => Operation::Create,
            },
        }
    }
}

/// Operations per second of `callers` concurrent callers running the mixed
/// workload for `run_for`, each on its own owner's tasks, and operations made.
async fn throughput(subject: &Arc<dyn Mixed>, callers: usize, run_for: Duration) -> (f64, u64) {
    let until = Until::Elapsed(run_for);
    mixed_workload(subject, callers, until, Mix::Mixed, || {}).await
}

/// Runs the workload `mix` with `callers` concurrent callers, each on its
/// own owner's tasks, until `until`; `at_start` runs once every caller has
/// created its tasks and before any operation. Operations per second, and
/// operations made.
pub(crate) async fn mixed_workload(
    subject: &Arc<dyn Mixed>,
    callers: usize,
    until: Until,
    mix: Mix,
    at_start: impl Fn() + Send + Sync + 'static,
) -> (f64, u64) {
    let ready = Arc::new(Barrier::new(callers));
    let go = Arc::new(Barrier::new(callers));
    let at_start = Arc::new(at_start);
    let mut running = JoinSet::new();
    for caller in 0..callers {
        let subject = subject.clone();
        let (ready, go, at_start) = (ready.clone(), go.clone(), at_start.clone());
        running.spawn(async move {
            let owner = format!("caller-{caller}");
            let mut tasks = Vec::with_capacity(TASKS_PER_CALLER);
            for _ in 0..TASKS_PER_CALLER {
                tasks.push((subject.create(&owner).await, TaskStatus::Working));
            }
            let mut rng = Rng::new(caller as u64 + 1);
            if ready.wait().await.is_leader() {
                at_start();
            }
            go.wait().await;
            let start = Instant::now();
            let mut ops = 0u64;
            while match until {
                Until::Elapsed(run_for) => start.elapsed() < run_for,
                Until::Ops(n) => ops < n,
            } {
                let (id, status) = &mut tasks[rng.below(TASKS_PER_CALLER)];
                match mix.pick(&mut rng) {
                    Operation::Get => subject.get(&owner, id).await,
                    Operation::UpdateStatus => {
                        *status = match status {
                            TaskStatus::Working => TaskStatus::InputRequired,
                            _ => TaskStatus::Working,
                        };
                        subject.update(&owner, id, *status).await
                    }
                    Operation::Create => drop(subject.create(&owner).await),
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
        _ => return (0.0, 0),
    };
    (total as f64 / elapsed.as_secs_f64(), total)
}
