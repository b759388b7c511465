//! The limits of [`SandboxLimits`] as wasmtime enforces them: the memory
//! cap (a resource limiter), the errors of both limits, the epoch tick and
//! the fuel of a time budget. Installing them on a store is `budget`'s.

use std::time::Duration;

use crate::{SandboxLimits, FUEL_PER_MS};

/// How often the engine's epoch advances; the granularity of the time budget.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Refuses memory growth past the cap with an error the host recognizes.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
}

impl MemoryLimiter {
    /// A limiter enforcing `limits`.
    pub(super) fn new(limits: &SandboxLimits) -> Self {
        MemoryLimiter {
            max_bytes: limits.max_memory_bytes,
        }
    }
}

/// A guest asked for more memory than its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub(super) struct MemoryLimitHit(pub(super) usize);

/// A guest ran past its time budget.
#[derive(Debug, thiserror::Error)]
#[error("time budget of {0:?} exceeded")]
pub(super) struct TimeBudgetHit(pub(super) Duration);

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

/// The fuel of `time` at [`FUEL_PER_MS`].
pub(super) fn fuel_for(time: Duration) -> u64 {
    u64::try_from(time.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(FUEL_PER_MS)
}
