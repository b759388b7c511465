//! The sandbox: a shared [`Runtime`] (engine, pool, compiled component)
//! and, per host, sessions on instances (fresh per call, or warm and reused:
//! [`InstanceStrategy`]) that grant the guest nothing but a host-controlled
//! wall clock and randomness, capped in memory and in guest running time.
//!
//! Modules: `runtime` (engine and slots), `pool` (warm instances, which the
//! runtime may drain), `call_state` (an instance's store data), `limits`
//! (memory cap, time budget: the leaf), `budget` (installing them on a
//! store), `wasi` (the grants), `diagnostics` (why a call failed),
//! `contract` (version check). No module imports one that imports it back.

mod budget;
mod call_state;
mod contract;
mod diagnostics;
mod limits;
mod pool;
mod runtime;
mod wasi;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::ResourceAny;
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtx;

pub(crate) use call_state::CallState;
use diagnostics::Diagnostics;
use pool::lock;
pub(crate) use runtime::Runtime;

use crate::backend::{KvBackend, KvError};
use crate::bindings::{GuestConfig, TaskStoreComponent};
use crate::clock::{Clock, WasiWallClock};
use crate::error::TaskError;
use crate::{ConflictBackoff, InstanceStrategy, Interruption, SandboxLimits};

/// Bytes of guest stderr kept to explain a trap (a panic message).
const STDERR_CAPTURE: usize = 4096;

/// Warm sessions of one host, ready for reuse.
type IdlePool = pool::IdlePool<Box<Session>>;

/// A runtime with the clock, limits and instance strategy of one host.
pub(crate) struct Sandbox {
    runtime: Arc<Runtime>,
    clock: Arc<dyn Clock>,
    limits: SandboxLimits,
    strategy: InstanceStrategy,
    backoff: ConflictBackoff,
    idle: Arc<IdlePool>,
}

/// A live instance with its opened store resource, for one call.
pub(crate) struct Session {
    pub(crate) store: Store<CallState>,
    pub(crate) bindings: TaskStoreComponent,
    pub(crate) handle: ResourceAny,
    diagnostics: Diagnostics,
    /// Calls this instance has served.
    uses: u32,
    /// Held until the instance is dropped (declared after `store`).
    _slot: OwnedSemaphorePermit,
}

/// The component instances behind a host right now, for an operator's
/// gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct InstanceCounts {
    /// Live instances in the process (every host shares one runtime):
    /// running a call or kept warm.
    pub live: usize,
    /// This host's warm instances waiting for a call.
    pub idle: usize,
}

/// Where one finished call spent its time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallCost {
    /// Time running guest code.
    pub(crate) guest: Duration,
    /// Time awaiting the backend.
    pub(crate) backend: Duration,
    /// Backend calls made.
    pub(crate) backend_calls: u32,
    /// Waits after lost races.
    pub(crate) backoffs: u32,
}

impl Session {
    /// Readies the store for another call: a fresh time budget.
    fn start_call(&mut self, limits: &SandboxLimits, how: Interruption) {
        self.store.data_mut().start_call();
        budget::arm(&mut self.store, limits, how);
        self.uses += 1;
    }

    fn cost(&self) -> CallCost {
        let state = self.store.data();
        CallCost {
            guest: state.guest_time(),
            backend: state.usage().waiting,
            backend_calls: state.usage().calls,
            backoffs: state.usage().backoffs,
        }
    }
}

impl Sandbox {
    /// How many instances are live and idle now.
    pub(crate) fn instances(&self) -> InstanceCounts {
        InstanceCounts {
            live: self.runtime.slots_taken(),
            idle: lock(&self.idle.sessions).len(),
        }
    }

    /// Runs `runtime` with `clock`, `limits` and `strategy`.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        clock: Arc<dyn Clock>,
        limits: SandboxLimits,
        strategy: InstanceStrategy,
        backoff: ConflictBackoff,
    ) -> Self {
        let idle = Arc::new(IdlePool::default());
        runtime.register(idle.clone());
        Sandbox {
            runtime,
            clock,
            limits,
            strategy,
            backoff,
            idle,
        }
    }

    /// A session for one call: a warm one if the strategy keeps them,
    /// otherwise a new instance with its store opened.
    pub(crate) async fn session(
        &self,
        backend: &Arc<dyn KvBackend>,
        config: &GuestConfig,
    ) -> Result<Box<Session>, TaskError> {
        let warm = lock(&self.idle.sessions).pop();
        let mut session = match warm {
            Some(session) => session,
            // Boxed: instantiation's future is large, and inline it would
            // grow (and be copied with) every call's future, warm ones too.
            None => Box::pin(self.instantiate(backend.clone(), config)).await?,
        };
        session.start_call(&self.limits, self.runtime.tuning.interruption);
        Ok(session)
    }

    /// Ends a call: converts its outcome (a backend failure keeps the
    /// backend's error as its source), reports its cost, and keeps the
    /// instance for reuse if the strategy says so and the call left it sound.
    pub(crate) fn finish<T, E: Into<TaskError>>(
        &self,
        mut session: Box<Session>,
        result: wasmtime::Result<Result<T, E>>,
    ) -> (Result<T, TaskError>, CallCost) {
        let sound = result.is_ok();
        let cost = session.cost();
        let (backend_error, refused) = session.store.data_mut().take_backend_outcome();
        let outcome = session
            .diagnostics
            .outcome(result)
            .map_err(|e| match (e, refused) {
                // The component broke the contract: not the backend's fault, not retryable.
                (_, Some(why)) => TaskError::internal(why),
                // Data the backend cannot read: retrying will not mend it.
                (TaskError::Backend { message, .. }, None)
                    if matches!(backend_error, Some(KvError::Corrupt(_))) =>
                {
                    TaskError::Internal {
                        message,
                        source: backend_error,
                    }
                }
                (TaskError::Backend { message, .. }, None) => TaskError::Backend {
                    message,
                    source: backend_error,
                },
                (other, None) => other,
            });
        if sound {
            self.release(session);
        }
        (outcome, cost)
    }

    /// Keeps a sound session for reuse, or drops it, per the strategy.
    /// With every slot taken it is dropped: a call may be waiting for one,
    /// and an idle instance must never keep it waiting.
    pub(crate) fn release(&self, session: Box<Session>) {
        if let InstanceStrategy::Reuse { max_idle, max_uses } = self.strategy {
            if session.uses < max_uses && self.runtime.has_free_slot() {
                let mut idle = lock(&self.idle.sessions);
                if idle.len() < max_idle {
                    idle.push(session);
                }
            }
        }
    }

    /// Instantiates the component and opens its store.
    async fn instantiate(
        &self,
        backend: Arc<dyn KvBackend>,
        config: &GuestConfig,
    ) -> Result<Box<Session>, TaskError> {
        let slot = self.runtime.slot().await?;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .wall_clock(WasiWallClock(self.clock.clone()))
            .stderr(stderr.clone())
            .build();
        let state = CallState::new(
            wasi,
            backend,
            self.clock.clone(),
            self.backoff,
            limits::MemoryLimiter::new(&self.limits),
        );
        let mut store = Store::new(&self.runtime.engine, state);
        budget::enforce(&mut store, &self.limits, self.runtime.tuning.interruption);
        let diagnostics = Diagnostics {
            stderr,
            limits: self.limits,
        };
        let instantiated = self.runtime.pre.instantiate_async(&mut store).await;
        let bindings = diagnostics.outcome(instantiated.map(Ok::<_, TaskError>))?;
        let opened = bindings
            .pmcp_tasks_task_store()
            .store()
            .call_open(&mut store, &config.0)
            .await;
        let handle = diagnostics.outcome(opened)?;
        Ok(Box::new(Session {
            store,
            bindings,
            handle,
            diagnostics,
            uses: 0,
            _slot: slot,
        }))
    }
}
