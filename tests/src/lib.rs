//! The contract suite: every rule of the task store, written once against
//! the host API and run unchanged against each backend.
//!
//! Three suites, each declared once with [`rule_list!`]: [`contract`] (the
//! task store's rules, through the host and the component),
//! [`worker_contract`] (running tasks: outcomes, input, cancellation,
//! leases, across replicas) and [`kv_conformance`] (the `KvBackend`
//! contract, on the backend alone).
//! A backend's test file supplies a [`BackendFactory`] and expands
//! `contract_suite!` and `kv_conformance_suite!`, which generate one
//! `#[tokio::test]` per rule.

#![expect(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "the suites' harness: its types are built and matched by this workspace's tests only"
)]

use std::sync::Arc;

use async_trait::async_trait;
use pmcp_tasks_host::backend::KvBackend;
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{StoreConfig, TaskHost};

pub mod callgrind;
pub mod conformance;
pub mod contract;
pub mod corpus;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod fault_proxy;
pub mod intercepted;
pub mod jwt;
pub mod kv_conformance;
pub mod mcp_http;
pub mod model;
pub mod otlp;
pub mod payloads;
pub mod read_meter;
#[cfg(feature = "redis")]
pub mod redis;
pub mod replica;
pub mod rmcp_client;
pub mod round_robin;
pub mod stdio;
pub mod worker_contract;

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

/// Declares a suite's rules once. For a module whose rules are private
/// `async fn(&dyn BackendFactory)`, generates public entry points
/// (`<module>::run::<rule>`) and an exported macro `$suite!(factory)` that
/// expands to one `#[tokio::test]` per rule. A rule missing from the list
/// is never called, which `-D warnings` (dead code) turns into a build
/// error: no rule can silently drop out of any backend's run.
///
/// Invoked as `rule_list! { $ suite_macro, module; rule_a, rule_b }` (the
/// leading `$` lets the generated macro have metavariables of its own).
#[macro_export]
macro_rules! rule_list {
    ($d:tt $suite:ident, $module:ident; $($name:ident),* $(,)?) => {
        /// Entry points of every rule of this suite (see [`crate::rule_list`]).
        pub mod run {
            $(
                #[doc = concat!("Runs the rule `", stringify!($name), "`.")]
                pub async fn $name(factory: &dyn $crate::BackendFactory) {
                    super::$name(factory).await
                }
            )*
        }

        #[doc = concat!("Generates one test per rule of `", stringify!($module), "` for a backend factory expression.")]
        #[macro_export]
        macro_rules! $suite {
            ($d factory:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        $crate::$module::run::$name(&$d factory).await;
                    }
                )*
            };
        }
    };
}
