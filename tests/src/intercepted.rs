//! [`Intercepted`]: a backend (the in-memory one unless given another) with
//! a hook before every step and after every read, the one way the tests
//! make a backend misbehave or watch it ([`Gate`]: reads wait;
//! [`LoseRaces`]: creates conflict; [`StepCount`]: steps are counted;
//! `ReadMeter`: bytes read are counted).

use std::ops::Deref;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use pmcp_tasks_host::backend::{Entry, InMemoryBackend, KvBackend, KvError, Listing};
use tokio::sync::{watch, Notify};

/// A step of the `KvBackend` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Step {
    /// `get`.
    Get,
    /// `create`.
    Create,
    /// `replace`.
    Replace,
    /// `remove`.
    Remove,
    /// `list`.
    List,
    /// `sweep`.
    Sweep,
}

/// Runs before every step; an error answers the step in the store's place.
#[async_trait]
pub trait Interceptor: Send + Sync + 'static {
    /// Called before `step` reaches the store.
    async fn before(&self, _step: Step) -> Result<(), KvError> {
        Ok(())
    }

    /// Called with the value bytes every `get` or `list` returns (a
    /// listing's item ids count with its heads).
    fn read(&self, _bytes: usize) {}
}

/// A backend behind an [`Interceptor`] (reachable through `Deref`).
pub struct Intercepted<I> {
    inner: Arc<dyn KvBackend>,
    interceptor: I,
}

impl<I: Interceptor> Intercepted<I> {
    /// An empty in-memory store behind `interceptor`.
    pub fn with(interceptor: I) -> Arc<Self> {
        Intercepted::over(Arc::new(InMemoryBackend::new()), interceptor)
    }

    /// `inner` behind `interceptor`.
    pub fn over(inner: Arc<dyn KvBackend>, interceptor: I) -> Arc<Self> {
        Arc::new(Intercepted { inner, interceptor })
    }
}

impl<I> Deref for Intercepted<I> {
    type Target = I;

    fn deref(&self) -> &I {
        &self.interceptor
    }
}

#[async_trait]
impl<I: Interceptor> KvBackend for Intercepted<I> {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        self.interceptor.before(Step::Get).await?;
        let found = self.inner.get(partition, item).await?;
        if let Some(entry) = &found {
            self.interceptor.read(entry.head.len() + entry.body.len());
        }
        Ok(found)
    }

    async fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError> {
        self.interceptor.before(Step::Create).await?;
        let inner = &self.inner;
        inner
            .create(partition, item, head, body, expires_at, max_live, now)
            .await
    }

    async fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError> {
        self.interceptor.before(Step::Replace).await?;
        let inner = &self.inner;
        inner
            .replace(
                partition,
                item,
                expected_version,
                head,
                body,
                expires_at,
                now,
            )
            .await
    }

    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError> {
        self.interceptor.before(Step::Remove).await?;
        self.inner.remove(partition, item, expected_version).await
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        self.interceptor.before(Step::List).await?;
        let listed = self.inner.list(partition, after, limit, now).await?;
        self.interceptor.read(listed.packed_len());
        Ok(listed)
    }

    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        self.interceptor.before(Step::Sweep).await?;
        self.inner.sweep(now, limit).await
    }
}

/// Reads (`get`, `list`) wait at a gate until [`Gate::open`]; writes pass:
/// keeps calls in flight on purpose (a slow backend, many parked calls).
pub struct Gate {
    arrived: AtomicUsize,
    arrival: Notify,
    open: watch::Sender<bool>,
}

/// An in-memory backend whose reads wait at a [`Gate`].
pub type GatedBackend = Intercepted<Gate>;

impl Intercepted<Gate> {
    /// A closed gate over an empty store.
    pub fn new() -> Arc<GatedBackend> {
        Intercepted::with(Gate {
            arrived: AtomicUsize::new(0),
            arrival: Notify::new(),
            open: watch::Sender::new(false),
        })
    }
}

impl Gate {
    /// Waits until `count` reads in all have reached the gate.
    pub async fn wait_for_arrivals(&self, count: usize) {
        loop {
            let mut notified = pin!(self.arrival.notified());
            notified.as_mut().enable();
            if self.arrived.load(Ordering::SeqCst) >= count {
                return;
            }
            notified.await;
        }
    }

    /// Lets every waiting and future read through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

#[async_trait]
impl Interceptor for Gate {
    async fn before(&self, step: Step) -> Result<(), KvError> {
        if !matches!(step, Step::Get | Step::List) {
            return Ok(());
        }
        let mut open = self.open.subscribe();
        self.arrived.fetch_add(1, Ordering::SeqCst);
        self.arrival.notify_waiters();
        // The sender lives in `self`, so the wait ends only when opened.
        let _ = open.wait_for(|open| *open).await;
        Ok(())
    }
}

/// The first creates lose their race ([`KvError::Conflict`]): what a store
/// under heavy contention sees, on demand and deterministically. Records
/// when every create arrived.
pub struct LoseRaces {
    losses: AtomicU32,
    arrivals: Mutex<Vec<Instant>>,
}

/// An in-memory backend whose first creates conflict.
pub type ContendedBackend = Intercepted<LoseRaces>;

impl Intercepted<LoseRaces> {
    /// A backend whose first `losses` creates conflict.
    pub fn new(losses: u32) -> Arc<ContendedBackend> {
        Intercepted::with(LoseRaces {
            losses: AtomicU32::new(losses),
            arrivals: Mutex::new(Vec::new()),
        })
    }
}

impl LoseRaces {
    /// When each create arrived, in order.
    pub fn create_arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

#[async_trait]
impl Interceptor for LoseRaces {
    async fn before(&self, step: Step) -> Result<(), KvError> {
        if step != Step::Create {
            return Ok(());
        }
        self.arrivals.lock().unwrap().push(Instant::now());
        let lost = self
            .losses
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            Err(KvError::Conflict)
        } else {
            Ok(())
        }
    }
}

/// Counts every step that reaches the store, by kind: what a caller asks
/// of the backend, asserted exactly.
#[derive(Default)]
pub struct StepCount {
    counts: [AtomicUsize; 6],
}

/// An in-memory backend that counts its steps.
pub type CountedBackend = Intercepted<StepCount>;

impl Intercepted<StepCount> {
    /// An empty store, nothing counted yet.
    pub fn new() -> Arc<CountedBackend> {
        Intercepted::with(StepCount::default())
    }
}

impl StepCount {
    /// How many `step`s reached the store so far.
    pub fn of(&self, step: Step) -> usize {
        self.counts[step as usize].load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Interceptor for StepCount {
    async fn before(&self, step: Step) -> Result<(), KvError> {
        self.counts[step as usize].fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A writer stopped between its writes, as a process killed mid-write:
/// the first `creates` creates pass, the next one never returns (its
/// caller is then dropped by the test).
pub struct StopWriting {
    creates: AtomicU32,
    stopped: Notify,
    stopped_once: std::sync::atomic::AtomicBool,
}

/// A backend whose writer stops after a number of creates.
pub type StoppedBackend = Intercepted<StopWriting>;

impl Intercepted<StopWriting> {
    /// Over `inner`, letting `creates` creates through.
    pub fn stopping_after(inner: Arc<dyn KvBackend>, creates: u32) -> Arc<StoppedBackend> {
        Intercepted::over(
            inner,
            StopWriting {
                creates: AtomicU32::new(creates),
                stopped: Notify::new(),
                stopped_once: std::sync::atomic::AtomicBool::new(false),
            },
        )
    }
}

impl StopWriting {
    /// Waits until a create has stopped.
    pub async fn wait_until_stopped(&self) {
        loop {
            let mut notified = pin!(self.stopped.notified());
            notified.as_mut().enable();
            if self.stopped_once.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Interceptor for StopWriting {
    async fn before(&self, step: Step) -> Result<(), KvError> {
        if step != Step::Create {
            return Ok(());
        }
        let passed = self
            .creates
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if passed {
            return Ok(());
        }
        self.stopped_once.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
        std::future::pending().await
    }
}
