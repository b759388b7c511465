//! The imported `kv-backend` as the store's [`Kv`].

use super::bindings::pmcp::tasks::kv_backend as backend;
use crate::kv::{Entry, Kv, KvError, Listing};

/// The `kv-backend` import as a [`Kv`].
pub(super) struct HostKv;

impl From<backend::KvError> for KvError {
    fn from(e: backend::KvError) -> Self {
        match e {
            backend::KvError::Conflict => KvError::Conflict,
            backend::KvError::QuotaExceeded => KvError::QuotaExceeded,
            backend::KvError::TooLarge(m) => KvError::TooLarge(m),
            backend::KvError::Unavailable(m) => KvError::Unavailable(m),
        }
    }
}

fn entry(e: backend::Entry) -> Entry {
    Entry {
        head: e.head,
        body: e.body,
        version: e.version,
        expires_at: e.expires_at,
    }
}

impl Kv for HostKv {
    fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        Ok(backend::get(partition, item)?.map(entry))
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
        Ok(backend::create(
            partition, item, &head, &body, expires_at, max_live, now,
        )?)
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
        Ok(backend::replace(
            partition,
            item,
            expected_version,
            &head,
            &body,
            expires_at,
            now,
        )?)
    }

    fn remove(&self, partition: &str, item: &str, expected_version: u64) -> Result<(), KvError> {
        Ok(backend::remove(partition, item, expected_version)?)
    }

    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        let page = backend::list(partition, after, limit, now)?;
        let listing = Listing::from_parts(page.packed, page.lengths, page.versions, page.expiries);
        Ok(listing?)
    }

    fn backoff(&self, attempt: u32) {
        backend::backoff(attempt);
    }

    fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        Ok(backend::sweep(now, limit)?)
    }
}
