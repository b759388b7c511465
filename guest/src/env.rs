//! What the store reads from its surroundings: the clock and randomness.

use crate::error::StoreError;

/// Source of time and randomness. In the component both come from WASI,
/// so the host controls them.
pub trait Environment {
    /// Microseconds since the Unix epoch.
    fn now_us(&self) -> u64;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        self.now_us() / 1_000
    }
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), StoreError>;
}

/// The system wall clock and the OS random source (WASI's in the component).
#[derive(Debug, Default, Clone, Copy)]
#[expect(clippy::exhaustive_structs, reason = "a unit struct: nothing to add")]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn now_us(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), StoreError> {
        getrandom::fill(buf)
            .map_err(|e| StoreError::Internal(format!("no randomness available: {e}")))
    }
}
