//! Configuration of the task store and of the sandbox that runs it.

use std::time::Duration;

/// Task-store policy, passed to the component when it is opened; the
/// component refuses an inconsistent one when the host is built.
///
/// Start from [`StoreConfig::default`] and set the fields you need:
///
/// ```
/// # use pmcp_tasks_host::StoreConfig;
/// let mut config = StoreConfig::default();
/// config.max_tasks_per_owner = Some(100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// ttl applied when a create asks for none; `None` = unlimited.
    pub default_ttl: Option<Duration>,
    /// Upper bound for any ttl (requests above it are clamped); `None` = no bound.
    pub max_ttl: Option<Duration>,
    /// Poll interval hint returned with every task.
    pub poll_interval: Option<Duration>,
    /// Maximum live (unexpired) tasks per owner; `None` = unlimited.
    pub max_tasks_per_owner: Option<u32>,
    /// Page size of a list that names none.
    pub default_page_size: u32,
    /// Largest page a list returns (larger requests are clamped).
    pub max_page_size: u32,
    /// Largest serialized variables object, in bytes.
    pub max_variables_bytes: u32,
    /// Largest serialized result, tool arguments, input request params or
    /// answer, in bytes (16 MiB).
    pub max_result_bytes: u32,
    /// Largest backend item, in bytes (350 KiB: DynamoDB items are capped
    /// at 400 KB). A task whose record is larger keeps its body in parts of
    /// this size, written before the task points to them.
    pub max_record_bytes: u32,
    /// Largest stored task, head and body together, in bytes (20 MiB).
    pub max_task_bytes: u32,
    /// Deepest JSON nesting accepted in variables and results (at most 127).
    pub max_json_depth: u32,
    /// Longest status message or request method, and longest string or key
    /// in the variables, in bytes (a string in a result or arguments is
    /// bounded by `max_result_bytes`).
    pub max_string_bytes: u32,
    /// Longest owner id, in bytes.
    pub max_owner_bytes: u32,
    /// Whether the empty owner id is accepted.
    pub allow_anonymous: bool,
    /// Secret mixed into list cursors, so that clients cannot mint them.
    /// Empty (the default): each host draws a random one when it is built,
    /// so a cursor is only good on the host that issued it. Replicas that
    /// serve one deployment (any of them may receive the next page's
    /// request) must all be configured with the same secret.
    pub cursor_secret: Vec<u8>,
    /// Attempts for one read-validate-write under contention before a conflict.
    pub max_cas_attempts: u32,
}

impl Default for StoreConfig {
    /// 1 h default ttl, 24 h max, 1 s poll interval, 1 000 live tasks per
    /// owner, pages of 50 (at most 100), 64 KiB variables, 256 KiB results,
    /// 350 KB records (under DynamoDB's 400 KB item cap), depth 32, 64 KiB
    /// strings, 16 KiB owner ids, no anonymous owner, 16 CAS attempts.
    fn default() -> Self {
        use pmcp_tasks_contract::defaults as d;
        StoreConfig {
            default_ttl: Some(Duration::from_millis(d::DEFAULT_TTL_MS)),
            max_ttl: Some(Duration::from_millis(d::MAX_TTL_MS)),
            poll_interval: Some(Duration::from_millis(d::POLL_INTERVAL_MS)),
            max_tasks_per_owner: Some(d::MAX_TASKS_PER_OWNER),
            default_page_size: d::DEFAULT_PAGE_SIZE,
            max_page_size: d::MAX_PAGE_SIZE,
            max_variables_bytes: d::MAX_VARIABLES_BYTES,
            max_result_bytes: d::MAX_RESULT_BYTES,
            max_record_bytes: d::MAX_RECORD_BYTES,
            max_task_bytes: d::MAX_TASK_BYTES,
            max_json_depth: d::MAX_JSON_DEPTH,
            max_string_bytes: d::MAX_STRING_BYTES,
            max_owner_bytes: d::MAX_OWNER_BYTES,
            allow_anonymous: d::ALLOW_ANONYMOUS,
            cursor_secret: Vec::new(),
            max_cas_attempts: d::MAX_CAS_ATTEMPTS,
        }
    }
}

/// What one guest call may consume before the host stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxLimits {
    /// Largest linear memory of one instance, in bytes (at most 1 GiB, the
    /// size of a pooled memory slot).
    pub max_memory_bytes: usize,
    /// Time one call may spend running guest code (time waiting for the
    /// backend or for the executor does not count). A guest that loops is
    /// interrupted after it.
    pub time_budget: Duration,
}

impl SandboxLimits {
    /// Limits of `max_memory_bytes` of linear memory and `time_budget` of
    /// guest running time per call.
    pub fn new(max_memory_bytes: usize, time_budget: Duration) -> Self {
        SandboxLimits {
            max_memory_bytes,
            time_budget,
        }
    }
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            // A full page of the largest items (101 × 350 KB) read at
            // once must fit in half of it, and a task of the largest size
            // (20 MiB, its result 16 MiB) is held a few times over while
            // it is checked, put in canonical form and written.
            max_memory_bytes: 256 << 20,
            time_budget: Duration::from_secs(5),
        }
    }
}

/// How the engine runs guest code. The defaults are the choices the
/// benchmark's engine figures (`pmcp-tasks-bench`, scenario `engine`)
/// support; the other settings exist to measure them against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineTuning {
    /// Pre-reserved instance slots (memories, tables, fiber stacks) reused
    /// from call to call, instead of mapping them for each instance.
    pub pooling: bool,
    /// How a guest that runs past its time budget is stopped.
    pub interruption: Interruption,
}

impl Default for EngineTuning {
    fn default() -> Self {
        EngineTuning {
            pooling: true,
            interruption: Interruption::Epoch,
        }
    }
}

/// How the time budget of [`SandboxLimits`] is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interruption {
    /// A ticker advances the engine's epoch; guest code checks it at loop
    /// heads and function entries (a load and a compare) and traps once
    /// its call has run longer than the budget.
    Epoch,
    /// Guest code counts the instructions it runs (fuel) and traps when
    /// the call's allowance, the budget at [`FUEL_PER_MS`] a millisecond,
    /// is spent: deterministic, but it counts everywhere.
    Fuel,
}

/// Fuel granted per millisecond of time budget under [`Interruption::Fuel`]
/// (about what cranelift-compiled code runs on this class of machine).
pub const FUEL_PER_MS: u64 = 1_000_000;

/// How the host gets an instance of the component for a call.
///
/// Either way a call runs alone on its instance, and an instance whose call
/// trapped, timed out or hit the memory cap is dropped, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceStrategy {
    /// Instantiate for every call and drop the instance after it: nothing a
    /// call leaves in guest memory is seen by the next. Costs one
    /// instantiation (pooled slots, no mmap) per call.
    FreshPerCall,
    /// Keep up to `max_idle` warm instances per host and reuse them, each
    /// for at most `max_uses` calls. Skips instantiation; guest memory
    /// persists between the calls of one host (never across hosts). Idle
    /// instances are dropped when another host needs their slots.
    Reuse {
        /// Warm instances kept between calls.
        max_idle: usize,
        /// Calls after which an instance is retired, bounding the effect
        /// of guest heap fragmentation.
        max_uses: u32,
    },
}

impl Default for InstanceStrategy {
    fn default() -> Self {
        InstanceStrategy::Reuse {
            max_idle: 64,
            max_uses: 10_000,
        }
    }
}

/// How long the component waits before retrying a write that lost a race
/// (another writer changed the record, or the owner's counter, first).
///
/// The `n`-th wait is drawn between half and all of `min(max, base × 2^(n-1))`,
/// so writers contending for one record spread out instead of retrying in
/// lockstep (on DynamoDB, concurrent transactions on one counter cancel
/// each other). The wait counts as backend time, not guest time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConflictBackoff {
    /// The first wait's upper bound.
    pub base: Duration,
    /// The largest upper bound of any wait.
    pub max: Duration,
}

impl ConflictBackoff {
    /// Waits growing from `base` up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        ConflictBackoff { base, max }
    }

    /// No wait at all: retries follow each other at once.
    pub fn none() -> Self {
        ConflictBackoff::new(Duration::ZERO, Duration::ZERO)
    }

    /// The wait before the retry that follows the `attempt`-th lost race
    /// (from 1), given a random `draw` in `0..=u32::MAX`.
    pub(crate) fn delay(&self, attempt: u32, draw: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << doublings).min(self.max);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(f64::from(draw) / f64::from(u32::MAX))
    }
}

impl Default for ConflictBackoff {
    /// From 2 ms up to 100 ms.
    fn default() -> Self {
        ConflictBackoff::new(Duration::from_millis(2), Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let backoff = ConflictBackoff::new(Duration::from_millis(10), Duration::from_millis(50));
        let ms = Duration::from_millis;
        assert_eq!(backoff.delay(1, 0), ms(5));
        assert_eq!(backoff.delay(1, u32::MAX), ms(10));
        assert_eq!(backoff.delay(2, 0), ms(10));
        assert_eq!(backoff.delay(3, u32::MAX), ms(40));
        assert_eq!(backoff.delay(4, u32::MAX), ms(50), "capped");
        assert_eq!(backoff.delay(u32::MAX, 0), ms(25), "no overflow");
        assert_eq!(ConflictBackoff::none().delay(7, u32::MAX), Duration::ZERO);
    }
}
