//! The lifecycle of a task run by a worker, as an MCP server runs a tool
//! call: create (leased to the worker), report progress, ask the client
//! for input and take the answers, observe a cancellation request, finish
//! with one outcome; and a worker that dies, whose task a reaper on another
//! replica fails once its lease lapses. Two hosts over one backend stand
//! for two replicas; the clock is the host's, so nothing sleeps.
//!
//! ```sh
//! cargo run -p pmcp-tasks-host --example worker              # in memory
//! cargo run -p pmcp-tasks-host --example worker -- redis://127.0.0.1:6379
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{
    InputRequest, InputResponse, LeaseGrant, Outcome, StatusView, StoreConfig, TaskHost,
    TaskRequest, TaskStatus,
};
use serde_json::json;

const OWNER: &str = "https://idp.example/users/alice";

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "memory".into());
    let backend = pmcp_tasks_host::backend::connect(&url).await?;
    let clock = ManualClock::starting_now();
    let mut config = StoreConfig::default();
    config.cursor_secret = b"shared by every replica".to_vec();
    let replica = || {
        TaskHost::builder()
            .backend(backend.clone())
            .config(config.clone())
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let (server_a, server_b) = (replica().await?, replica().await?);
    println!("two replicas over the {url} backend\n");

    // 1. Replica A receives tools/call with a task: it creates the task
    //    (durable when this returns) and leases it to its worker.
    let lease = LeaseGrant::new("replica-a/worker-1", Duration::from_secs(30));
    let call = TaskRequest::tool_call(
        "confirm_delete",
        json!({"path": "/tmp/old"})
            .as_object()
            .context("object")?
            .clone(),
    );
    let created = server_a
        .create_task(OWNER, &call, None, Some(&lease))
        .await?;
    let id = created.task.task_id.clone();
    println!("created {id}, leased to {}", lease.holder);

    // 2. The worker renews its lease and reports progress: the message
    //    changes, the status stays `working`.
    let seen = server_a.renew_lease(OWNER, &id, &lease).await?;
    ensure!(!seen.cancel_requested, "nobody asked to cancel yet");
    server_a
        .update_status(
            OWNER,
            &id,
            TaskStatus::Working,
            Some("step 1 of 2: scanning"),
        )
        .await?;

    // 3. It needs the user's confirmation: an input request, keyed.
    let ask = InputRequest::new(
        "confirm-1",
        "elicitation/create",
        json!({"message": "Delete /tmp/old?", "requestedSchema": {"type": "object"}})
            .as_object()
            .context("object")?
            .clone(),
    );
    server_a.request_input(OWNER, &id, &[ask]).await?;

    // 4. The client polls replica B (tasks/get), sees the request, answers
    //    it (tasks/update): the task is `working` again.
    let polled = server_b.inspect(OWNER, &id, StatusView::Extension).await?;
    println!(
        "client sees {} asking {:?}",
        polled.record.task.status,
        polled
            .input_requests
            .iter()
            .map(|r| &r.key)
            .collect::<Vec<_>>()
    );
    let answer = InputResponse::new(
        "confirm-1",
        json!({"action": "accept", "content": {"confirm": true}}),
    );
    let answered = server_b.answer_input(OWNER, &id, &[answer]).await?;
    println!("client answers; task is {}", answered.task.status);

    // 5. The worker takes its answers and finishes with the tool's result.
    let answers = server_a.take_answers(OWNER, &id).await?;
    ensure!(answers.len() == 1, "one answer waited");
    let result =
        json!({"content": [{"type": "text", "text": "deleted /tmp/old"}], "isError": false});
    let done = server_a
        .finish(OWNER, &id, &Outcome::ToolResult(result))
        .await?;
    println!("worker finishes: {}\n", done.task.status);

    // Cooperative cancellation: the client asks on replica B; the worker
    // on A sees the mark at its next renewal and stops.
    let second = server_a
        .create_task(OWNER, &call, None, Some(&lease))
        .await?;
    let second = second.task.task_id;
    server_b.request_cancel(OWNER, &second).await?;
    let seen = server_a.renew_lease(OWNER, &second, &lease).await?;
    ensure!(seen.cancel_requested, "the mark is in the shared store");
    let stopped = server_a.cancel(OWNER, &second).await?;
    println!(
        "cancel requested on B, worker on A stops: {}",
        stopped.task.status
    );

    // A worker that dies: nobody renews its lease. Any replica's reaper
    // fails the task once the lease has lapsed.
    let orphan = server_a
        .create_task(OWNER, &call, None, Some(&lease))
        .await?;
    let orphan = orphan.task.task_id;
    clock.advance(Duration::from_secs(31));
    let reaped = server_b.reap_lost_workers(100).await?;
    let lost = server_b.inspect(OWNER, &orphan, StatusView::Core).await?;
    ensure!(
        lost.record.task.status == TaskStatus::Failed,
        "the reaper failed it"
    );
    if let Some(Outcome::RpcError(error)) = &lost.outcome {
        println!(
            "reaper on B failed {} task: {}",
            reaped.failed, error["message"]
        );
    }
    Ok(())
}
