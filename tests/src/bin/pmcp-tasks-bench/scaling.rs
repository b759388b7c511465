//! Latency of create, get and list-page as one owner's task count grows
//! (with many other owners present), on each backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pmcp_tasks_host::InstanceStrategy;
use pmcp_tasks_tests::bench::{median, HostSubject, Rng, Subject, OWNER, PAGE_SIZE};
use tokio::task::JoinSet;

use crate::report::ScalingRow;
use crate::{Backends, Sizes};

/// Concurrent callers used to create the tasks a scenario starts with.
const SEEDERS: usize = 32;

/// Medians of each operation at each task count, per backend.
pub async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ScalingRow> {
    let mut rows = Vec::new();
    // Not DynamoDB: its emulator takes tens of milliseconds per write, so
    // 100 000 tasks would take most of an hour and measure moto.
    let scaled = backends
        .list()
        .into_iter()
        .filter(|(name, _)| *name != "dynamodb");
    for (backend, factory) in scaled {
        let subject =
            Arc::new(HostSubject::new(factory.fresh().await, InstanceStrategy::default()).await);
        seed(&subject, sizes.other_owners, |i| format!("other-owner-{i}")).await;
        let mut ids: Vec<String> = Vec::new();
        let mut rng = Rng::new(42);
        for &tasks in sizes.task_counts {
            let missing = tasks.saturating_sub(ids.len());
            ids.extend(seed(&subject, missing, |_| OWNER.to_owned()).await);
            let row = |operation, median_ns| ScalingRow {
                backend,
                operation,
                tasks,
                other_owners: sizes.other_owners,
                median_ns,
            };
            // Untimed first pass: connections, caches and the allocator
            // settle before the figures are taken.
            time_gets(&subject, &ids, &mut rng, sizes.samples / 4).await;
            time_pages(&subject, sizes.samples / 20 + 1).await;
            rows.push(row(
                "get",
                time_gets(&subject, &ids, &mut rng, sizes.samples).await,
            ));
            let pages = (sizes.samples / 4).max(ids.len() / PAGE_SIZE as usize + 1);
            rows.push(row("list-page", time_pages(&subject, pages).await));
            // Last: creates add to the owner's tasks.
            let creates = (sizes.samples / 4).max(1);
            rows.push(row(
                "create",
                time_creates(&subject, &mut ids, creates).await,
            ));
        }
    }
    rows
}

fn nanos(mut samples: Vec<Duration>) -> f64 {
    median(&mut samples).as_nanos() as f64
}

async fn time_gets(subject: &HostSubject, ids: &[String], rng: &mut Rng, n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let id = &ids[rng.below(ids.len())];
        let start = Instant::now();
        subject.get(OWNER, id).await;
        samples.push(start.elapsed());
    }
    nanos(samples)
}

/// Walks the owner's listing page by page (from the start again at its
/// end), so every position is sampled at the larger counts.
async fn time_pages(subject: &HostSubject, pages: usize) -> f64 {
    let mut samples = Vec::with_capacity(pages);
    let mut cursor = None;
    for _ in 0..pages {
        let start = Instant::now();
        cursor = subject.list_page(OWNER, cursor.as_deref(), PAGE_SIZE).await;
        samples.push(start.elapsed());
    }
    nanos(samples)
}

async fn time_creates(subject: &HostSubject, ids: &mut Vec<String>, n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let id = subject.create(OWNER).await;
        samples.push(start.elapsed());
        ids.push(id);
    }
    nanos(samples)
}

/// Creates `count` tasks, the i-th for `owner(i)`, from concurrent callers;
/// returns their ids.
pub async fn seed(
    subject: &Arc<HostSubject>,
    count: usize,
    owner: fn(usize) -> String,
) -> Vec<String> {
    let mut callers = JoinSet::new();
    for caller in 0..SEEDERS {
        let subject = subject.clone();
        callers.spawn(async move {
            let mut ids = Vec::new();
            for i in (caller..count).step_by(SEEDERS) {
                ids.push(subject.create(&owner(i)).await);
            }
            ids
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(created) = callers.join_next().await {
        ids.extend(created.expect("a seeding caller panicked"));
    }
    ids
}
