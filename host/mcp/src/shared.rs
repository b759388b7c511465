//! What one replica's [`TaskService`](crate::TaskService) and its
//! workers share: the store, the configuration, the wakeups, the running
//! workers and the shutdown signals. Both hold it (as rmcp's task manager
//! and task context hold theirs); neither holds the other.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::TaskHost;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::RpcError;
use crate::wake::Wakeups;

/// How the service runs tasks and waits for them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Names this replica's workers (lease holders are
    /// `replica/INCARNATION.N`, a process started again never reusing one).
    pub replica: String,
    /// How long a worker's lease holds; it renews at a third of it.
    pub lease: Duration,
    /// How often a waiter reads the store when no write on this replica
    /// woke it (the result may be written by another replica).
    pub poll_interval: Duration,
    /// The longest a `tasks/result` blocks before answering -32603 (the
    /// client calls it again).
    pub result_wait_limit: Duration,
    /// How often a worker reads its task to see a cancellation asked on
    /// another replica (one read per running task per period).
    pub cancel_check: Duration,
    /// How long a tool that sees its task's cancellation may still run to
    /// return its own outcome (say, after cleaning up); past it, its
    /// future is dropped and the task ends `cancelled`.
    pub cancel_grace: Duration,
    /// The least time between two progress writes of one task: reports
    /// in between are coalesced, the latest winning (see
    /// [`Worker::progress`](crate::Worker::progress)).
    pub progress_interval: Duration,
    /// How long a retryable task's tool has, once the replica starts
    /// shutting down, to store a checkpoint and return before its task is
    /// handed off to another replica (see
    /// [`Worker::stopping`](crate::Worker::stopping)).
    pub handoff_grace: Duration,
    /// How often the replica looks for tasks waiting for a worker (handed
    /// off, or whose worker was lost) to claim and run.
    pub claim_interval: Duration,
    /// Task workers this replica runs at most: claiming stops at it.
    pub max_running_tasks: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            replica: "replica".into(),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            result_wait_limit: Duration::from_secs(300),
            cancel_check: Duration::from_secs(1),
            cancel_grace: Duration::from_secs(5),
            progress_interval: Duration::from_millis(100),
            handoff_grace: Duration::from_millis(500),
            claim_interval: Duration::from_millis(250),
            max_running_tasks: 256,
        }
    }
}

/// The state of one replica's task work.
pub(crate) struct Shared {
    pub(crate) host: TaskHost,
    pub(crate) config: ServiceConfig,
    pub(crate) wakeups: Arc<Wakeups>,
    /// Numbers this replica's workers.
    pub(crate) workers: AtomicU64,
    /// Tells this service's workers from those of an earlier process of
    /// the same replica name.
    pub(crate) incarnation: u32,
    /// This replica's running workers.
    pub(crate) running: TaskTracker,
    /// Cancelled when the replica stops taking new tasks.
    pub(crate) stopping: CancellationToken,
    /// Cancelled when the shutdown grace is over: the workers still
    /// running end their tasks `failed` (or hand them off, if retryable).
    pub(crate) abandon: CancellationToken,
    /// Tasks this replica's workers handed off.
    pub(crate) handed_off: AtomicU64,
    /// The worker slots (`max_running_tasks`): a worker runs in one.
    pub(crate) capacity: Arc<crate::capacity::Capacity>,
}

impl Shared {
    /// A new worker's lease grant (holders are never reused: a run of an
    /// earlier process cannot pass for one of this one).
    pub(crate) fn next_grant(&self) -> pmcp_tasks_host::LeaseGrant {
        let n = self
            .workers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let holder = format!("{}/{:08x}.{n}", self.config.replica, self.incarnation);
        pmcp_tasks_host::LeaseGrant::new(holder, self.config.lease)
    }
}

/// A number unlikely to repeat between two starts of a process.
pub(crate) fn incarnation() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    nanos ^ std::process::id().rotate_left(16)
}

/// Counts a task this replica ended, by its final status
/// (`pmcp_tasks_tasks_finished_total`): `completed` for a tool result,
/// `failed` for an error, `cancelled`.
pub(crate) fn count_finished(status: &'static str) {
    metrics::counter!("pmcp_tasks_tasks_finished_total", "status" => status).increment(1);
}

/// The error a task still running at the end of a shutdown ends with.
pub(crate) fn shut_down_error() -> RpcError {
    RpcError::internal("the replica shut down before the task finished; call the tool again")
}
