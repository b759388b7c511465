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
        live_at(self.expires_at, now)
    }
}

/// Whether something expiring at `expires_at` (`None` = never) is live at
/// `now`: it expires at `expires_at` exactly.
fn live_at(expires_at: Option<u64>, now: u64) -> bool {
    expires_at.is_none_or(|at| now < at)
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

/// The expiry a [`Listing`] records for an entry that never expires (the
/// WIT `listed-page` convention; an expiry at `u64::MAX` ms is never
/// reached either, so the two read the same).
const NEVER: u64 = u64::MAX;

/// Live entries found by a listing, heads only, in item id order: item ids
/// and heads packed in one buffer with their lengths, versions and expiries
/// (the WIT `listed-page`), so listing a page allocates nothing per entry,
/// in the component or natively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each entry's item id (UTF-8), then its head, entry after entry.
    packed: Vec<u8>,
    /// Two per entry: the bytes of its item id, then of its head.
    lengths: Vec<u32>,
    /// One per entry.
    versions: Vec<u64>,
    /// One per entry; [`NEVER`] for none.
    expiries: Vec<u64>,
}

/// One entry of a [`Listing`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The item id.
    pub item: &'a str,
    /// The entry's head.
    pub head: &'a [u8],
    /// Backend-assigned version.
    pub version: u64,
    /// When the entry stops being live; `None` = never.
    pub expires_at: Option<u64>,
}

impl Listed<'_> {
    /// Whether the entry is live at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        live_at(self.expires_at, now)
    }
}

impl Listing {
    /// A listing from the four parts of a WIT `listed-page`, checked once:
    /// lengths that do not add up to the buffer, parts that disagree on the
    /// number of entries, or an item id that is not UTF-8 are the host's
    /// fault, an error and never a panic.
    pub fn from_parts(
        packed: Vec<u8>,
        lengths: Vec<u32>,
        versions: Vec<u64>,
        expiries: Vec<u64>,
    ) -> Result<Self, KvError> {
        let malformed =
            |why: &str| KvError::Unavailable(format!("the host sent a malformed listing: {why}"));
        let count = versions.len();
        if expiries.len() != count || lengths.len() != count * 2 {
            return Err(malformed("its parts disagree on the number of entries"));
        }
        let mut rest = packed.as_slice();
        for pair in lengths.chunks_exact(2) {
            let (item, after_item) = rest
                .split_at_checked(pair[0] as usize)
                .ok_or_else(|| malformed("an item id runs past the buffer"))?;
            std::str::from_utf8(item).map_err(|_| malformed("an item id is not UTF-8"))?;
            rest = after_item
                .get(pair[1] as usize..)
                .ok_or_else(|| malformed("a head runs past the buffer"))?;
        }
        if !rest.is_empty() {
            return Err(malformed("bytes left after the last entry"));
        }
        Ok(Listing {
            packed,
            lengths,
            versions,
            expiries,
        })
    }

    /// Appends an entry (after every entry already listed).
    ///
    /// # Errors
    /// [`KvError::TooLarge`] for an item id or head over 4 GiB.
    pub fn push(
        &mut self,
        item: &str,
        head: &[u8],
        version: u64,
        expires_at: Option<u64>,
    ) -> Result<(), KvError> {
        let length = |bytes: &[u8], what: &str| {
            u32::try_from(bytes.len()).map_err(|_| {
                KvError::TooLarge(format!("the listed {what} of item {item} exceeds 4 GiB"))
            })
        };
        let lengths = [length(item.as_bytes(), "id")?, length(head, "head")?];
        self.lengths.extend_from_slice(&lengths);
        self.packed.extend_from_slice(item.as_bytes());
        self.packed.extend_from_slice(head);
        self.versions.push(version);
        self.expiries.push(expires_at.unwrap_or(NEVER));
        Ok(())
    }

    /// How many entries are listed.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether no entry is listed.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = Listed<'_>> + '_ {
        let mut rest = self.packed.as_slice();
        let described = self.lengths.chunks_exact(2).zip(&self.versions);
        described
            .zip(&self.expiries)
            .map(move |((pair, &version), &expiry)| {
                let (item, after_item) = rest.split_at(pair[0] as usize);
                let (head, after_head) = after_item.split_at(pair[1] as usize);
                rest = after_head;
                Listed {
                    // Checked by `from_parts`; `push` takes a `str`.
                    item: std::str::from_utf8(item).unwrap_or_default(),
                    head,
                    version,
                    expires_at: (expiry != NEVER).then_some(expiry),
                }
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(listing: &Listing) -> Vec<(&str, &[u8], u64, Option<u64>)> {
        let described = listing.iter();
        described
            .map(|l| (l.item, l.head, l.version, l.expires_at))
            .collect()
    }

    #[test]
    fn a_listing_from_the_hosts_parts_reads_item_ids_heads_and_expiries() {
        let packed = "a{}bcd\u{e9}xyz".as_bytes().to_vec();
        let expiries = vec![NEVER, 20, 30];
        let listing = Listing::from_parts(packed, vec![1, 2, 2, 0, 3, 3], vec![1, 2, 3], expiries);
        let listing = listing.unwrap();
        assert_eq!(listing.len(), 3);
        assert_eq!(
            parts(&listing),
            [
                ("a", &b"{}"[..], 1, None),
                ("bc", &b""[..], 2, Some(20)),
                ("d\u{e9}", &b"xyz"[..], 3, Some(30))
            ]
        );
        let live: Vec<_> = listing.iter().map(|l| l.is_live(25)).collect();
        assert_eq!(live, [true, false, true]);
    }

    #[test]
    fn pushed_entries_read_back_as_the_hosts_parts_would() {
        let mut pushed = Listing::default();
        assert!(pushed.is_empty());
        pushed.push("a", b"{}", 1, None).unwrap();
        pushed.push("bc", b"", 2, Some(20)).unwrap();
        let from_host = Listing::from_parts(
            b"a{}bc".to_vec(),
            vec![1, 2, 2, 0],
            vec![1, 2],
            vec![NEVER, 20],
        );
        assert_eq!(Ok(pushed), from_host);
    }

    #[test]
    fn a_malformed_listing_is_an_error_not_a_panic() {
        let malformed = |packed: &[u8], lengths: &[u32], count: usize| {
            let listing = Listing::from_parts(
                packed.to_vec(),
                lengths.to_vec(),
                vec![1, 2][..count].to_vec(),
                vec![5, 6][..count].to_vec(),
            );
            matches!(listing, Err(KvError::Unavailable(m)) if m.contains("malformed listing"))
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
