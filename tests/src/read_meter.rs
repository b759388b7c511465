//! [`ReadMeter`]: any backend, with a count of the bytes its reads return,
//! so a test can show what an operation moved out of the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pmcp_tasks_host::backend::KvBackend;

use crate::intercepted::{Intercepted, Interceptor};

/// Counts the value bytes that `get` (heads and bodies) and `list` (item
/// ids and heads) return.
pub struct ReadMeter {
    bytes: AtomicU64,
}

/// A backend whose reads are metered.
pub type MeteredBackend = Intercepted<ReadMeter>;

impl ReadMeter {
    /// Meters `inner`, starting at zero.
    pub fn new(inner: Arc<dyn KvBackend>) -> Arc<MeteredBackend> {
        let meter = ReadMeter {
            bytes: AtomicU64::new(0),
        };
        Intercepted::over(inner, meter)
    }

    /// Bytes read since the last call (and starts counting again).
    pub fn take(&self) -> u64 {
        self.bytes.swap(0, Ordering::SeqCst)
    }
}

impl Interceptor for ReadMeter {
    fn read(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::SeqCst);
    }
}
