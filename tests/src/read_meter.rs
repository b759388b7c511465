//! [`ReadMeter`]: any backend, with a count of the bytes its reads return,
//! so a test can show what an operation moved out of the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pmcp_tasks_host::backend::{Entry, KvBackend, KvError};

/// Wraps a backend and counts the value bytes (heads and bodies) that
/// `get` and `list` return.
pub struct ReadMeter {
    inner: Arc<dyn KvBackend>,
    bytes: AtomicU64,
}

impl ReadMeter {
    /// Meters `inner`, starting at zero.
    pub fn new(inner: Arc<dyn KvBackend>) -> Arc<Self> {
        Arc::new(ReadMeter {
            inner,
            bytes: AtomicU64::new(0),
        })
    }

    /// Bytes read since the last call (and starts counting again).
    pub fn take(&self) -> u64 {
        self.bytes.swap(0, Ordering::SeqCst)
    }

    fn count(&self, entry: &Entry) {
        let size = entry.head.len() + entry.body.len();
        self.bytes.fetch_add(size as u64, Ordering::SeqCst);
    }
}

#[async_trait]
impl KvBackend for ReadMeter {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        let found = self.inner.get(partition, item).await?;
        if let Some(entry) = &found {
            self.count(entry);
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
        self.inner.remove(partition, item, expected_version).await
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Vec<(String, Entry)>, KvError> {
        let listed = self.inner.list(partition, after, limit, now).await?;
        for (_, entry) in &listed {
            self.count(entry);
        }
        Ok(listed)
    }

    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        self.inner.sweep(now, limit).await
    }
}
