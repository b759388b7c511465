//! `pmcp-tasks`: serve MCP with durable tasks, and operate a task store.
//!
//! Every subcommand takes the backend as a URL (`--backend`, or the
//! `PMCP_TASKS_BACKEND` environment variable; see
//! `pmcp_tasks_host::backend::BackendUrl`) and may run a component from a
//! file instead of the embedded one (`--component`). `RUST_LOG=debug`
//! shows one span per store call with its guest and backend time.

mod gateway;
mod metrics;
mod serve;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use pmcp_tasks_host::backend::BackendUrl;
use pmcp_tasks_host::{ComponentSource, StoreConfig, TaskHost};
use pmcp_tasks_mcp::{OtlpTraces, OtlpTracing};

/// Serve MCP with durable tasks, or operate a pmcp-tasks store: inspect an
/// owner's tasks, clean up expired ones, bootstrap a DynamoDB table.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Storage: memory, redis://HOST:PORT, rediss://HOST:PORT,
    /// redis+cluster://HOST:PORT,HOST:PORT, dynamodb://TABLE[?endpoint=URL&region=NAME]
    #[arg(
        long,
        global = true,
        env = "PMCP_TASKS_BACKEND",
        default_value = "memory"
    )]
    backend: String,
    /// Run this component (.wasm) instead of the embedded one.
    #[arg(long, global = true, value_name = "FILE")]
    component: Option<PathBuf>,
    /// The deployment's secret: keys list cursors, the seals of 2025-11-25
    /// session ids (so any replica serves any session) and, with
    /// --insecure-token-owners, token digests; every replica of one
    /// deployment must use the same (default: a random one per process).
    #[arg(
        long,
        global = true,
        env = "PMCP_TASKS_CURSOR_SECRET",
        hide_env_values = true
    )]
    cursor_secret: Option<String>,
    /// The largest result, tool arguments, input request or answer a task
    /// keeps, in bytes; a tool's result over it fails its task at once,
    /// naming both sizes.
    #[arg(long, global = true, default_value_t = StoreConfig::default().max_result_bytes)]
    max_result_bytes: u32,
    /// The largest task stored, everything in it together, in bytes.
    #[arg(long, global = true, default_value_t = StoreConfig::default().max_task_bytes)]
    max_task_bytes: u32,
    /// Log lines as text, or as one JSON object each (for log pipelines).
    /// Which lines: RUST_LOG (default: warnings and errors).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Export traces (a span per MCP request, its store calls, each task's
    /// worker) over OTLP/HTTP to this receiver's base URL, for example
    /// http://127.0.0.1:4318 (off by default).
    #[arg(
        long,
        global = true,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    otlp_endpoint: Option<String>,
    /// The service.name the exported spans carry.
    #[arg(
        long,
        global = true,
        env = "OTEL_SERVICE_NAME",
        default_value = "pmcp-tasks"
    )]
    otlp_service_name: String,
    /// The share of traces exported (0 to 1) for requests without a
    /// trace context; a request with one follows its client's decision.
    #[arg(long, global = true, default_value_t = 1.0, value_name = "RATIO")]
    otlp_sample_ratio: f64,
    #[command(subcommand)]
    command: Command,
}

/// Whether stderr carries JSON lines only (`--log-format json`).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the operator what the process is doing (always shown, whatever
/// RUST_LOG says): a plain line, or a JSON object in the log format.
pub(crate) fn announce(message: &str) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        let line = serde_json::json!({
            "timestamp": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
            "level": "INFO",
            "target": "pmcp_tasks",
            "fields": {"message": message},
        });
        eprintln!("{line}");
    } else {
        eprintln!("pmcp-tasks: {message}");
    }
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: time, level, target, fields, spans.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MCP server whose tool calls run as durable tasks in the
    /// store (the demonstration tools), over stdio or Streamable HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Serve the tools of an unchanged MCP server (started as COMMAND,
    /// spoken to over stdio) with durable tasks: its task calls run in the
    /// store, so any replica answers for them. Takes every serve option.
    Gateway(Box<gateway::GatewayArgs>),
    /// Create the DynamoDB table of --backend dynamodb://TABLE and enable
    /// its TTL (idempotent; waits until the table is active).
    CreateTable,
    /// Physically remove expired tasks (reads already hide them).
    Cleanup {
        /// Most records to remove in this run.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
    },
    /// Print one task of an owner as JSON (MCP wire shape), with how it
    /// runs (`runs`: attempt, queued, retry attempts, checkpoint size).
    Get {
        /// The owner id (as the server's authentication reports it).
        #[arg(long)]
        owner: String,
        /// The task id.
        task_id: String,
    },
    /// Print a page of an owner's tasks as JSON (MCP wire shape).
    List {
        /// The owner id (as the server's authentication reports it).
        #[arg(long)]
        owner: String,
        /// Cursor from the previous page's `nextCursor`.
        #[arg(long)]
        cursor: Option<String>,
        /// Page size (clamped to the store's maximum).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let traces = match cli.otlp_endpoint.clone() {
        Some(endpoint) => {
            let export = OtlpTracing::new(endpoint)
                .with_service_name(cli.otlp_service_name.clone())
                .with_sample_ratio(cli.otlp_sample_ratio);
            Some(tokio::task::spawn_blocking(move || export.start()).await??)
        }
        None => None,
    };
    init_logs(cli.log_format, traces.as_ref());
    let result = run(cli).await;
    if let Some(traces) = traces {
        if let Err(e) = tokio::task::spawn_blocking(move || traces.shutdown()).await? {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "exporting the last spans failed");
        }
    }
    result
}

/// Log lines to stderr (RUST_LOG picks them), and the OTLP export's
/// layer (which picks its spans itself) when traces are exported.
fn init_logs(format: LogFormat, traces: Option<&OtlpTraces>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Without RUST_LOG, warnings and errors (the filter's own default is
    // errors only, which would hide every warning the help promises).
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .from_env_lossy();
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => {
            JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
            logs.json()
                .with_current_span(true)
                .with_filter(filter)
                .boxed()
        }
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(traces.map(OtlpTraces::layer))
        .init();
}

async fn run(cli: Cli) -> Result<()> {
    let url = BackendUrl::parse(&cli.backend)?;
    if let Command::CreateTable = cli.command {
        return create_table(url).await;
    }
    let component = cli
        .component
        .map_or(ComponentSource::Embedded, ComponentSource::File);
    let mut config = StoreConfig::default();
    config.max_result_bytes = cli.max_result_bytes;
    config.max_task_bytes = cli.max_task_bytes;
    let secret = cli.cursor_secret.map(String::into_bytes);
    if let Some(secret) = &secret {
        config.cursor_secret = secret.clone();
    }
    let host = TaskHost::builder()
        .backend(url.connect().await?)
        .component(component)
        .config(config)
        .build()
        .await
        .context("starting the task host")?;
    match cli.command {
        Command::CreateTable => unreachable!("handled above"),
        Command::Serve(args) => {
            let tools = std::sync::Arc::new(pmcp_tasks_mcp::DemoTools);
            serve::run(host, *args, secret.as_deref(), tools).await?;
        }
        Command::Gateway(args) => gateway::run(host, *args, secret.as_deref()).await?,
        Command::Cleanup { limit } => {
            let removed = host.cleanup_expired(limit).await?;
            println!("removed {removed} expired task record(s)");
        }
        Command::Get { owner, task_id } => {
            let record = host.get(&owner, &task_id).await?;
            // The wire task, and how it runs: its attempt, whether it
            // waits for a worker, its retry policy and checkpoint's size.
            let mut shown = serde_json::to_value(&record.task)?;
            shown["runs"] = serde_json::json!({
                "attempt": record.attempt,
                "queued": record.queued,
                "maxAttempts": record.retry.map(|r| r.max_attempts),
                "checkpointBytes": record.checkpoint_bytes,
                "leaseHolder": record.lease.as_ref().map(|l| l.holder.as_str()),
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        Command::List {
            owner,
            cursor,
            limit,
        } => {
            let page = host.list(&owner, cursor.as_deref(), limit).await?;
            println!("{}", serde_json::to_string_pretty(&page)?);
        }
    }
    Ok(())
}

#[cfg(feature = "dynamodb")]
async fn create_table(url: BackendUrl) -> Result<()> {
    let BackendUrl::DynamoDb {
        table,
        endpoint,
        region,
        ..
    } = url
    else {
        bail!("create-table needs --backend dynamodb://TABLE");
    };
    let backend = pmcp_tasks_host::backend::dynamodb::DynamoDbBackend::from_env(
        table.clone(),
        endpoint.as_deref(),
        region.as_deref(),
    )
    .await;
    backend.create_table().await?;
    println!("table ready: {table}");
    Ok(())
}

#[cfg(not(feature = "dynamodb"))]
async fn create_table(_url: BackendUrl) -> Result<()> {
    bail!("create-table needs --backend dynamodb://TABLE and pmcp-tasks built with the `dynamodb` feature")
}
