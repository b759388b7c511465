//! The protocol served the way it is deployed: rmcp's own Streamable HTTP
//! client (reqwest, one session, up to `callers` POSTs at once) calling
//! `tasks/get` on a finished task and task-creating `tools/call`s, over
//! loopback TCP, against
//!
//! - `serve_http` with one replica on the in-memory backend,
//! - `serve_http` with one replica on Redis, and two replicas on one
//!   Redis behind the round-robin proxy (no affinity: each request goes
//!   to the next replica; the session is sealed with a secret both
//!   replicas share),
//! - `pmcp-tasks gateway`'s server (`Gateway`, in front of the Python SDK
//!   fixture server over stdio) with one replica on Redis and two behind
//!   the proxy, for `tasks/get` only (a task-creating call there starts an
//!   upstream process per running task: the upstream's cost, not ours),
//! - rmcp's own `TaskManager` (one process's memory) on rmcp's
//!   `StreamableHttpService`, the service our front hands requests to,
//!   served by the same hyper HTTP/1.1 connection loop (one process: its
//!   tasks cannot be shared by replicas),
//!
//! in the same run, with per-call latency recorded on the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "redis")]
use pmcp_tasks_host::backend::redis::RedisBackend;
use pmcp_tasks_mcp::{DurableTaskServer, HttpOptions, SessionSeal, TaskTools, MCP_PATH};
use pmcp_tasks_tests::rmcp_client::{connect_http, Client};
#[cfg(feature = "redis")]
use pmcp_tasks_tests::round_robin::RoundRobin;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetTaskParams,
};
use rmcp::task_manager::TaskOptions;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::protocol::{durable, RmcpTasks};
#[cfg(feature = "redis")]
use crate::protocol::{finished_task, server_on};
use crate::report::ProtocolHttpRow;
use crate::{Backends, Sizes};

/// The operations measured, by report name.
const OPERATIONS: [Operation; 2] = [Operation::GetTask, Operation::CreateByCall];

/// One measured operation.
#[derive(Clone, Copy)]
enum Operation {
    /// `tasks/get` of one finished task.
    GetTask,
    /// A `tools/call` the server answers with a new task (the tool then
    /// finishes at once: `slow_compute` with `seconds: 0`).
    CreateByCall,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::GetTask => "tasks/get",
            Operation::CreateByCall => "tools/call (creates a task)",
        }
    }
}

/// A server on a loopback port; stops when dropped.
struct Running {
    url: String,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves `handler` on rmcp's `StreamableHttpService`, one hyper HTTP/1.1
/// connection task per client connection (as `serve_http` does).
async fn serve_rmcp(handler: RmcpTasks) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}{MCP_PATH}",
        listener.local_addr().expect("address")
    );
    let stop = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = stop.child_token();
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    ));
    let until = stop.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = until.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let service = service.clone();
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(move |request| {
                    let service = service.clone();
                    async move { Ok::<_, std::convert::Infallible>(service.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), answer)
                    .await;
            });
        }
    });
    Running { url, stop }
}

/// Serves `server` with `serve_http` on a loopback port.
async fn serve_ours<T: TaskTools>(server: DurableTaskServer<T>, seal: &SessionSeal) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}{MCP_PATH}",
        listener.local_addr().expect("address")
    );
    let stop = CancellationToken::new();
    let options = HttpOptions::default().with_session_seal(seal.clone());
    tokio::spawn(pmcp_tasks_mcp::serve_http(
        listener,
        server,
        options,
        stop.child_token(),
    ));
    Running { url, stop }
}

/// Turns per subject and operation: the subjects take turns, so the
/// drift of this VM's speed falls on all of them alike.
const ROUNDS: u32 = 5;

/// What one subject and operation measured over its turns.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    busy: Duration,
}

impl Tally {
    /// The row of `subject` for `operation`.
    fn row(mut self, subject: &Subject, operation: Operation, callers: usize) -> ProtocolHttpRow {
        self.latencies.sort_unstable();
        let latencies = &self.latencies;
        let at = |share: f64| {
            let index = ((latencies.len() as f64 * share).ceil() as usize).saturating_sub(1);
            latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1e6
        };
        ProtocolHttpRow {
            subject: subject.name.to_owned(),
            operation: operation.name(),
            transport: "streamable-http",
            replicas: subject.replicas,
            callers,
            calls_per_second: latencies.len() as f64 / self.busy.as_secs_f64(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            calls: latencies.len() as u64,
        }
    }
}

/// Runs `operation` from `callers` concurrent loops for `run_for`,
/// adding each call's latency to `tally`.
async fn run(
    tally: &mut Tally,
    subject: &Subject,
    operation: Operation,
    callers: usize,
    run_for: Duration,
) {
    let start = Instant::now();
    let deadline = start + run_for;
    let mut loops = JoinSet::new();
    for _ in 0..callers {
        let (peer, id) = (subject.client.peer().clone(), subject.task_id.clone());
        loops.spawn(async move {
            let mut latencies = Vec::new();
            // At least one call each, so even a smoke run checks the path.
            loop {
                let began = Instant::now();
                match operation {
                    Operation::GetTask => {
                        let got = peer.get_task(GetTaskParams::new(id.clone())).await;
                        assert!(got.is_ok(), "tasks/get failed: {got:?}");
                    }
                    Operation::CreateByCall => {
                        let mut arguments = serde_json::Map::new();
                        arguments.insert("seconds".into(), 0.into());
                        let call =
                            CallToolRequestParams::new("slow_compute").with_arguments(arguments);
                        let made = peer.call_tool_once(call).await;
                        assert!(
                            matches!(made, Ok(CallToolResponse::Task(_))),
                            "tools/call made no task: {made:?}"
                        );
                    }
                }
                latencies.push(began.elapsed());
                if Instant::now() >= deadline {
                    break;
                }
            }
            latencies
        });
    }
    while let Some(done) = loops.join_next().await {
        tally.latencies.extend(done.expect("a caller failed"));
    }
    tally.busy += start.elapsed();
}

/// One subject: its client session, its finished task, what it is
/// measured on, and what serves it.
struct Subject {
    name: &'static str,
    replicas: usize,
    operations: &'static [Operation],
    client: Client,
    task_id: String,
    /// The servers and proxy, stopped when dropped.
    _serving: Vec<Box<dyn Send>>,
}

/// One row per subject and operation, the same callers for each, the
/// subjects timed in turns.
pub(crate) async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ProtocolHttpRow> {
    let callers = sizes.redis_callers;
    let mut subjects = Vec::new();

    let rmcp_tasks = RmcpTasks::default();
    let finished = rmcp_tasks.tasks.spawn(TaskOptions::new(), |_| {
        Box::pin(async { Ok(CallToolResult::success(vec![ContentBlock::text("done")])) })
    });
    let rmcp_server = serve_rmcp(rmcp_tasks).await;
    subjects.push(Subject {
        name: "rmcp TaskManager (one process's memory)",
        replicas: 1,
        operations: &OPERATIONS,
        client: connect_http(&rmcp_server.url, callers).await,
        task_id: finished.task_id,
        _serving: vec![Box::new(rmcp_server)],
    });

    let seal = SessionSeal::new(b"the benchmark's shared session secret");
    let (server, task_id) = durable(&backends.memory).await;
    let one = serve_ours(server, &seal).await;
    subjects.push(Subject {
        name: "pmcp-tasks serve, memory backend",
        replicas: 1,
        operations: &OPERATIONS,
        client: connect_http(&one.url, callers).await,
        task_id,
        _serving: vec![Box::new(one)],
    });

    #[cfg(feature = "redis")]
    {
        // Each replica its own host and connection, one keyspace.
        let config = backends.redis.config("protocol-http");
        let connect = || async {
            let backend = RedisBackend::connect(config.clone())
                .await
                .expect("connecting to the benchmark's redis");
            server_on(Arc::new(backend)).await
        };
        let (first, second) = (connect().await, connect().await);
        let task_id = finished_task(first.service().host()).await;
        let a = serve_ours(first, &seal).await;
        let b = serve_ours(second, &seal).await;
        // One replica on Redis, no proxy: what the proxy's hop costs.
        subjects.push(Subject {
            name: "pmcp-tasks serve, one replica on Redis",
            replicas: 1,
            operations: &OPERATIONS,
            client: connect_http(&a.url, callers).await,
            task_id: task_id.clone(),
            _serving: Vec::new(),
        });
        let proxy = RoundRobin::pooled(vec![authority(&a.url), authority(&b.url)]).await;
        subjects.push(Subject {
            name: "pmcp-tasks serve, two replicas on one Redis, round-robin",
            replicas: 2,
            operations: &OPERATIONS,
            client: connect_http(&proxy.url, callers).await,
            task_id,
            _serving: vec![Box::new(a), Box::new(b), Box::new(proxy)],
        });
        gateway_subjects(&mut subjects, &config, &seal, callers).await;
    }

    let mut tallies: Vec<Vec<Tally>> = subjects
        .iter()
        .map(|s| s.operations.iter().map(|_| Tally::default()).collect())
        .collect();
    let turn = sizes.run_for / ROUNDS;
    for _ in 0..ROUNDS {
        for (subject, tally) in subjects.iter().zip(&mut tallies) {
            for (&operation, tally) in subject.operations.iter().zip(tally.iter_mut()) {
                run(tally, subject, operation, callers, turn).await;
            }
        }
    }
    let mut rows = Vec::new();
    for (subject, tally) in subjects.iter().zip(tallies) {
        for (&operation, tally) in subject.operations.iter().zip(tally) {
            rows.push(tally.row(subject, operation, callers));
        }
    }
    for subject in subjects {
        let _ = subject.client.cancel().await;
    }
    rows
}

/// The gateway's subjects: one replica on Redis and two behind the proxy,
/// each a `Gateway` in front of its own Python SDK fixture server (stdio),
/// `tasks/get` only. Skipped, saying so, without the Python SDK.
#[cfg(feature = "redis")]
async fn gateway_subjects(
    subjects: &mut Vec<Subject>,
    config: &pmcp_tasks_host::backend::redis::RedisConfig,
    seal: &SessionSeal,
    callers: usize,
) {
    use pmcp_tasks_mcp::{Gateway, GatewayOptions, UpstreamServer};
    use pmcp_tasks_tests::conformance::{client_script, installed_mcp_python};

    let Some(python) = installed_mcp_python() else {
        eprintln!(
            "the gateway rows need the MCP Python SDK (tests/setup.sh: ensure_mcp_clients): skipped"
        );
        return;
    };
    let upstream = UpstreamServer::command(python, [client_script("upstream_fixtures.py")])
        .with_name("fixtures");
    let replica = || async {
        let backend = RedisBackend::connect(config.clone())
            .await
            .expect("connecting to the benchmark's redis");
        let gateway = Gateway::connect(upstream.clone(), GatewayOptions::default())
            .await
            .expect("the gateway's upstream");
        crate::protocol::server_with(Arc::new(backend), Arc::new(gateway)).await
    };
    let (first, second) = (replica().await, replica().await);
    let task_id = finished_task(first.service().host()).await;
    let a = serve_ours(first, seal).await;
    let b = serve_ours(second, seal).await;
    subjects.push(Subject {
        name: "pmcp-tasks gateway (Python SDK upstream), one replica on Redis",
        replicas: 1,
        operations: &[Operation::GetTask],
        client: connect_http(&a.url, callers).await,
        task_id: task_id.clone(),
        _serving: Vec::new(),
    });
    let proxy = RoundRobin::pooled(vec![authority(&a.url), authority(&b.url)]).await;
    subjects.push(Subject {
        name: "pmcp-tasks gateway (Python SDK upstream), two replicas on one Redis, round-robin",
        replicas: 2,
        operations: &[Operation::GetTask],
        client: connect_http(&proxy.url, callers).await,
        task_id,
        _serving: vec![Box::new(a), Box::new(b), Box::new(proxy)],
    });
}

/// `host:port` of an `http://host:port/mcp` URL.
#[cfg(feature = "redis")]
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches(MCP_PATH)
        .to_owned()
}
