//! `pmcp-tasks gateway`: durable tasks in front of an unchanged MCP
//! server. The upstream is a command run as child processes, or a
//! Streamable HTTP endpoint (one connection shared by plain calls, made
//! again if it is lost, and one per running task call); its tools are
//! served as `serve` serves the demonstration tools, over stdio
//! or Streamable HTTP, both revisions.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pmcp_tasks_host::TaskHost;
use pmcp_tasks_mcp::{Gateway, GatewayOptions, TaskSupport, UpstreamServer};
use url::Url;

use crate::serve::{self, ServeArgs};

/// The upstream and how its tools run, then every `serve` option.
#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    /// The upstream server's command and arguments, after `--` (it speaks
    /// MCP on its stdin and stdout).
    #[arg(
        last = true,
        value_name = "COMMAND",
        required_unless_present = "upstream_url",
        conflicts_with = "upstream_url"
    )]
    upstream: Vec<OsString>,
    /// The upstream server's Streamable HTTP endpoint, instead of a command.
    #[arg(long, value_name = "URL")]
    upstream_url: Option<Url>,
    /// What errors and logs call the upstream (default: its program's
    /// file name, or its URL's host and port; arguments and paths are
    /// never shown).
    #[arg(long, value_name = "NAME")]
    upstream_name: Option<String>,
    /// The task support of every upstream tool not named by
    /// --tool-task-support: forbidden, optional or required.
    #[arg(long, default_value = "optional", value_name = "SUPPORT")]
    task_support: TaskSupport,
    /// One tool's task support, as NAME=SUPPORT; repeat for more.
    #[arg(long = "tool-task-support", value_name = "NAME=SUPPORT", value_parser = tool_support)]
    tool_task_support: Vec<(String, TaskSupport)>,
    /// How long an upstream call may send nothing (no progress, request or
    /// answer) while no input is awaited before its task fails, in ms.
    #[arg(long, default_value_t = 300_000)]
    upstream_idle_timeout_ms: u64,
    /// The longest an upstream may take to start (answer the handshake and
    /// list its tools), in ms.
    #[arg(long, default_value_t = 30_000)]
    upstream_start_timeout_ms: u64,
    /// Task calls run at once, each on an upstream process of its own (so
    /// what the upstream asks mid-call is that task's); more wait.
    #[arg(long, default_value_t = 64)]
    max_task_calls: usize,
    /// Upstream processes (or HTTP sessions) kept idle, ready for the next
    /// task call.
    #[arg(long, default_value_t = 2)]
    idle_upstreams: usize,
    /// A tool that does nothing before its first questions: a 2026-07-28
    /// client is asked them before any task exists (the call is run until
    /// it asks, then stopped), and the call that brings the answers runs
    /// with them; repeat for more tools.
    #[arg(long = "ask-first", value_name = "NAME")]
    ask_first: Vec<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Reads `NAME=SUPPORT`.
fn tool_support(pair: &str) -> Result<(String, TaskSupport), String> {
    let (name, support) = pair
        .split_once('=')
        .ok_or_else(|| format!("`{pair}` is not NAME=SUPPORT"))?;
    let support = support.parse().map_err(|e| format!("{e}"))?;
    Ok((name.to_owned(), support))
}

/// Starts the upstream, then serves its tools until told to stop (as
/// `serve` does).
pub(crate) async fn run(host: TaskHost, args: GatewayArgs, secret: Option<&[u8]>) -> Result<()> {
    let mut upstream = match args.upstream_url {
        Some(url) => UpstreamServer::http(url),
        None => {
            let mut command = args.upstream.into_iter();
            let program = command.next().context("no upstream command")?;
            UpstreamServer::command(program, command)
        }
    };
    if let Some(name) = args.upstream_name {
        upstream = upstream.with_name(name);
    }
    let mut options = GatewayOptions::default()
        .with_default_task_support(args.task_support)
        .with_idle_timeout(Duration::from_millis(args.upstream_idle_timeout_ms))
        .with_start_timeout(Duration::from_millis(args.upstream_start_timeout_ms))
        .with_max_task_calls(args.max_task_calls)
        .with_idle_upstreams(args.idle_upstreams);
    for (name, support) in args.tool_task_support {
        options = options.with_task_support(name, support);
    }
    for name in &args.serve.retry_tools {
        options = options.with_retries(name.clone(), 1);
    }
    for name in args.ask_first {
        options = options.with_ask_first(name);
    }
    let name = upstream.name.clone();
    let gateway = Gateway::connect(upstream, options)
        .await
        .with_context(|| format!("connecting to the upstream `{name}`"))?;
    crate::announce(&format!("upstream `{name}` connected"));
    serve::run(host, args.serve, secret, Arc::new(gateway)).await
}
