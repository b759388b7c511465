//! A backend whose first creates lose their race: what a store under heavy
//! contention sees, on demand and deterministically.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use pmcp_tasks_host::backend::{Entry, InMemoryBackend, KvBackend, KvError};

/// An in-memory backend that answers the first `losses` creates with
/// [`KvError::Conflict`] and records when every create arrived.
pub struct ContendedBackend {
    inner: InMemoryBackend,
    losses: AtomicU32,
    arrivals: Mutex<Vec<Instant>>,
}

impl ContendedBackend {
    /// A backend whose first `losses` creates conflict.
    pub fn new(losses: u32) -> Arc<Self> {
        Arc::new(ContendedBackend {
            inner: InMemoryBackend::new(),
            losses: AtomicU32::new(losses),
            arrivals: Mutex::new(Vec::new()),
        })
    }

    /// When each create arrived, in order.
    pub fn create_arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

#[async_trait]
impl KvBackend for ContendedBackend {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
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
        self.arrivals.lock().unwrap().push(Instant::now());
        let lost = self
            .losses
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            return Err(KvError::Conflict);
        }
        self.inner
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
        self.inner
            .replace(partition, item, expected_version, value, expires_at, now)
            .await
    }

    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError> {
        self.inner.remove(partition, item, expected_version).await
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
