//! Turning a failed guest call into a [`TaskError`] that says why.

use wasmtime::Trap;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::limits::{MemoryLimitHit, TimeBudgetHit};
use crate::error::TaskError;
use crate::SandboxLimits;

/// What explains a failed guest call: the limits and the guest's stderr.
pub(super) struct Diagnostics {
    pub(super) stderr: MemoryOutputPipe,
    pub(super) limits: SandboxLimits,
}

impl Diagnostics {
    /// The call's own error, or an explanation of its trap.
    pub(super) fn outcome<T, E: Into<TaskError>>(
        &self,
        result: wasmtime::Result<Result<T, E>>,
    ) -> Result<T, TaskError> {
        match result {
            Ok(inner) => inner.map_err(Into::into),
            Err(trap) => Err(self.explain(trap)),
        }
    }

    fn explain(&self, error: wasmtime::Error) -> TaskError {
        let out_of_fuel = error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel);
        if out_of_fuel || error.downcast_ref::<TimeBudgetHit>().is_some() {
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
