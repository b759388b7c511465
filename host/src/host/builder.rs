//! [`TaskHostBuilder`]: a [`TaskHost`]'s settings, checked together at `build`.

use std::sync::Arc;

use super::TaskHost;
use crate::backend::{InMemoryBackend, KvBackend};
use crate::bindings::GuestConfig;
use crate::clock::{Clock, SystemClock};
use crate::component::ComponentSource;
use crate::error::{BuildError, TaskError};
use crate::sandbox::Sandbox;
use crate::{ConflictBackoff, EngineTuning, InstanceStrategy, SandboxLimits, StoreConfig};

/// Builds a [`TaskHost`]; every setting has a default.
#[derive(Default)]
pub struct TaskHostBuilder {
    backend: Option<Arc<dyn KvBackend>>,
    config: StoreConfig,
    limits: SandboxLimits,
    clock: Option<Arc<dyn Clock>>,
    component: ComponentSource,
    instances: InstanceStrategy,
    backoff: ConflictBackoff,
    engine: EngineTuning,
}

impl TaskHost {
    /// A builder with defaults: in-memory backend, system clock, embedded component.
    pub fn builder() -> TaskHostBuilder {
        TaskHostBuilder::default()
    }
}

impl TaskHostBuilder {
    /// Storage backend (default: a new [`InMemoryBackend`]).
    pub fn backend(mut self, backend: Arc<dyn KvBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Task-store policy.
    pub fn config(mut self, config: StoreConfig) -> Self {
        self.config = config;
        self
    }

    /// Memory and time limits of the sandbox.
    pub fn limits(mut self, limits: SandboxLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Fresh or reused instances (default: [`InstanceStrategy::default`]).
    pub fn instances(mut self, strategy: InstanceStrategy) -> Self {
        self.instances = strategy;
        self
    }

    /// Waits between retries of a write that lost a race (default:
    /// [`ConflictBackoff::default`]).
    pub fn conflict_backoff(mut self, backoff: ConflictBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wall clock the component sees (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How the engine runs guest code (default: [`EngineTuning::default`]).
    /// A host with other settings compiles the component for itself
    /// instead of sharing the process-wide compiled embedded component.
    pub fn engine(mut self, tuning: EngineTuning) -> Self {
        self.engine = tuning;
        self
    }

    /// The component to run (default: the embedded one).
    pub fn component(mut self, component: ComponentSource) -> Self {
        self.component = component;
        self
    }

    /// Compiles the component and checks the configuration with it once.
    pub async fn build(self) -> Result<TaskHost, BuildError> {
        let runtime = self.component.runtime(self.engine)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let sandbox = Sandbox::new(runtime, clock, self.limits, self.instances, self.backoff);
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(InMemoryBackend::new()));
        check_page_fits_memory(&self.config, &self.limits)?;
        let mut store_config = self.config;
        if store_config.cursor_secret.is_empty() {
            store_config.cursor_secret = random_cursor_secret()?;
        }
        let config = GuestConfig::from(&store_config);
        // Open once now so a bad configuration fails here, not on first use.
        let session = sandbox
            .session(&backend, &config)
            .await
            .map_err(BuildError::Config)?;
        sandbox.release(session);
        Ok(TaskHost::assemble(sandbox, backend, config))
    }
}

/// Refuses a configuration whose largest page could not be read within the
/// guest's memory: a page and its look-ahead item, at the largest record
/// size, must fit in half the memory cap (the rest is for the copies that
/// decoding makes), or a legal list request would fail with a memory error.
fn check_page_fits_memory(config: &StoreConfig, limits: &SandboxLimits) -> Result<(), BuildError> {
    let page_bytes = (u64::from(config.max_page_size) + 1) * u64::from(config.max_record_bytes);
    let budget = limits.max_memory_bytes as u64 / 2;
    if page_bytes <= budget {
        return Ok(());
    }
    Err(BuildError::Config(TaskError::InvalidParams(format!(
        "a page of max-page-size {} (+1 look-ahead) records of max-record-bytes {} is {page_bytes} bytes, \
         over half the guest memory limit of {} bytes; lower either, or raise SandboxLimits::max_memory_bytes",
        config.max_page_size, config.max_record_bytes, limits.max_memory_bytes
    ))))
}

/// A secret for list cursors when the configuration names none: without
/// one, anybody who knows the cursor format could mint cursors. Each host
/// then has its own, so replicas behind one load balancer must share a
/// configured secret (see [`StoreConfig::cursor_secret`]).
fn random_cursor_secret() -> Result<Vec<u8>, BuildError> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| BuildError::Randomness(Box::new(e)))?;
    Ok(secret)
}
