//! Resident memory with many calls in flight at once: each call is parked
//! inside the backend (so its instance is alive) until all have arrived,
//! then the process's resident set is read.

use std::sync::Arc;

use anyhow::Context;
use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::bench::{HostSubject, Subject, OWNER};
use pmcp_tasks_tests::gated::GatedBackend;
use tokio::task::JoinSet;

use crate::report::MemoryRow;
use crate::Sizes;

/// One figure per instance strategy.
pub async fn measure(sizes: Sizes) -> anyhow::Result<Vec<MemoryRow>> {
    let mut rows = Vec::new();
    for (name, strategy) in [
        ("fresh instance per call", InstanceStrategy::FreshPerCall),
        ("reused instances", InstanceStrategy::default()),
    ] {
        rows.push(parked_calls(name, strategy, sizes.in_flight).await?);
    }
    Ok(rows)
}

async fn parked_calls(
    strategy_name: &'static str,
    strategy: InstanceStrategy,
    in_flight: usize,
) -> anyhow::Result<MemoryRow> {
    let backend = GatedBackend::new();
    let subject = Arc::new(HostSubject::new(backend.clone(), strategy).await);
    let id = Arc::new(subject.create(OWNER).await);
    let rss_before_kib = status_kib("VmRSS")?;
    let mut calls = JoinSet::new();
    for _ in 0..in_flight {
        let (subject, id) = (subject.clone(), id.clone());
        calls.spawn(async move { subject.get(OWNER, &id).await });
    }
    backend.wait_for_arrivals(in_flight).await;
    let rss_in_flight_kib = status_kib("VmRSS")?;
    let peak_rss_kib = status_kib("VmHWM")?;
    backend.open();
    while let Some(done) = calls.join_next().await {
        done.context("a parked call failed")?;
    }
    Ok(MemoryRow {
        strategy: strategy_name,
        in_flight,
        rss_before_kib,
        rss_in_flight_kib,
        peak_rss_kib,
    })
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (the memory figures need Linux)")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}
