//! Resident memory with many calls in flight at once: each call is parked
//! inside the backend (so its instance is alive) until all have arrived,
//! then the process's resident set is read.

use std::sync::Arc;

use anyhow::Context;
use pmcp_tasks_bench::{HostSubject, Subject, OWNER};
use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::intercepted::GatedBackend;
use tokio::task::JoinSet;

use crate::report::MemoryRow;
use crate::Sizes;

/// The strategies measured, by the name a probe process is given.
const STRATEGIES: [(&str, &str); 2] = [
    ("fresh", "fresh instance per call"),
    ("reuse", "reused instances"),
];

/// One figure per instance strategy, each read in a process of its own
/// (`--memory-probe`), so no figure inherits another's resident pages.
pub(crate) fn measure(sizes: Sizes) -> anyhow::Result<Vec<MemoryRow>> {
    let exe = std::env::current_exe().context("locating the harness binary")?;
    let mut rows = Vec::new();
    for (key, _) in STRATEGIES {
        // Blocking is fine: nothing else runs while the probe does.
        let output = std::process::Command::new(&exe)
            .args(["--memory-probe", key, &sizes.in_flight.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the memory probe")?;
        anyhow::ensure!(output.status.success(), "the {key} memory probe failed");
        rows.push(serde_json::from_slice(&output.stdout).context("reading the probe's figure")?);
    }
    Ok(rows)
}

/// The probe process: parks `in_flight` calls with the strategy named
/// `key` and prints the figure as JSON.
pub(crate) async fn probe(key: &str, in_flight: usize) -> anyhow::Result<()> {
    let (strategy_name, strategy) = match key {
        "fresh" => (STRATEGIES[0].1, InstanceStrategy::FreshPerCall),
        "reuse" => (STRATEGIES[1].1, InstanceStrategy::default()),
        other => anyhow::bail!("unknown strategy {other:?}"),
    };
    let row = parked_calls(strategy_name, strategy, in_flight).await?;
    println!("{}", serde_json::to_string(&row)?);
    Ok(())
}

async fn parked_calls(
    strategy_name: &str,
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
    backend.open();
    while let Some(done) = calls.join_next().await {
        done.context("a parked call failed")?;
    }
    let rss_after_kib = status_kib("VmRSS")?;
    let peak_rss_kib = status_kib("VmHWM")?;
    Ok(MemoryRow {
        strategy: strategy_name.to_owned(),
        in_flight,
        rss_before_kib,
        rss_in_flight_kib,
        rss_after_kib,
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
