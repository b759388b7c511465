//! [`GatedBackend`]: an in-memory backend whose reads wait at a gate, to
//! keep calls in flight on purpose (a slow backend, many parked calls).

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pmcp_tasks_host::backend::{Entry, InMemoryBackend, KvBackend, KvError};
use tokio::sync::{watch, Notify};

/// Reads (`get`, `list`) wait until [`GatedBackend::open`]; writes pass.
pub struct GatedBackend {
    inner: InMemoryBackend,
    arrived: AtomicUsize,
    arrival: Notify,
    open: watch::Sender<bool>,
}

impl GatedBackend {
    /// A closed gate over an empty store.
    pub fn new() -> Arc<GatedBackend> {
        Arc::new(GatedBackend {
            inner: InMemoryBackend::new(),
            arrived: AtomicUsize::new(0),
            arrival: Notify::new(),
            open: watch::Sender::new(false),
        })
    }

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

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        self.arrived.fetch_add(1, Ordering::SeqCst);
        self.arrival.notify_waiters();
        // The sender lives in `self`, so the wait ends only when opened.
        let _ = open.wait_for(|open| *open).await;
    }
}

#[async_trait]
impl KvBackend for GatedBackend {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        self.pass().await;
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
        self.pass().await;
        self.inner.list(partition, after, limit, now).await
    }

    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        self.inner.sweep(now, limit).await
    }
}
