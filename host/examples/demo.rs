//! A tour of the task store: two owners, the task lifecycle, pagination,
//! owner isolation and expiry (on a host-controlled clock, so nothing
//! sleeps). Runs on the in-memory backend, or on any backend URL given as
//! the first argument (`redis://127.0.0.1:6379`, `dynamodb://tasks`, ...).
//!
//! ```sh
//! cargo run -p pmcp-tasks-host --example demo
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{StoreConfig, TaskHost, TaskStatus};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "memory".into());
    let clock = ManualClock::starting_now();
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(10);
    let host = TaskHost::builder()
        .config(config)
        .backend(pmcp_tasks_host::backend::connect(&url).await?)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .context("starting the task host")?;
    println!("pmcp-tasks demo: {url} backend, component sandboxed in wasmtime\n");

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
        // Ids start with their creation time; their random tails tell them apart.
        let ids: Vec<&str> = page
            .tasks
            .iter()
            .map(|t| &t.task_id[t.task_id.len() - 8..])
            .collect();
        println!(
            "  page {page_no}: {} task(s), ids ...{ids:?}",
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
