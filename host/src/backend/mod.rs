//! Storage backends: dumb key-value stores behind one trait. The domain
//! logic lives in the component; a backend only offers the atomic steps of
//! the WIT `kv-backend` interface.

use async_trait::async_trait;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use memory::InMemoryBackend;

pub use pmcp_tasks_guest::kv::{Entry, KvError};

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
