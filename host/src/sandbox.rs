//! The sandbox: one wasmtime engine and pre-linked component, and stores
//! (fresh per call, or warm and reused per host: [`InstanceStrategy`]) that
//! grant the guest nothing but a host-controlled wall clock and randomness,
//! capped in memory and in guest running time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::backend::KvBackend;
use crate::bindings::{TaskStoreComponent, TaskStoreComponentPre, WIT_PACKAGE};
use crate::clock::{Clock, WasiWallClock};
use crate::error::{BuildError, TaskError};
use crate::{InstanceStrategy, SandboxLimits};

/// How often the engine's epoch advances; the granularity of the time budget.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of guest stderr kept to explain a trap (a panic message).
const STDERR_CAPTURE: usize = 4096;
/// Guest calls that run at once per runtime; further calls wait for a slot.
/// Instance slots (memories, fiber stacks) are pooled and reused, so a call
/// costs no mmap/munmap.
const MAX_CONCURRENT_CALLS: u32 = 1000;
/// Bytes of a freed instance slot's memory reset with `memset` (only its
/// dirty pages, where the kernel can tell) instead of returned to the
/// kernel: a fresh instance then takes no page faults on its first pages.
const KEEP_RESIDENT: usize = 1 << 20;
/// Largest linear memory any instance may have; `SandboxLimits` caps lower.
const POOL_MAX_MEMORY: usize = 1 << 30;

/// State of one guest call.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) backend: Arc<dyn KvBackend>,
    limiter: MemoryLimiter,
    /// Time spent awaiting the backend, which does not count as guest time.
    waiting: Duration,
    /// Nanoseconds spent yielded to the executor at epoch ticks (written by
    /// the yield future, which cannot borrow the store): not guest time either,
    /// so a busy executor never makes a guest look slow.
    yielded: Arc<AtomicU64>,
    started: Instant,
}

impl CallState {
    /// Awaits a backend call, keeping its duration off the guest's budget.
    pub(crate) async fn timed<T>(&mut self, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        self.waiting += start.elapsed();
        out
    }

    fn guest_time(&self) -> Duration {
        let yielded = Duration::from_nanos(self.yielded.load(Ordering::Relaxed));
        self.started
            .elapsed()
            .saturating_sub(self.waiting)
            .saturating_sub(yielded)
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

/// Refuses memory growth past the cap with an error the host recognizes.
struct MemoryLimiter {
    max_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
struct MemoryLimitHit(usize);

#[derive(Debug, thiserror::Error)]
#[error("time budget of {0:?} exceeded")]
struct TimeBudgetHit(Duration);

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(wasmtime::Error::new(MemoryLimitHit(self.max_bytes)));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// An engine and a compiled, pre-linked component: built once, shared by
/// every host that runs the same component.
pub(crate) struct Runtime {
    engine: Engine,
    pre: TaskStoreComponentPre<CallState>,
    ticker_stop: Arc<AtomicBool>,
    /// One permit per pooled instance slot.
    slots: Arc<Semaphore>,
    /// The warm instances of every host on this runtime, so that a call
    /// short of slots can reclaim idle ones.
    idle_pools: Mutex<Vec<Weak<IdlePool>>>,
}

/// Warm sessions of one host, ready for reuse.
type IdlePool = Mutex<Vec<Session>>;

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A runtime with the clock, limits and instance strategy of one host.
pub(crate) struct Sandbox {
    runtime: Arc<Runtime>,
    clock: Arc<dyn Clock>,
    limits: SandboxLimits,
    strategy: InstanceStrategy,
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

impl Session {
    /// Readies the store for another call: a fresh time budget.
    fn start_call(&mut self) {
        let state = self.store.data_mut();
        state.waiting = Duration::ZERO;
        state.yielded.store(0, Ordering::Relaxed);
        state.started = Instant::now();
        self.store.set_epoch_deadline(1);
        self.uses += 1;
    }
}

/// What explains a failed guest call: the limits and the guest's stderr.
struct Diagnostics {
    stderr: MemoryOutputPipe,
    limits: SandboxLimits,
}

impl Diagnostics {
    fn outcome<T, E: Into<TaskError>>(
        &self,
        result: wasmtime::Result<Result<T, E>>,
    ) -> Result<T, TaskError> {
        match result {
            Ok(inner) => inner.map_err(Into::into),
            Err(trap) => Err(self.explain(trap)),
        }
    }

    fn explain(&self, error: wasmtime::Error) -> TaskError {
        if error.downcast_ref::<TimeBudgetHit>().is_some() {
            return TaskError::GuestTimeout(self.limits.time_budget);
        }
        if error.downcast_ref::<MemoryLimitHit>().is_some() {
            return TaskError::GuestMemoryLimit(self.limits.max_memory_bytes);
        }
        let stderr = String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned();
        let what = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        TaskError::GuestTrap(if stderr.is_empty() {
            what
        } else {
            format!("{what}; guest said: {stderr}")
        })
    }
}

impl Runtime {
    /// The runtime of the embedded component, compiled on first use.
    pub(crate) fn embedded() -> Result<Arc<Runtime>, BuildError> {
        static EMBEDDED: OnceLock<Arc<Runtime>> = OnceLock::new();
        if let Some(runtime) = EMBEDDED.get() {
            return Ok(runtime.clone());
        }
        let runtime = Arc::new(Runtime::new(crate::DEFAULT_COMPONENT)?);
        Ok(EMBEDDED.get_or_init(|| runtime).clone())
    }

    /// Compiles and links `component_bytes`, checking it fits the contract.
    pub(crate) fn new(component_bytes: &[u8]) -> Result<Self, BuildError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_CALLS)
            .total_core_instances(MAX_CONCURRENT_CALLS * 4)
            .total_memories(MAX_CONCURRENT_CALLS)
            .total_tables(MAX_CONCURRENT_CALLS * 4)
            .total_stacks(MAX_CONCURRENT_CALLS)
            .max_memory_size(POOL_MAX_MEMORY)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| BuildError::Engine(format!("{e:#}")))?;
        let component = Component::new(&engine, component_bytes).map_err(|e| {
            BuildError::IncompatibleComponent(format!("not a valid wasm component: {e:#}"))
        })?;
        check_package_version(&engine, &component)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        add_granted_wasi(&mut linker).map_err(|e| BuildError::Engine(format!("{e:#}")))?;
        TaskStoreComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| BuildError::Engine(format!("{e:#}")))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| BuildError::IncompatibleComponent(format!("{e:#}")))?;
        let pre = TaskStoreComponentPre::new(instance_pre).map_err(|e| {
            BuildError::IncompatibleComponent(format!(
                "it does not export the {WIT_PACKAGE} task store: {e:#}"
            ))
        })?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone())
            .map_err(|e| BuildError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            pre,
            ticker_stop,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS as usize)),
            idle_pools: Mutex::new(Vec::new()),
        })
    }

    /// Takes an instance slot, first reclaiming other hosts' idle
    /// instances if none is free.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, TaskError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        self.drop_idle_instances();
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TaskError::Internal("the sandbox runtime is shutting down".into()))
    }

    fn drop_idle_instances(&self) {
        let pools: Vec<Arc<IdlePool>> = lock(&self.idle_pools)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for pool in pools {
            let idle = std::mem::take(&mut *lock(&pool));
            drop(idle);
        }
    }

    fn register(&self, pool: &Arc<IdlePool>) {
        let mut pools = lock(&self.idle_pools);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a single push, pop or take).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sandbox {
    /// Runs `runtime` with `clock`, `limits` and `strategy`.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        clock: Arc<dyn Clock>,
        limits: SandboxLimits,
        strategy: InstanceStrategy,
    ) -> Self {
        let idle = Arc::new(Mutex::new(Vec::new()));
        runtime.register(&idle);
        Sandbox {
            runtime,
            clock,
            limits,
            strategy,
            idle,
        }
    }

    /// A session for one call: a warm one if the strategy keeps them,
    /// otherwise a new instance with its store opened.
    pub(crate) async fn session(
        &self,
        backend: &Arc<dyn KvBackend>,
        config: &crate::bindings::pmcp::tasks::types::StoreConfig,
    ) -> Result<Session, TaskError> {
        let warm = lock(&self.idle).pop();
        let mut session = match warm {
            Some(session) => session,
            None => self.instantiate(backend.clone(), config).await?,
        };
        session.start_call();
        Ok(session)
    }

    /// Ends a call: converts its outcome and keeps the instance for reuse
    /// if the strategy says so and the call left it sound.
    pub(crate) fn finish<T, E: Into<TaskError>>(
        &self,
        session: Session,
        result: wasmtime::Result<Result<T, E>>,
    ) -> Result<T, TaskError> {
        let sound = result.is_ok();
        let outcome = session.diagnostics.outcome(result);
        if sound {
            self.release(session);
        }
        outcome
    }

    /// Keeps a sound session for reuse, or drops it, per the strategy.
    /// With every slot taken it is dropped: a call may be waiting for one,
    /// and an idle instance must never keep it waiting.
    pub(crate) fn release(&self, session: Session) {
        if let InstanceStrategy::Reuse { max_idle, max_uses } = self.strategy {
            if session.uses < max_uses && self.runtime.slots.available_permits() > 0 {
                let mut idle = lock(&self.idle);
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
        config: &crate::bindings::pmcp::tasks::types::StoreConfig,
    ) -> Result<Session, TaskError> {
        let slot = self.runtime.slot().await?;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .wall_clock(WasiWallClock(self.clock.clone()))
            .stderr(stderr.clone())
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            backend,
            limiter: MemoryLimiter {
                max_bytes: self.limits.max_memory_bytes,
            },
            waiting: Duration::ZERO,
            yielded: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        };
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|state| &mut state.limiter);
        let budget = self.limits.time_budget;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().guest_time() > budget {
                return Err(wasmtime::Error::new(TimeBudgetHit(budget)));
            }
            let yielded = ctx.data().yielded.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let start = Instant::now();
                    tokio::task::yield_now().await;
                    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    yielded.fetch_add(nanos, Ordering::Relaxed);
                }),
            ))
        });
        let diagnostics = Diagnostics {
            stderr,
            limits: self.limits,
        };
        let instantiated = self.runtime.pre.instantiate_async(&mut store).await;
        let bindings = diagnostics.outcome(instantiated.map(Ok::<_, TaskError>))?;
        let opened = bindings
            .pmcp_tasks_task_store()
            .store()
            .call_open(&mut store, config)
            .await;
        let handle = diagnostics.outcome(opened)?;
        Ok(Session {
            store,
            bindings,
            handle,
            diagnostics,
            uses: 0,
            _slot: slot,
        })
    }
}

/// `HasData` for the WASI I/O interfaces, which only need the resource table.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links only the WASI interfaces Rust's std needs, none of which reaches
/// outside the sandbox: clocks (the host's), randomness, and stdio streams
/// that are empty (stdin, stdout) or captured (stderr). No filesystem or
/// sockets: a component importing them is refused at load.
fn add_granted_wasi(l: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    use wasmtime_wasi_io::bindings::wasi::io;

    io::error::add_to_linker::<_, HasIo>(l, |t| &mut t.table)?;
    io::poll::add_to_linker::<_, HasIo>(l, |t| &mut t.table)?;
    io::streams::add_to_linker::<_, HasIo>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, CallState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, CallState::clocks)?;
    random::random::add_to_linker::<_, WasiRandom>(l, CallState::random)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    Ok(())
}

/// Refuses a component built against another version of the WIT package.
fn check_package_version(engine: &Engine, component: &Component) -> Result<(), BuildError> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .chain(ty.exports(engine))
        .map(|(name, _)| name.to_owned())
        .collect();
    let ours = WIT_PACKAGE.split('@').next().unwrap_or(WIT_PACKAGE);
    let other = names.iter().find_map(|name| {
        let (package, version) = name.split_once('@')?;
        let package = package.rsplit_once('/').map_or(package, |(p, _)| p);
        (package == ours && !WIT_PACKAGE.ends_with(&format!("@{version}")))
            .then(|| version.to_owned())
    });
    match other {
        Some(version) => Err(BuildError::IncompatibleComponent(format!(
            "it was built for {ours}@{version}, but this host implements {WIT_PACKAGE}"
        ))),
        None => Ok(()),
    }
}

/// Advances the engine's epoch until `stop` is set, driving time budgets.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pmcp-tasks-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
}
