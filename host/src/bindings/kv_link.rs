//! The `kv-backend` import, shaped like wasmtime's own host crates: a view
//! borrowed from a call's state implements the generated host trait, and
//! one [`add_to_linker`] puts it in a linker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use super::pmcp::tasks::kv_backend as kv;
use crate::backend::{self, KvBackend};
use crate::clock::Clock;
use crate::ConflictBackoff;

/// How far ahead of the host's clock a `now` from the component may be
/// (the guest reads the clock the host gives it, so honest calls are never
/// ahead; the slack covers a clock that is moved back between the read and
/// the call).
pub(crate) const NOW_TOLERANCE: Duration = Duration::from_secs(1);

/// What a call's backend traffic cost, kept off the guest's time budget
/// and reported on the call's tracing span.
#[derive(Debug, Default, Clone)]
pub(crate) struct BackendUse {
    /// Time spent awaiting the backend.
    pub(crate) waiting: Duration,
    /// Backend calls made.
    pub(crate) calls: u32,
    /// The last backend error, kept as the source of the call's error.
    pub(crate) last_error: Option<backend::KvError>,
    /// Why the host refused a backend call of the component, if it did.
    pub(crate) refused: Option<String>,
    /// Waits the component asked for after lost races.
    pub(crate) backoffs: u32,
}

/// The part of a call's state the `kv-backend` import needs.
pub(crate) struct KvView<'a> {
    /// The storage of the host that runs the call.
    pub(crate) backend: &'a Arc<dyn KvBackend>,
    /// Accounting of the call's backend traffic.
    pub(crate) usage: &'a mut BackendUse,
    /// The clock the component was given.
    pub(crate) clock: &'a dyn Clock,
    /// How long to wait when the component retries after a lost race.
    pub(crate) backoff: ConflictBackoff,
}

impl KvView<'_> {
    /// Refuses a `now` ahead of the clock the host gave the component: a
    /// plugin must not expire (or sweep away) tasks before their time.
    fn check_now(&mut self, now: u64) -> Result<(), kv::KvError> {
        let limit = (self.clock.now() + NOW_TOLERANCE).as_millis();
        if u128::from(now) <= limit {
            return Ok(());
        }
        let why = format!(
            "the component passed now = {now} ms, ahead of the host clock ({limit} ms with tolerance); refused"
        );
        self.usage.refused = Some(why.clone());
        Err(kv::KvError::Unavailable(why))
    }

    /// Awaits one backend call, accounting its time and keeping its error.
    async fn timed<T>(
        &mut self,
        call: impl std::future::Future<Output = Result<T, backend::KvError>>,
    ) -> Result<T, kv::KvError> {
        let start = Instant::now();
        let out = call.await;
        self.usage.waiting += start.elapsed();
        self.usage.calls += 1;
        out.map_err(|error| {
            let wire = kv::KvError::from(&error);
            self.usage.last_error = Some(error);
            wire
        })
    }
}

impl From<&backend::KvError> for kv::KvError {
    fn from(e: &backend::KvError) -> Self {
        match e {
            backend::KvError::Conflict => kv::KvError::Conflict,
            backend::KvError::QuotaExceeded => kv::KvError::QuotaExceeded,
            backend::KvError::TooLarge(m) => kv::KvError::TooLarge(m.clone()),
            other => kv::KvError::Unavailable(other.to_string()),
        }
    }
}

fn entry(e: backend::Entry) -> kv::Entry {
    kv::Entry {
        head: e.head,
        body: e.body,
        version: e.version,
        expires_at: e.expires_at,
    }
}

impl kv::Host for KvView<'_> {
    async fn get(
        &mut self,
        partition: String,
        item: String,
    ) -> Result<Option<kv::Entry>, kv::KvError> {
        let backend = self.backend.clone();
        let found = self.timed(backend.get(&partition, &item)).await?;
        Ok(found.map(entry))
    }

    async fn create(
        &mut self,
        partition: String,
        item: String,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, kv::KvError> {
        self.check_now(now)?;
        let backend = self.backend.clone();
        self.timed(backend.create(&partition, &item, head, body, expires_at, max_live, now))
            .await
    }

    async fn replace(
        &mut self,
        partition: String,
        item: String,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, kv::KvError> {
        self.check_now(now)?;
        let backend = self.backend.clone();
        let replaced = backend.replace(
            &partition,
            &item,
            expected_version,
            head,
            body,
            expires_at,
            now,
        );
        self.timed(replaced).await
    }

    async fn remove(
        &mut self,
        partition: String,
        item: String,
        expected_version: u64,
    ) -> Result<(), kv::KvError> {
        let backend = self.backend.clone();
        self.timed(backend.remove(&partition, &item, expected_version))
            .await
    }

    async fn list(
        &mut self,
        partition: String,
        after: Option<String>,
        limit: u32,
        now: u64,
    ) -> Result<kv::ListedPage, kv::KvError> {
        self.check_now(now)?;
        let backend = self.backend.clone();
        let listed = self
            .timed(backend.list(&partition, after.as_deref(), limit, now))
            .await?;
        Ok(listed_page(listed))
    }

    async fn backoff(&mut self, attempt: u32) {
        let draw = getrandom::u32().unwrap_or(u32::MAX / 2);
        let delay = self.backoff.delay(attempt, draw);
        let start = Instant::now();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.usage.waiting += start.elapsed();
        self.usage.backoffs += 1;
    }

    async fn sweep(&mut self, now: u64, limit: u32) -> Result<u64, kv::KvError> {
        self.check_now(now)?;
        let backend = self.backend.clone();
        self.timed(backend.sweep(now, limit)).await
    }
}

/// `HasData` for the `kv-backend` import: the data is a [`KvView`].
struct KvLink;

impl HasData for KvLink {
    type Data<'a> = KvView<'a>;
}

/// Adds the `kv-backend` import (and the types interface it uses) to
/// `linker`; `view` borrows a call's [`KvView`] from the store data.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, KvLink>(linker, view)?;
    super::pmcp::tasks::types::add_to_linker::<T, KvLink>(linker, view)
}

impl super::pmcp::tasks::types::Host for KvView<'_> {}

/// The listing as the WIT `listed-page`: its parts move, nothing is copied.
fn listed_page(listing: backend::Listing) -> kv::ListedPage {
    let (packed, lengths, versions, expiries) = listing.into_parts();
    kv::ListedPage {
        packed,
        lengths,
        versions,
        expiries,
    }
}
