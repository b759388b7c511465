//! The storage the domain logic needs: the guest-side view of the WIT
//! `kv-backend` interface, plus a small in-process map for native use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use pmcp_tasks_contract::ListingError;
pub use pmcp_tasks_contract::{Entry, Listed, Listing};

/// Why a backend call did not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The precondition did not hold; the caller re-reads and retries.
    #[error("conflict: the item changed concurrently")]
    Conflict,
    /// The partition already holds the maximum number of live items.
    #[error("the partition holds the maximum number of live items")]
    QuotaExceeded,
    /// The value does not fit the backend.
    #[error("value too large: {0}")]
    TooLarge(String),
    /// The backend is unreachable or failed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ListingError> for KvError {
    fn from(e: ListingError) -> Self {
        match e {
            ListingError::TooLarge { .. } => KvError::TooLarge(e.to_string()),
            ListingError::Malformed(_) => KvError::Unavailable(format!("the host sent {e}")),
        }
    }
}

/// Atomic key-value operations over (partition, item) keys
/// (`create` and `replace` take the WIT functions' arguments one to one).
/// Semantics are those documented on the WIT `kv-backend` interface.
pub trait Kv {
    /// Reads one item, live or not.
    fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError>;
    /// Creates an absent (or expired) item under the partition's live-item cap.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError>;
    /// Replaces a live item at `expected_version`.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError>;
    /// Removes an item at `expected_version`.
    fn remove(&self, partition: &str, item: &str, expected_version: u64) -> Result<(), KvError>;
    /// Lists up to `limit` live items after `after`, ordered by item id
    /// (bytewise); heads only.
    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError>;
    /// Removes up to `limit` items expired at `now`; returns the count.
    fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError>;
    /// Waits before the next attempt after the `attempt`-th lost race
    /// (from 1); the host picks the delay. Natively: no wait.
    fn backoff(&self, _attempt: u32) {}
}

/// A simple ordered map behind one lock: the reference semantics of
/// [`Kv`], for native tests and benchmarks of the domain logic.
#[derive(Debug, Default)]
pub struct MemoryKv {
    partitions: Mutex<HashMap<String, BTreeMap<String, Entry>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, BTreeMap<String, Entry>>) -> T) -> T {
        let mut guard = self
            .partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

impl MemoryKv {
    /// How many items it holds, live or not, in every partition (what a
    /// scan of a real backend counts).
    pub fn item_count(&self) -> usize {
        self.with(|p| p.values().map(BTreeMap::len).sum())
    }
}

impl Kv for MemoryKv {
    fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        Ok(self.with(|p| p.get(partition).and_then(|items| items.get(item).cloned())))
    }

    fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError> {
        self.with(|p| {
            let items = p.entry(partition.to_owned()).or_default();
            items.retain(|_, e| e.is_live(now));
            if items.contains_key(item) {
                return Err(KvError::Conflict);
            }
            if max_live.is_some_and(|max| items.len() >= max as usize) {
                return Err(KvError::QuotaExceeded);
            }
            items.insert(
                item.to_owned(),
                Entry {
                    head,
                    body,
                    version: 1,
                    expires_at,
                },
            );
            Ok(1)
        })
    }

    fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError> {
        self.with(
            |p| match p.get_mut(partition).and_then(|items| items.get_mut(item)) {
                Some(e) if e.version == expected_version && e.is_live(now) => {
                    *e = Entry {
                        head,
                        body,
                        version: expected_version + 1,
                        expires_at,
                    };
                    Ok(e.version)
                }
                _ => Err(KvError::Conflict),
            },
        )
    }

    fn remove(&self, partition: &str, item: &str, expected_version: u64) -> Result<(), KvError> {
        self.with(|p| {
            let items = p.get_mut(partition).ok_or(KvError::Conflict)?;
            match items.get(item) {
                Some(e) if e.version == expected_version => {
                    items.remove(item);
                    Ok(())
                }
                _ => Err(KvError::Conflict),
            }
        })
    }

    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.with(|p| {
            let mut listing = Listing::default();
            let Some(items) = p.get(partition) else {
                return Ok(listing);
            };
            let live = items
                .range::<str, _>((start, Bound::Unbounded))
                .filter(|(_, e)| e.is_live(now))
                .take(limit as usize);
            for (item, e) in live {
                listing.push(item, &e.head, e.version, e.expires_at)?;
            }
            Ok(listing)
        })
    }

    fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        Ok(self.with(|p| {
            let mut removed = 0u64;
            for items in p.values_mut() {
                items.retain(|_, e| {
                    let keep = e.is_live(now) || removed >= u64::from(limit);
                    removed += u64::from(!keep);
                    keep
                });
            }
            p.retain(|_, items| !items.is_empty());
            removed
        }))
    }
}
