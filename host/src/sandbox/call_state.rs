//! The store data of one instance: what a guest call may reach (WASI
//! context, the backend) and how long it has run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::MemoryLimiter;
use crate::backend::KvBackend;
use crate::bindings::kv_link::{BackendUse, KvView};
use crate::clock::Clock;
use crate::ConflictBackoff;

/// State of one instance, reset at the start of every call.
pub(crate) struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    backend: Arc<dyn KvBackend>,
    clock: Arc<dyn Clock>,
    backoff: ConflictBackoff,
    pub(super) limiter: MemoryLimiter,
    /// Backend traffic of the current call (its time is not guest time).
    usage: BackendUse,
    /// Nanoseconds spent yielded to the executor at epoch ticks (written by
    /// the yield future, which cannot borrow the store): not guest time either,
    /// so a busy executor never makes a guest look slow.
    yielded: Arc<AtomicU64>,
    started: Instant,
}

impl CallState {
    /// State for a new instance over `backend`.
    pub(super) fn new(
        wasi: WasiCtx,
        backend: Arc<dyn KvBackend>,
        clock: Arc<dyn Clock>,
        backoff: ConflictBackoff,
        limiter: MemoryLimiter,
    ) -> Self {
        CallState {
            wasi,
            table: ResourceTable::new(),
            backend,
            clock,
            backoff,
            limiter,
            usage: BackendUse::default(),
            yielded: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Starts the accounting of a new call.
    pub(super) fn start_call(&mut self) {
        self.usage = BackendUse::default();
        self.yielded.store(0, Ordering::Relaxed);
        self.started = Instant::now();
    }

    /// The view the `kv-backend` import works on.
    pub(super) fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            backend: &self.backend,
            usage: &mut self.usage,
            clock: &*self.clock,
            backoff: self.backoff,
        }
    }

    /// Where the current call's time went.
    pub(super) fn usage(&self) -> &BackendUse {
        &self.usage
    }

    /// Takes what the current call's backend traffic left to report: the
    /// last backend error, and the host's refusal of a call, if any.
    pub(super) fn take_backend_outcome(
        &mut self,
    ) -> (Option<crate::backend::KvError>, Option<String>) {
        (self.usage.last_error.take(), self.usage.refused.take())
    }

    /// Guest running time of the current call: wall time less backend
    /// waits and executor yields.
    pub(super) fn guest_time(&self) -> Duration {
        let yielded = Duration::from_nanos(self.yielded.load(Ordering::Relaxed));
        self.started
            .elapsed()
            .saturating_sub(self.usage.waiting)
            .saturating_sub(yielded)
    }

    /// The counter the epoch callback's yield future adds its time to.
    pub(super) fn yield_counter(&self) -> Arc<AtomicU64> {
        self.yielded.clone()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
