//! The storage the domain logic needs: the guest-side view of the WIT
//! `kv-backend` interface, plus a small in-process map for native use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A stored value in two parts (head and body), with its version and
/// absolute expiry (ms since the epoch). Listings return heads only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The part listings return.
    pub head: Vec<u8>,
    /// The rest; empty in listed entries.
    pub body: Vec<u8>,
    /// Backend-assigned version: 1 on create, +1 per replace.
    pub version: u64,
    /// When the entry stops being live; `None` = never.
    pub expires_at: Option<u64>,
}

impl Entry {
    /// Whether the entry is live at `now`.
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
    /// The value does not fit the backend.
    #[error("value too large: {0}")]
    TooLarge(String),
    /// The backend is unreachable or failed.
    #[error("{0}")]
    Unavailable(String),
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
    /// (bytewise); entries carry their heads only (empty bodies).
    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Vec<(String, Entry)>, KvError>;
    /// Removes up to `limit` items expired at `now`; returns the count.
    fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError>;
    /// Waits before the next attempt after the `attempt`-th lost race
    /// (from 1); the host picks the delay. Natively: no wait.
    fn backoff(&self, _attempt: u32) {}
}

/// The expiry a packed listing gives an entry that never expires.
pub const NEVER_EXPIRES: u64 = u64::MAX;

/// A listing as the host packs it (the WIT `listed-page`): item ids and
/// heads in one buffer, and per entry two lengths, a version and an expiry.
#[derive(Debug, Clone, Copy)]
pub struct PackedListing<'a> {
    /// Each entry's item id, then its head, entry after entry.
    pub packed: &'a [u8],
    /// Two per entry: the bytes of its item id, then of its head.
    pub lengths: &'a [u32],
    /// One per entry: its version.
    pub versions: &'a [u64],
    /// One per entry: its expiry, [`NEVER_EXPIRES`] for none.
    pub expiries: &'a [u64],
}

impl PackedListing<'_> {
    /// The entries with their heads (empty bodies). Lengths that do not
    /// add up, lists that disagree on the number of entries, or an item id
    /// that is not UTF-8 are the host's fault: an error, never a panic.
    pub fn unpack(&self) -> Result<Vec<(String, Entry)>, KvError> {
        let malformed =
            |why: &str| KvError::Unavailable(format!("the host sent a malformed listing: {why}"));
        let count = self.versions.len();
        if self.expiries.len() != count || self.lengths.len() != count * 2 {
            return Err(malformed("its lists disagree on the number of entries"));
        }
        let mut rest = self.packed;
        let mut listed = Vec::with_capacity(count);
        let described = self
            .lengths
            .chunks_exact(2)
            .zip(self.versions)
            .zip(self.expiries);
        for ((lengths, &version), &expiry) in described {
            let (item, after_item) = rest
                .split_at_checked(lengths[0] as usize)
                .ok_or_else(|| malformed("an item id runs past the buffer"))?;
            let (head, after_head) = after_item
                .split_at_checked(lengths[1] as usize)
                .ok_or_else(|| malformed("a head runs past the buffer"))?;
            let item =
                std::str::from_utf8(item).map_err(|_| malformed("an item id is not UTF-8"))?;
            let entry = Entry {
                head: head.to_vec(),
                body: Vec::new(),
                version,
                expires_at: (expiry != NEVER_EXPIRES).then_some(expiry),
            };
            listed.push((item.to_owned(), entry));
            rest = after_head;
        }
        if !rest.is_empty() {
            return Err(malformed("bytes left after the last entry"));
        }
        Ok(listed)
    }
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
    ) -> Result<Vec<(String, Entry)>, KvError> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self.with(|p| {
            p.get(partition).map_or_else(Vec::new, |items| {
                items
                    .range::<str, _>((start, Bound::Unbounded))
                    .filter(|(_, e)| e.is_live(now))
                    .take(limit as usize)
                    .map(|(k, e)| {
                        let listed = Entry {
                            body: Vec::new(),
                            ..e.clone()
                        };
                        (k.clone(), listed)
                    })
                    .collect()
            })
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_listing_splits_into_item_ids_and_heads() {
        let listing = PackedListing {
            packed: "a{}bcd\u{e9}xyz".as_bytes(),
            lengths: &[1, 2, 2, 0, 3, 3],
            versions: &[1, 2, 3],
            expiries: &[NEVER_EXPIRES, 20, 30],
        };
        let listed = listing.unpack().unwrap();
        let parts: Vec<_> = listed
            .iter()
            .map(|(item, e)| (item.as_str(), e.head.as_slice(), e.version, e.expires_at))
            .collect();
        assert_eq!(
            parts,
            [
                ("a", &b"{}"[..], 1, None),
                ("bc", &b""[..], 2, Some(20)),
                ("d\u{e9}", &b"xyz"[..], 3, Some(30))
            ]
        );
        assert!(listed.iter().all(|(_, e)| e.body.is_empty()));
    }

    #[test]
    fn a_malformed_listing_is_an_error_not_a_panic() {
        let malformed = |packed: &[u8], lengths: &[u32], count: usize| {
            let listing = PackedListing {
                packed,
                lengths,
                versions: &[1, 2][..count],
                expiries: &[5, 6][..count],
            };
            matches!(listing.unpack(), Err(KvError::Unavailable(m)) if m.contains("malformed listing"))
        };
        assert!(!malformed(b"abc", &[1, 2], 1), "a well-formed listing");
        assert!(malformed(b"abc", &[4, 0], 1), "item id past the end");
        assert!(malformed(b"abc", &[1, 3], 1), "head past the end");
        assert!(malformed(b"abc", &[1, 1], 1), "bytes left over");
        assert!(malformed(b"abc", &[], 0), "bytes without entries");
        assert!(malformed(b"\xffbc", &[1, 2], 1), "item id not UTF-8");
        assert!(malformed(b"", &[u32::MAX, u32::MAX], 1), "huge lengths");
        assert!(
            malformed(b"abc", &[1, 2], 2),
            "two versions, one pair of lengths"
        );
        assert!(malformed(b"abc", &[1, 2, 0], 1), "an odd number of lengths");
    }
}
