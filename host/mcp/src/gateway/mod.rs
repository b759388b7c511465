//! [`Gateway`]: durable tasks for an MCP server that has none of its own.
//!
//! A gateway is the [`TaskTools`] of a
//! [`DurableTaskServer`](crate::DurableTaskServer): it offers the tools of
//! an upstream MCP server (an unchanged program it starts and speaks to
//! over stdio, or a Streamable HTTP endpoint, as its client) and runs each call the server makes a task
//! as one upstream `tools/call` on a leased worker. The task is then as
//! durable as any other: any replica answers `tasks/get`, `tasks/cancel`
//! and `tasks/update` for it, and a lost replica's task is failed by
//! another's reaper (or run again, if its tool is retryable).
//!
//! What it guarantees:
//! - **The upstream's tools, as they are now.** Listed when a connection
//!   starts, and again when the upstream says they changed
//!   (`notifications/tools/list_changed`).
//! - **One upstream call per task, unless the tool is retryable.** A call
//!   that fails, times out or loses its replica is never made again; the
//!   task ends `failed`. Only a request that never left the gateway is
//!   sent again. A call of a tool the operator declared idempotent
//!   ([`GatewayOptions::retries`]) is made again when the upstream was
//!   lost mid-call, and, with a retry policy on the server
//!   (`DurableTaskServer::with_retry_policy`, `--retry-tool`), when its
//!   gateway replica is lost or hands the task off at shutdown: another
//!   replica makes the call again, from the start (an upstream cannot
//!   checkpoint).
//! - **The upstream's messages become the task's state.** Its progress
//!   notifications are the status message; its `elicitation/create`,
//!   `sampling/createMessage` and `roots/list` requests are the task's
//!   input requests
//!   (`input_required`, answered by `tasks/update` or the 2025-11-25
//!   flow) and the answers go back upstream; its result (also one with
//!   `isError`) or JSON-RPC error is the outcome.
//! - **Cancellation reaches the upstream.** Cancelling the task sends the
//!   upstream `notifications/cancelled` for that call; the task ends
//!   `cancelled`.
//! - **A broken upstream fails the task, named.** An upstream lost
//!   mid-call (it exits, or its connection closes), or one that sends nothing for [`GatewayOptions::idle_timeout`]
//!   while no input is awaited, fails the task with an error naming it;
//!   the next call starts it again.
//! - **Questions before the task, for tools that ask first.** A tool the
//!   operator declares ask-first ([`GatewayOptions::ask_first`]) is run,
//!   for a 2026-07-28 client, until its first questions, which are then
//!   asked as a multi round-trip round before any task exists; the call
//!   that brings the answers runs with them answering those questions.
//! - **No owner sees another's request.** Stdio carries nothing that ties
//!   an upstream request to the call it serves, so each task call runs on
//!   an upstream connection of its own (a process, or an HTTP session;
//!   an idle one from a small pool, or a new one): whatever the upstream
//!   asks there mid-call is that task's. Plain calls (not tasks) share one
//!   connection and cannot ask: the upstream gets an error for any
//!   request made there.
//!
//! The upstream sees the calls of every owner through the gateway's
//! connections, and nothing of who the owner is.

mod asker;
mod calls;
mod lines;
mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::Tool;
use url::Url;

use crate::server::{Preparation, PrepareFuture, TaskTools, ToolCall, ToolFuture, ToolSpec};
use crate::support::TaskSupport;
use crate::worker::Worker;

use upstream::{Limits, Upstream};

/// Where the upstream server is, and how the gateway speaks to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UpstreamTransport {
    /// A program the gateway starts, speaking MCP on its stdin and stdout
    /// (one process per task call running, one shared by plain calls).
    Stdio {
        /// The program.
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
    /// A Streamable HTTP endpoint (one session per task call running, one
    /// shared by plain calls).
    Http {
        /// The endpoint.
        url: Url,
    },
}

/// The upstream server: where it is, and the name errors call it by.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamServer {
    /// Where it is.
    pub transport: UpstreamTransport,
    /// What errors and logs call the upstream. Arguments and URLs may hold
    /// secrets, so by default it is the program's file name, or the URL's
    /// host and port.
    pub name: String,
}

impl UpstreamServer {
    /// The program `program`, run with `args`, over stdio.
    pub fn command<I, A>(program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let program = program.into();
        let name = Path::new(&program)
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned();
        UpstreamServer {
            transport: UpstreamTransport::Stdio {
                program,
                args: args.into_iter().map(Into::into).collect(),
            },
            name,
        }
    }

    /// The Streamable HTTP endpoint `url`.
    pub fn http(url: Url) -> Self {
        let name = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => url.scheme().to_owned(),
        };
        UpstreamServer {
            transport: UpstreamTransport::Http { url },
            name,
        }
    }

    /// Named `name` in errors and logs.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// What the operator decides about the upstream's tools and calls.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayOptions {
    /// The task support of every tool not named in `task_support`.
    pub default_task_support: TaskSupport,
    /// Task support by tool name.
    pub task_support: BTreeMap<String, TaskSupport>,
    /// How long an upstream call may send nothing (no progress, no
    /// request, no answer) while no input is awaited before it is given
    /// up as hung and its task failed.
    pub idle_timeout: Duration,
    /// The longest an upstream connection may take to start (a process
    /// to answer the handshake and list its tools, or a session to open).
    pub start_timeout: Duration,
    /// How long input requests the upstream sends together are gathered
    /// before the task asks for them, so that requests made in parallel
    /// are pending at once.
    pub input_settle: Duration,
    /// Task calls run at once, each on an upstream process of its own;
    /// more wait for one to end.
    pub max_task_calls: usize,
    /// Upstream connections kept idle, ready for the next task call (made
    /// in the background, at start and as they are taken).
    pub idle_upstreams: usize,
    /// Tools the operator declared idempotent, by name: how many more
    /// times a call of one is made when the upstream was lost or went
    /// silent mid-call. Any other tool is called at most once per task.
    pub retries: BTreeMap<String, u32>,
    /// Tools the operator declared ask-first (they do nothing before their
    /// first questions): for a 2026-07-28 client, a call of one is run
    /// until its first questions and stopped, and they are asked before
    /// any task exists (a multi round-trip round); the call that brings
    /// the answers runs, as a task if it becomes one, with them answering
    /// those questions. A tool that acts before asking would act twice.
    pub ask_first: BTreeSet<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            default_task_support: TaskSupport::Optional,
            task_support: BTreeMap::new(),
            idle_timeout: Duration::from_secs(300),
            start_timeout: Duration::from_secs(30),
            input_settle: Duration::from_millis(25),
            max_task_calls: 64,
            idle_upstreams: 2,
            retries: BTreeMap::new(),
            ask_first: BTreeSet::new(),
        }
    }
}

impl GatewayOptions {
    /// Every tool not named otherwise has `support`.
    pub fn with_default_task_support(mut self, support: TaskSupport) -> Self {
        self.default_task_support = support;
        self
    }

    /// The tool `name` has `support`.
    pub fn with_task_support(mut self, name: impl Into<String>, support: TaskSupport) -> Self {
        self.task_support.insert(name.into(), support);
        self
    }

    /// Sets [`GatewayOptions::idle_timeout`].
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`GatewayOptions::start_timeout`].
    pub fn with_start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets [`GatewayOptions::input_settle`].
    pub fn with_input_settle(mut self, settle: Duration) -> Self {
        self.input_settle = settle;
        self
    }

    /// Sets [`GatewayOptions::max_task_calls`] (at least 1).
    pub fn with_max_task_calls(mut self, calls: usize) -> Self {
        self.max_task_calls = calls.max(1);
        self
    }

    /// Sets [`GatewayOptions::idle_upstreams`].
    pub fn with_idle_upstreams(mut self, processes: usize) -> Self {
        self.idle_upstreams = processes;
        self
    }

    /// Declares the tool `name` idempotent: a call of it lost mid-call is
    /// made again, up to `retries` more times.
    pub fn with_retries(mut self, name: impl Into<String>, retries: u32) -> Self {
        self.retries.insert(name.into(), retries);
        self
    }

    /// Declares the tool `name` ask-first (see [`GatewayOptions::ask_first`]).
    pub fn with_ask_first(mut self, name: impl Into<String>) -> Self {
        self.ask_first.insert(name.into());
        self
    }

    /// The task support of the tool `name`.
    fn support_of(&self, name: &str) -> TaskSupport {
        self.task_support
            .get(name)
            .copied()
            .unwrap_or(self.default_task_support)
    }
}

/// What an rmcp error said, with the upstream's URL taken out: its HTTP
/// client's errors name the URL they reached, whose path or query may
/// hold a secret, and these words reach logs and stored task errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UpstreamCause(String);

impl UpstreamCause {
    /// `error` and its sources, in words, without `server`'s URL.
    pub(crate) fn of(error: &(dyn std::error::Error + 'static), server: &UpstreamServer) -> Self {
        let mut words = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            words = format!("{words}: {cause}");
            source = cause.source();
        }
        if let UpstreamTransport::Http { url } = &server.transport {
            let mut bare = url.clone();
            bare.set_query(None);
            bare.set_fragment(None);
            for shown in [url.as_str(), bare.as_str()] {
                words = words.replace(shown, "the upstream's URL");
            }
        }
        UpstreamCause(words)
    }
}

/// Why the gateway could not reach its upstream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The upstream process could not be started (stdio).
    #[error("starting the upstream `{name}`")]
    Spawn {
        /// The upstream's name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The upstream did not complete the MCP handshake (it exited, was
    /// unreachable, or spoke something else).
    #[error("the upstream `{name}` did not complete the MCP handshake")]
    Handshake {
        /// The upstream's name.
        name: String,
        /// Why.
        #[source]
        source: UpstreamCause,
    },
    /// The upstream did not start within the start timeout.
    #[error("the upstream `{name}` did not start within {} ms", waited.as_millis())]
    Silent {
        /// The upstream's name.
        name: String,
        /// How long it was given.
        waited: Duration,
    },
    /// The upstream did not answer `tools/list`.
    #[error("the upstream `{name}` did not list its tools")]
    ListTools {
        /// The upstream's name.
        name: String,
        /// Why.
        #[source]
        source: UpstreamCause,
    },
}

/// The tools of an upstream MCP server, each call run through it (see the
/// module docs for what is guaranteed). Cheap to share: serve it with
/// `DurableTaskServer::new(service, Arc::new(gateway), identity)`.
pub struct Gateway {
    upstream: Arc<Upstream>,
    options: Arc<GatewayOptions>,
}

impl Gateway {
    /// Reaches the upstream, completes the handshake and reads its tools.
    pub async fn connect(
        upstream: UpstreamServer,
        options: GatewayOptions,
    ) -> Result<Self, GatewayError> {
        let limits = Limits {
            busy: options.max_task_calls,
            idle: options.idle_upstreams,
            idle_timeout: options.idle_timeout,
            start_timeout: options.start_timeout,
            input_settle: options.input_settle,
        };
        let upstream = Arc::new(Upstream::new(upstream, limits));
        upstream.connect().await?;
        upstream.refill();
        Ok(Gateway {
            upstream,
            options: Arc::new(options),
        })
    }
}

impl Gateway {
    /// An upstream tool, with the task support the operator gave it.
    fn spec(&self, tool: &Tool) -> ToolSpec {
        ToolSpec::new(tool.clone(), self.options.support_of(&tool.name))
    }
}

impl TaskTools for Gateway {
    fn tools(&self) -> Vec<ToolSpec> {
        self.upstream
            .tools()
            .iter()
            .map(|tool| self.spec(tool))
            .collect()
    }

    fn tool(&self, name: &str) -> Option<ToolSpec> {
        let tools = self.upstream.tools();
        tools
            .iter()
            .find(|tool| tool.name == name)
            .map(|tool| self.spec(tool))
    }

    /// Probes an ask-first tool's call that brings no answers yet.
    fn prepare(&self, call: &ToolCall) -> PrepareFuture {
        if !call.input_responses.is_empty() || !self.options.ask_first.contains(&call.name) {
            return Box::pin(std::future::ready(Preparation::Ready));
        }
        let (upstream, call) = (self.upstream.clone(), call.clone());
        Box::pin(async move { upstream.probe(call).await })
    }

    fn call(&self, call: ToolCall, worker: Option<Worker>) -> ToolFuture {
        let upstream = self.upstream.clone();
        let retries = self.options.retries.get(&call.name).copied().unwrap_or(0);
        Box::pin(async move { upstream.call(call, worker, retries).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_names_each_tool_s_task_support_or_takes_the_default() {
        let options = GatewayOptions::default()
            .with_default_task_support(TaskSupport::Required)
            .with_task_support("greet", TaskSupport::Forbidden);
        assert_eq!(options.support_of("greet"), TaskSupport::Forbidden);
        assert_eq!(options.support_of("anything"), TaskSupport::Required);
    }

    #[test]
    fn an_upstream_is_named_without_its_arguments_or_its_url_s_path() {
        let command = UpstreamServer::command("/usr/bin/python3", ["server.py", "--token=secret"]);
        assert_eq!(command.name, "python3");
        assert_eq!(command.with_name("billing").name, "billing");
        let url = Url::parse("https://tools.example/mcp?key=secret").expect("a URL");
        assert_eq!(UpstreamServer::http(url).name, "tools.example:443");
    }

    #[test]
    fn an_upstream_cause_never_shows_the_url() {
        let url = Url::parse("http://127.0.0.1:9000/mcp?key=hunter2").expect("a URL");
        let server = UpstreamServer::http(url);
        let inner = std::io::Error::other(
            "error sending request for url (http://127.0.0.1:9000/mcp?key=hunter2)",
        );
        let outer = GatewayError::Spawn {
            name: "x".into(),
            source: std::io::Error::other("POST http://127.0.0.1:9000/mcp failed"),
        };
        for error in [&inner as &(dyn std::error::Error + 'static), &outer] {
            let cause = UpstreamCause::of(error, &server).to_string();
            assert!(cause.contains("the upstream's URL"), "{cause}");
            assert!(
                !cause.contains("hunter2") && !cause.contains("/mcp"),
                "{cause}"
            );
        }
    }
}
