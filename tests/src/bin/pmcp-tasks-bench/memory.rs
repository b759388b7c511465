//! Resident memory with many calls in flight at once: each call is parked
//! inside the backend (so its instance is alive) until all have arrived,
//! then the process's resident set is read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use pmcp_tasks_host::backend::{Entry, InMemoryBackend, KvBackend, KvError};
use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::bench::{HostSubject, Subject, OWNER};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::report::MemoryRow;
use crate::Sizes;

/// Holds every `get` until `expected` of them have arrived and the gate opens.
struct GatedBackend {
    inner: InMemoryBackend,
    expected: usize,
    arrived: AtomicUsize,
    all_arrived: Notify,
    open: watch::Sender<bool>,
}

impl GatedBackend {
    fn new(expected: usize) -> GatedBackend {
        GatedBackend {
            inner: InMemoryBackend::new(),
            expected,
            arrived: AtomicUsize::new(0),
            all_arrived: Notify::new(),
            open: watch::Sender::new(false),
        }
    }
}

#[async_trait]
impl KvBackend for GatedBackend {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        let mut open = self.open.subscribe();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.all_arrived.notify_one();
        }
        let _ = open.wait_for(|open| *open).await;
        self.inner.get(partition, item).await
    }

    async fn create(
        &self,
        partition: &str,
        item: &str,
        value: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError> {
        let inner = &self.inner;
        inner
            .create(partition, item, value, expires_at, max_live, now)
            .await
    }

    async fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        value: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError> {
        let inner = &self.inner;
        inner
            .replace(partition, item, expected_version, value, expires_at, now)
            .await
    }

    async fn remove(&self, partition: &str, item: &str, version: u64) -> Result<(), KvError> {
        self.inner.remove(partition, item, version).await
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Vec<(String, Entry)>, KvError> {
        self.inner.list(partition, after, limit, now).await
    }

    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        self.inner.sweep(now, limit).await
    }
}

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
    let backend = Arc::new(GatedBackend::new(in_flight));
    let subject = Arc::new(HostSubject::new(backend.clone(), strategy).await);
    let id = Arc::new(subject.create(OWNER).await);
    let rss_before_kib = status_kib("VmRSS")?;
    let mut calls = JoinSet::new();
    for _ in 0..in_flight {
        let (subject, id) = (subject.clone(), id.clone());
        calls.spawn(async move { subject.get(OWNER, &id).await });
    }
    backend.all_arrived.notified().await;
    let rss_in_flight_kib = status_kib("VmRSS")?;
    let peak_rss_kib = status_kib("VmHWM")?;
    backend.open.send_replace(true);
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
