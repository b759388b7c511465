//! The in-memory backend: one `DashMap` of partitions, each an ordered map
//! of items plus an expiry index, so every step is atomic under the
//! partition's shard lock and costs O(log n) (listing O(log n + page)).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use async_trait::async_trait;
use dashmap::DashMap;

use super::{Entry, KvBackend, KvError};

/// In-process storage; data lives as long as the value.
#[derive(Debug, Default)]
pub struct InMemoryBackend {
    partitions: DashMap<String, Partition>,
}

impl InMemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug, Default)]
struct Partition {
    items: BTreeMap<String, Entry>,
    /// (expires_at, item) of every item that expires.
    expiries: BTreeSet<(u64, String)>,
}

impl Partition {
    fn insert(&mut self, item: &str, entry: Entry) {
        if let Some(old) = self.items.insert(item.to_owned(), entry.clone()) {
            self.forget_expiry(item, &old);
        }
        if let Some(at) = entry.expires_at {
            self.expiries.insert((at, item.to_owned()));
        }
    }

    fn remove(&mut self, item: &str) {
        if let Some(old) = self.items.remove(item) {
            self.forget_expiry(item, &old);
        }
    }

    fn forget_expiry(&mut self, item: &str, entry: &Entry) {
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, item.to_owned()));
        }
    }

    /// Drops up to `limit` items expired at `now`; returns how many.
    fn prune(&mut self, now: u64, limit: u64) -> u64 {
        let mut removed = 0;
        while removed < limit {
            match self.expiries.first() {
                Some((at, _)) if *at <= now => {
                    let (_, item) = self.expiries.pop_first().expect("first exists");
                    self.items.remove(&item);
                    removed += 1;
                }
                _ => break,
            }
        }
        removed
    }

    fn live(&self, item: &str, now: u64) -> Option<&Entry> {
        self.items.get(item).filter(|e| e.is_live(now))
    }
}

#[async_trait]
impl KvBackend for InMemoryBackend {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        Ok(self
            .partitions
            .get(partition)
            .and_then(|p| p.items.get(item).cloned()))
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
        let mut p = self.partitions.entry(partition.to_owned()).or_default();
        // Expired items no longer count against the quota.
        p.prune(now, u64::MAX);
        if p.items.contains_key(item) {
            return Err(KvError::Conflict);
        }
        if max_live.is_some_and(|max| p.items.len() >= max as usize) {
            return Err(KvError::QuotaExceeded);
        }
        p.insert(
            item,
            Entry {
                value,
                version: 1,
                expires_at,
            },
        );
        Ok(1)
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
        let mut p = self
            .partitions
            .get_mut(partition)
            .ok_or(KvError::Conflict)?;
        match p.live(item, now) {
            Some(e) if e.version == expected_version => {
                let version = expected_version + 1;
                p.insert(
                    item,
                    Entry {
                        value,
                        version,
                        expires_at,
                    },
                );
                Ok(version)
            }
            _ => Err(KvError::Conflict),
        }
    }

    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError> {
        let mut p = self
            .partitions
            .get_mut(partition)
            .ok_or(KvError::Conflict)?;
        match p.items.get(item) {
            Some(e) if e.version == expected_version => {
                p.remove(item);
                Ok(())
            }
            _ => Err(KvError::Conflict),
        }
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Vec<(String, Entry)>, KvError> {
        let Some(p) = self.partitions.get(partition) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(p.items
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, e)| e.is_live(now))
            .take(limit as usize)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect())
    }

    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        let mut removed = 0u64;
        for mut p in self.partitions.iter_mut() {
            removed += p.prune(now, u64::from(limit) - removed);
            if removed >= u64::from(limit) {
                break;
            }
        }
        self.partitions.retain(|_, p| !p.items.is_empty());
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str) -> Vec<u8> {
        v.as_bytes().to_vec()
    }

    #[tokio::test]
    async fn create_replace_and_versions() {
        let kv = InMemoryBackend::new();
        assert_eq!(kv.create("p", "a", value("1"), None, None, 0).await, Ok(1));
        assert_eq!(
            kv.create("p", "a", value("1"), None, None, 0).await,
            Err(KvError::Conflict)
        );
        assert_eq!(kv.replace("p", "a", 1, value("2"), None, 0).await, Ok(2));
        assert_eq!(
            kv.replace("p", "a", 1, value("3"), None, 0).await,
            Err(KvError::Conflict)
        );
        assert_eq!(kv.get("p", "a").await.unwrap().unwrap().value, value("2"));
        assert_eq!(kv.remove("p", "a", 1).await, Err(KvError::Conflict));
        assert_eq!(kv.remove("p", "a", 2).await, Ok(()));
        assert_eq!(kv.get("p", "a").await, Ok(None));
    }

    #[tokio::test]
    async fn expired_items_free_quota_and_vanish_from_listing() {
        let kv = InMemoryBackend::new();
        kv.create("p", "a", value("a"), Some(10), Some(2), 0)
            .await
            .unwrap();
        kv.create("p", "b", value("b"), None, Some(2), 0)
            .await
            .unwrap();
        assert_eq!(
            kv.create("p", "c", value("c"), None, Some(2), 5).await,
            Err(KvError::QuotaExceeded)
        );
        assert_eq!(
            kv.replace("p", "a", 1, value("x"), Some(10), 10).await,
            Err(KvError::Conflict)
        );
        let listed: Vec<String> = kv
            .list("p", None, 10, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(listed, ["b"]);
        assert_eq!(
            kv.create("p", "c", value("c"), None, Some(2), 10).await,
            Ok(1)
        );
    }

    #[tokio::test]
    async fn list_pages_after_a_key_and_sweep_respects_its_limit() {
        let kv = InMemoryBackend::new();
        for item in ["a", "b", "c", "d"] {
            kv.create("p", item, value(item), Some(5), None, 0)
                .await
                .unwrap();
        }
        kv.create("q", "z", value("z"), None, None, 0)
            .await
            .unwrap();
        let page: Vec<String> = kv
            .list("p", Some("a"), 2, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(page, ["b", "c"]);
        assert_eq!(kv.sweep(5, 3).await, Ok(3));
        assert_eq!(kv.sweep(5, 3).await, Ok(1));
        assert_eq!(kv.get("q", "z").await.unwrap().map(|e| e.version), Some(1));
    }
}
