//! Latency of create, get and list-page as one owner's task count grows
//! (with many other owners present), on each backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pmcp_tasks_bench::{median, HostSubject, Rng, Subject, OWNER, PAGE_SIZE};
use pmcp_tasks_host::InstanceStrategy;
use tokio::task::JoinSet;

use crate::report::ScalingRow;
use crate::{Backends, Sizes};

/// Concurrent callers used to create the tasks a scenario starts with.
const SEEDERS: usize = 32;

/// Timing rounds per scenario: every task count is timed in each round,
/// so a VM that slows down for a minute slows every count alike.
const ROUNDS: usize = 8;

/// Medians of each operation at each task count, per backend. Each count
/// is its own owner's, all seeded before anything is timed, and the
/// counts take turns in [`ROUNDS`] rounds: the ratios compare the same
/// moments, not the start of the scenario with its end.
pub(crate) async fn measure(backends: &Backends, sizes: Sizes) -> Vec<ScalingRow> {
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
        let mut owners = Vec::new();
        for &tasks in sizes.task_counts {
            let owner = format!("{OWNER}/{tasks}");
            let ids = seed(&subject, tasks, {
                let owner = owner.clone();
                move |_| owner.clone()
            })
            .await;
            owners.push(Owner::new(owner, ids));
        }
        let mut rng = Rng::new(42);
        // Untimed first round: connections, caches and the allocator
        // settle before the figures are taken.
        for owner in &mut owners {
            owner.round(&subject, &mut rng, sizes, false).await;
        }
        for _ in 0..ROUNDS {
            for owner in &mut owners {
                owner.round(&subject, &mut rng, sizes, true).await;
            }
        }
        for (owner, &tasks) in owners.into_iter().zip(sizes.task_counts) {
            let row = |operation, samples| ScalingRow {
                backend,
                operation,
                tasks,
                other_owners: sizes.other_owners,
                median_ns: nanos(samples),
            };
            rows.push(row("get", owner.gets));
            rows.push(row("list-page", owner.pages));
            rows.push(row("create", owner.creates));
        }
    }
    rows
}

/// One task count's owner, its tasks and the samples taken so far.
struct Owner {
    name: String,
    ids: Vec<String>,
    /// Where the walk through the owner's listing stands.
    cursor: Option<String>,
    gets: Vec<Duration>,
    pages: Vec<Duration>,
    creates: Vec<Duration>,
}

impl Owner {
    fn new(name: String, ids: Vec<String>) -> Owner {
        Owner {
            name,
            ids,
            cursor: None,
            gets: Vec::new(),
            pages: Vec::new(),
            creates: Vec::new(),
        }
    }

    /// One round's share of the samples: gets of random tasks, pages of
    /// the listing walked on from where the last round stopped (from the
    /// start again at its end, so every position is sampled at the larger
    /// counts), then creates (last: they add to the owner's tasks).
    async fn round(&mut self, subject: &HostSubject, rng: &mut Rng, sizes: Sizes, keep: bool) {
        let share = |n: usize| (n / ROUNDS).max(1);
        let gets = time_each(share(sizes.samples), async || {
            let id = &self.ids[rng.below(self.ids.len())];
            subject.get(&self.name, id).await;
        })
        .await;
        // Over all rounds, at least one walk through the whole listing.
        let walk = self.ids.len() / PAGE_SIZE as usize + 1;
        let pages = time_each(share((sizes.samples / 4).max(walk)), async || {
            let cursor = self.cursor.take();
            self.cursor = subject
                .list_page(&self.name, cursor.as_deref(), PAGE_SIZE)
                .await;
        })
        .await;
        let creates = time_each(share(sizes.samples / 4), async || {
            let id = subject.create(&self.name).await;
            self.ids.push(id);
        })
        .await;
        if keep {
            self.gets.extend(gets);
            self.pages.extend(pages);
            self.creates.extend(creates);
        }
    }
}

/// The time of each of `n` runs of `operation`.
async fn time_each(n: usize, mut operation: impl AsyncFnMut()) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        operation().await;
        samples.push(start.elapsed());
    }
    samples
}

fn nanos(mut samples: Vec<Duration>) -> f64 {
    median(&mut samples).as_nanos() as f64
}

/// Creates `count` tasks, the i-th for `owner(i)`, from concurrent callers;
/// returns their ids.
pub(crate) async fn seed(
    subject: &Arc<HostSubject>,
    count: usize,
    owner: impl Fn(usize) -> String + Clone + Send + 'static,
) -> Vec<String> {
    let mut callers = JoinSet::new();
    for caller in 0..SEEDERS {
        let subject = subject.clone();
        let owner = owner.clone();
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
