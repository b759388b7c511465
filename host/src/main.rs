//! `pmcp-tasks`: command-line front end of the task host.
//!
//! `pmcp-tasks [demo] [--backend URL] [--component FILE]` runs a short
//! demonstration, on the in-memory backend by default: two owners, the task
//! lifecycle, pagination, owner isolation and expiry (with a host-controlled
//! clock, so nothing sleeps). `pmcp-tasks create-table --backend
//! dynamodb://TABLE` bootstraps a DynamoDB table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pmcp_tasks_host::backend::{InMemoryBackend, KvBackend};
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{ComponentSource, StoreConfig, TaskHost, TaskStatus};
use serde_json::json;

/// What to do.
#[derive(PartialEq, Eq)]
enum Command {
    Demo,
    CreateTable,
}

struct Options {
    command: Command,
    component: ComponentSource,
    backend: String,
    aws_endpoint: Option<String>,
    aws_region: Option<String>,
}

const USAGE: &str =
    "usage: pmcp-tasks [demo | create-table] [--backend BACKEND] [--component FILE.wasm]
                  [--aws-endpoint URL] [--aws-region REGION]

  demo           run the demonstration (the default)
  create-table   create the DynamoDB table of --backend dynamodb://TABLE (idempotent)

BACKEND is one of:
  memory                                  in-process (the default)
  redis://HOST:PORT                       one Redis server (feature `redis`)
  redis+cluster://HOST:PORT,HOST:PORT     Redis Cluster seed nodes (feature `redis`)
  dynamodb://TABLE                        a DynamoDB table (feature `dynamodb`); region,
                                          credentials and endpoint from the AWS environment
                                          (AWS_REGION, AWS_ENDPOINT_URL, ...) or the flags";

fn parse_args() -> Result<Options> {
    let mut options = Options {
        command: Command::Demo,
        component: ComponentSource::Embedded,
        backend: "memory".into(),
        aws_endpoint: None,
        aws_region: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "demo" => options.command = Command::Demo,
            "create-table" => options.command = Command::CreateTable,
            "--aws-endpoint" => {
                options.aws_endpoint = Some(args.next().context("--aws-endpoint needs a URL")?)
            }
            "--aws-region" => {
                options.aws_region = Some(args.next().context("--aws-region needs a region")?)
            }
            "--component" => {
                let path = args.next().context("--component needs a file")?;
                options.component = ComponentSource::File(PathBuf::from(path));
            }
            "--backend" => options.backend = args.next().context("--backend needs a value")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = parse_args()?;
    match options.command {
        Command::Demo => demo(options).await,
        Command::CreateTable => create_table(&options).await,
    }
}

#[cfg(feature = "dynamodb")]
async fn dynamodb(
    options: &Options,
) -> Option<pmcp_tasks_host::backend::dynamodb::DynamoDbBackend> {
    let table = options.backend.strip_prefix("dynamodb://")?;
    let (endpoint, region) = (
        options.aws_endpoint.as_deref(),
        options.aws_region.as_deref(),
    );
    Some(
        pmcp_tasks_host::backend::dynamodb::DynamoDbBackend::from_env(table, endpoint, region)
            .await,
    )
}

async fn create_table(options: &Options) -> Result<()> {
    #[cfg(feature = "dynamodb")]
    if let Some(backend) = dynamodb(options).await {
        backend.create_table().await?;
        println!("table ready: {}", options.backend);
        return Ok(());
    }
    bail!(
        "create-table needs --backend dynamodb://TABLE (not {:?}) and the `dynamodb` feature",
        options.backend
    )
}

/// The backend named on the command line.
async fn backend(options: &Options) -> Result<Arc<dyn KvBackend>> {
    let name = options.backend.as_str();
    if name == "memory" {
        return Ok(Arc::new(InMemoryBackend::new()));
    }
    #[cfg(feature = "dynamodb")]
    if let Some(backend) = dynamodb(options).await {
        return Ok(Arc::new(backend));
    }
    #[cfg(feature = "redis")]
    if name.starts_with("redis") {
        use pmcp_tasks_host::backend::redis::{RedisBackend, RedisConfig};
        let backend = RedisBackend::connect(RedisConfig::from_url(name)?).await?;
        return Ok(Arc::new(backend));
    }
    bail!("unknown or not compiled-in backend {name:?}\n{USAGE}")
}

async fn demo(options: Options) -> Result<()> {
    let clock = ManualClock::starting_now();
    let config = StoreConfig {
        max_tasks_per_owner: Some(10),
        ..StoreConfig::default()
    };
    let host = TaskHost::builder()
        .config(config)
        .backend(backend(&options).await?)
        .clock(Arc::new(clock.clone()))
        .component(options.component)
        .build()
        .await
        .context("starting the task host")?;
    println!(
        "pmcp-tasks demo: {} backend, component sandboxed in wasmtime\n",
        options.backend
    );

    let (alice, bob) = ("https://idp.example/alice", "urn:user:bob");
    let task = host
        .create(alice, "tools/call", Some(Duration::from_secs(600)))
        .await?;
    let id = task.task.task_id.clone();
    println!(
        "alice creates a task:\n  {}",
        serde_json::to_string(&task.task)?
    );

    let steps = [
        (TaskStatus::InputRequired, Some("need a confirmation")),
        (TaskStatus::Working, Some("confirmed; working")),
    ];
    for (status, message) in steps {
        let t = host.update_status(alice, &id, status, message).await?;
        println!(
            "  -> {} ({})",
            t.task.status,
            t.task.status_message.unwrap_or_default()
        );
    }
    let vars = json!({"progress": 50, "step": "fetching"});
    let t = host
        .set_variables(alice, &id, vars.as_object().expect("object"))
        .await?;
    println!("  variables now {}", serde_json::to_string(&t.variables)?);
    let done = host
        .complete_with_result(
            alice,
            &id,
            TaskStatus::Completed,
            &json!({"content": [{"type": "text", "text": "42"}]}),
        )
        .await?;
    println!(
        "  -> {} with result {}",
        done.task.status,
        host.get_result(alice, &id).await?
    );
    match host
        .update_status(alice, &id, TaskStatus::Working, None)
        .await
    {
        Err(e) => println!(
            "  reopening a completed task is refused ({}): {e}",
            e.json_rpc_code()
        ),
        Ok(_) => bail!("a terminal task changed"),
    }

    for n in 0..4 {
        host.create(alice, &format!("tools/call#{n}"), None).await?;
    }
    println!("\nalice lists her 5 tasks, 2 per page:");
    let mut cursor: Option<String> = None;
    let mut page_no = 1;
    loop {
        let page = host.list(alice, cursor.as_deref(), Some(2)).await?;
        let ids: Vec<&str> = page.tasks.iter().map(|t| &t.task_id[..12]).collect();
        println!(
            "  page {page_no}: {} task(s), ids {ids:?}...",
            page.tasks.len()
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        page_no += 1;
    }

    let short = host
        .create(bob, "tools/call", Some(Duration::from_secs(2)))
        .await?;
    println!("\nbob creates a task with ttl 2 s: {}", short.task.task_id);
    match host.get(bob, &id).await {
        Err(e) => println!(
            "bob asks for alice's task: refused ({}): {e}",
            e.json_rpc_code()
        ),
        Ok(_) => bail!("owner isolation broken"),
    }
    println!(
        "bob's listing holds {} task(s)",
        host.list(bob, None, None).await?.tasks.len()
    );

    clock.advance(Duration::from_secs(3));
    println!("\nthe host clock moves 3 s forward");
    match host.get(bob, &short.task.task_id).await {
        Err(e) => println!("bob's task has expired: {e}"),
        Ok(_) => bail!("expired task still visible"),
    }
    println!(
        "bob's listing holds {} task(s)",
        host.list(bob, None, None).await?.tasks.len()
    );
    println!(
        "cleanup removed {} expired record(s)",
        host.cleanup_expired(1_000).await?
    );
    Ok(())
}
