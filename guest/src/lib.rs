//! MCP Tasks domain logic for pmcp-tasks-wasm.
//!
//! Plain Rust over two small traits, [`kv::Kv`] (storage) and
//! [`env::Environment`] (clock and randomness), so it is unit-tested and
//! benchmarked natively. Built for `wasm32`, the `component` module
//! exports it as the `pmcp:tasks` component, with storage imported from
//! the host through the WIT `kv-backend` interface.

#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the component's allocator: natively only its tests run it"
    )
)]
mod block_cache;
#[cfg_attr(
    not(target_family = "wasm"),
    allow(
        dead_code,
        reason = "the component's `memcmp`: natively only its tests run it"
    )
)]
mod bytes;
mod config;
mod cursor;
mod env;
mod error;
mod ids;
mod json;
mod kv;
mod leases;
mod outcome;
mod queue;
mod record;
mod retry;
mod status;
mod store;
mod time;

#[cfg(test)]
mod store_tests;

#[cfg(target_family = "wasm")]
mod component;

pub use config::StoreConfig;
pub use env::{Environment, SystemEnvironment};
pub use error::StoreError;
pub use kv::{Entry, Kv, KvError, Listed, Listing, MemoryKv};
pub use record::{
    ClaimedTask, InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, RetryPolicy,
    StatusView, Task, TaskDetail, TaskPage, TaskRecord, TaskRequest,
};
pub use status::TaskStatus;
pub use store::{ReapReport, TaskStore};
pub use time::iso8601_utc;
