//! Storage backends: dumb key-value stores behind one trait. The domain
//! logic lives in the component; a backend only offers the atomic steps of
//! the WIT `kv-backend` interface, in this module's vocabulary ([`Entry`],
//! [`KvError`]), and never depends on guest code.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;
mod shown;
mod url;

pub use memory::InMemoryBackend;
use pmcp_tasks_contract::ListingError;
pub use pmcp_tasks_contract::{Entry, Listed, Listing};
pub use url::{connect, BackendUrl, BackendUrlError};

/// The underlying cause of a backend failure, shareable so errors stay `Clone`.
pub type ErrorSource = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a backend call did not apply.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The precondition did not hold (the item exists on create, or is
    /// missing or at another version on replace or remove): the caller
    /// re-reads and retries. Never a failure.
    #[error("conflict: the item changed concurrently")]
    Conflict,
    /// Create refused: the partition already holds `max_live` live items.
    #[error("the partition holds the maximum number of live items")]
    QuotaExceeded,
    /// The value is larger than this backend can store.
    #[error("value too large: {0}")]
    TooLarge(String),
    /// The backend holds data it cannot read back (a malformed version,
    /// expiry or key): retrying will not help, an operator must look.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend is unreachable or failed; `message` names the endpoint.
    #[error("{message}")]
    Unavailable {
        /// What failed, and where.
        message: String,
        /// The client library's error, when there is one.
        #[source]
        source: Option<ErrorSource>,
    },
}

impl KvError {
    /// An [`KvError::Unavailable`] caused by `source`.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        KvError::Unavailable {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// An [`KvError::Unavailable`] with no underlying error (for example a
    /// reply the backend should never give).
    pub fn unavailable_because(message: impl Into<String>) -> Self {
        KvError::Unavailable {
            message: message.into(),
            source: None,
        }
    }
}

impl From<ListingError> for KvError {
    fn from(e: ListingError) -> Self {
        match e {
            ListingError::TooLarge { .. } => KvError::TooLarge(e.to_string()),
            ListingError::Malformed(_) => KvError::Corrupt(e.to_string()),
        }
    }
}

/// A partition as a store's key material: most stores restrict key
/// characters or refuse empty keys, and a partition is any string.
#[cfg(any(feature = "redis", feature = "dynamodb"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartitionName<'a> {
    /// Non-empty lowercase alphanumeric (the component's SHA-256 hex): usable as it is.
    Plain(&'a str),
    /// Anything else, as the hex of its bytes.
    Hex(String),
}

#[cfg(any(feature = "redis", feature = "dynamodb"))]
impl<'a> PartitionName<'a> {
    /// Classifies `partition`; distinct partitions get distinct names.
    pub(crate) fn of(partition: &'a str) -> Self {
        let plain = |b: u8| b.is_ascii_digit() || b.is_ascii_lowercase();
        if !partition.is_empty() && partition.bytes().all(plain) {
            PartitionName::Plain(partition)
        } else {
            PartitionName::Hex(partition.bytes().map(|b| format!("{b:02x}")).collect())
        }
    }

    /// The partition a [`PartitionName::Hex`] stands for.
    #[cfg(feature = "dynamodb")]
    pub(crate) fn unhex(hex: &str) -> Option<String> {
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect();
        String::from_utf8(bytes?).ok()
    }
}

/// The atomic key-value steps the task component needs; see
/// `wit/tasks.wit` (`interface kv-backend`) for the exact contract.
/// Partitions and items are separate values; times are milliseconds since
/// the Unix epoch as read by the component.
// `create` and `replace` take the WIT functions' arguments one to one.
#[allow(clippy::too_many_arguments)]
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// What kind of store this is (`memory`, `redis`, `dynamodb`): a
    /// metric label, so keep it short and fixed.
    fn kind(&self) -> &'static str {
        "custom"
    }

    /// Reads one item, live or expired.
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError>;

    /// Creates an item that is absent or expired at `now`, if the partition
    /// holds fewer than `max_live` live items. Returns the version (1).
    async fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
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
        head: Vec<u8>,
        body: Vec<u8>,
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

    /// Lists up to `limit` items live at `now`, ordered by item id
    /// (bytewise), strictly after `after`; heads only.
    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError>;

    /// Removes up to `limit` items expired at `now`; returns how many.
    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError>;
}
