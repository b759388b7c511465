//! The shared part of the sandbox: one engine with its instance pool, the
//! compiled and pre-linked component, the pool's slot registry and the
//! epoch ticker that drives time budgets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::call_state::CallState;
use super::contract::check_package_version;
use super::limits::EPOCH_TICK;
use super::pool::{lock, Drain};
use super::wasi::add_granted_wasi;
use crate::bindings::{kv_link, TaskStoreComponentPre, WIT_PACKAGE};
use crate::error::{BuildError, TaskError};
use crate::{EngineTuning, Interruption};

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

/// An engine and a compiled, pre-linked component: built once, shared by
/// every host that runs the same component.
pub(crate) struct Runtime {
    pub(super) engine: Engine,
    pub(super) tuning: EngineTuning,
    pub(super) pre: TaskStoreComponentPre<CallState>,
    ticker_stop: Arc<AtomicBool>,
    /// One permit per pooled instance slot.
    slots: Arc<Semaphore>,
    /// The warm instances of every host on this runtime, so that a call
    /// short of slots can reclaim idle ones.
    idle_pools: Mutex<Vec<Weak<dyn Drain>>>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// The runtime of the embedded component, compiled on first use.
    pub(crate) fn embedded() -> Result<Arc<Runtime>, BuildError> {
        static EMBEDDED: OnceLock<Arc<Runtime>> = OnceLock::new();
        if let Some(runtime) = EMBEDDED.get() {
            return Ok(runtime.clone());
        }
        let runtime = Arc::new(Runtime::new(
            crate::DEFAULT_COMPONENT,
            EngineTuning::default(),
        )?);
        Ok(EMBEDDED.get_or_init(|| runtime).clone())
    }

    /// Compiles and links `component_bytes`, checking it fits the contract.
    pub(crate) fn new(component_bytes: &[u8], tuning: EngineTuning) -> Result<Self, BuildError> {
        let engine = engine(tuning)?;
        let component = Component::new(&engine, component_bytes).map_err(|e| {
            BuildError::IncompatibleComponent(format!("not a valid wasm component: {e:#}"))
        })?;
        check_package_version(&engine, &component)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        add_granted_wasi(&mut linker).map_err(BuildError::engine)?;
        kv_link::add_to_linker(&mut linker, CallState::kv_view).map_err(BuildError::engine)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| BuildError::IncompatibleComponent(format!("{e:#}")))?;
        let pre = TaskStoreComponentPre::new(instance_pre).map_err(|e| {
            BuildError::IncompatibleComponent(format!(
                "it does not export the {WIT_PACKAGE} task store: {e:#}"
            ))
        })?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        if tuning.interruption == Interruption::Epoch {
            spawn_epoch_ticker(engine.clone(), ticker_stop.clone())
                .map_err(|e| BuildError::Engine(Box::new(e)))?;
        }
        Ok(Runtime {
            engine,
            tuning,
            pre,
            ticker_stop,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS as usize)),
            idle_pools: Mutex::new(Vec::new()),
        })
    }

    /// Takes an instance slot, first reclaiming other hosts' idle
    /// instances if none is free.
    pub(super) async fn slot(&self) -> Result<OwnedSemaphorePermit, TaskError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        self.drop_idle_instances();
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TaskError::internal("the sandbox runtime is shutting down"))
    }

    /// Instance slots taken now (live instances, busy or idle), in every
    /// host of the process.
    pub(super) fn slots_taken(&self) -> usize {
        (MAX_CONCURRENT_CALLS as usize).saturating_sub(self.slots.available_permits())
    }

    /// Whether a slot is free now (no call is waiting for one).
    pub(super) fn has_free_slot(&self) -> bool {
        self.slots.available_permits() > 0
    }

    fn drop_idle_instances(&self) {
        let pools: Vec<Arc<dyn Drain>> = lock(&self.idle_pools)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for pool in pools {
            pool.drain();
        }
    }

    /// Makes a host's idle instances reclaimable by other hosts' calls.
    pub(super) fn register(&self, pool: Arc<dyn Drain>) {
        let mut pools = lock(&self.idle_pools);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
    }
}

/// An engine tuned as asked: epoch interruption or fuel, and a pooling
/// allocator sized for [`MAX_CONCURRENT_CALLS`] instances or none.
fn engine(tuning: EngineTuning) -> Result<Engine, BuildError> {
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
    match tuning.interruption {
        Interruption::Epoch => config.epoch_interruption(true),
        Interruption::Fuel => config.consume_fuel(true),
    };
    if tuning.pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(BuildError::engine)
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
