//! Storage backends: dumb key-value stores behind one trait. The domain
//! logic lives in the component; a backend only offers the atomic steps of
//! the WIT `kv-backend` interface.

use async_trait::async_trait;

mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use memory::InMemoryBackend;

/// A stored value with its version and absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Opaque bytes (the component's canonical JSON record).
    pub value: Vec<u8>,
    /// 1 on create, +1 per replace.
    pub version: u64,
    /// Expiry in milliseconds since the Unix epoch; `None` = never.
    pub expires_at: Option<u64>,
}

impl Entry {
    /// Whether the entry is live at `now` (ms since the epoch).
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// Why a backend call did not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The precondition did not hold; the caller re-reads and retries.
    #[error("conflict: the item changed concurrently")]
    Conflict,
    /// The partition already holds the maximum number of live items.
    #[error("the partition holds the maximum number of live items")]
    QuotaExceeded,
    /// The value does not fit this backend.
    #[error("value too large: {0}")]
    TooLarge(String),
    /// The backend is unreachable or failed.
    #[error("{0}")]
    Unavailable(String),
}

/// The atomic key-value steps the task component needs; see
/// `wit/tasks.wit` (`interface kv-backend`) for the exact contract.
/// Partitions and items are separate values; times are milliseconds since
/// the Unix epoch as read by the component.
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// Reads one item, live or expired.
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError>;

    /// Creates an item that is absent or expired at `now`, if the partition
    /// holds fewer than `max_live` live items. Returns the version (1).
    async fn create(
        &self,
        partition: &str,
        item: &str,
        value: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError>;

    /// Replaces an item live at `now` whose version is `expected_version`.
    /// Returns the new version.
    async fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        value: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError>;

    /// Removes an item whose version is `expected_version`.
    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError>;

    /// Lists up to `limit` items live at `now`, ordered by item id,
    /// strictly after `after`.
    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Vec<(String, Entry)>, KvError>;

    /// Removes up to `limit` items expired at `now`; returns how many.
    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError>;
}
