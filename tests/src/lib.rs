//! The contract suite: every rule of the task store, written once against
//! the host API and run unchanged against each backend.
//!
//! A backend's test file supplies a [`BackendFactory`] and expands
//! [`contract_suite!`], which generates one `#[tokio::test]` per rule.

use std::sync::Arc;

use async_trait::async_trait;
use pmcp_tasks_host::backend::KvBackend;
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{StoreConfig, TaskHost};

pub mod bench;
pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod gated;
#[cfg(feature = "redis")]
pub mod redis;

/// Makes isolated backends for the suite: every call returns storage that
/// shares no data with any other call (a new map, key prefix or table).
#[async_trait]
pub trait BackendFactory: Send + Sync {
    /// A fresh, empty backend.
    async fn fresh(&self) -> Arc<dyn KvBackend>;
}

/// A host under test with the clock the test moves.
pub struct Fixture {
    /// The host, running the embedded component.
    pub host: TaskHost,
    /// The wall clock the component reads.
    pub clock: ManualClock,
}

impl Fixture {
    /// A host over a fresh backend from `factory`, with `config`.
    pub async fn new(factory: &dyn BackendFactory, config: StoreConfig) -> Fixture {
        let clock = ManualClock::starting_now();
        let host = TaskHost::builder()
            .backend(factory.fresh().await)
            .config(config)
            .clock(Arc::new(clock.clone()))
            .build()
            .await
            .expect("building the host");
        Fixture { host, clock }
    }
}

/// The in-memory backend: a new map per call.
pub struct InMemory;

#[async_trait]
impl BackendFactory for InMemory {
    async fn fresh(&self) -> Arc<dyn KvBackend> {
        Arc::new(pmcp_tasks_host::backend::InMemoryBackend::new())
    }
}

/// Generates one test per contract rule for the factory expression given.
#[macro_export]
macro_rules! contract_suite {
    ($factory:expr) => {
        $crate::contract_suite!(@tests $factory;
            create_returns_the_wire_shape,
            unlimited_ttl_is_null_on_the_wire,
            all_25_status_transitions,
            terminal_tasks_are_immutable,
            ttl_default_and_clamp,
            expiry_follows_the_injected_clock,
            concurrent_increments_lose_no_update,
            concurrent_merges_lose_no_key,
            quota_holds_under_50_concurrent_creates,
            expired_tasks_free_quota,
            pagination_walks_every_task_once,
            bad_cursors_are_invalid_params,
            page_size_is_clamped,
            adversarial_owner_ids_never_see_each_other,
            anonymous_owner_needs_opt_in,
            foreign_and_missing_tasks_look_the_same,
            oversized_and_malformed_input_is_refused_and_changes_nothing,
            complete_with_result_is_one_write,
            cancel_and_delete,
            variables_merge_with_null_deletion,
            cleanup_removes_only_expired
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::contract::$name(&$factory).await;
            }
        )*
    };
}
