//! MCP Tasks domain logic for pmcp-tasks-wasm.
//!
//! Plain Rust over two small traits, [`kv::Kv`] (storage) and
//! [`env::Environment`] (clock and randomness), so it is unit-tested and
//! benchmarked natively. Built for `wasm32`, the `component` module
//! exports it as the `pmcp:tasks` component, with storage imported from
//! the host through the WIT `kv-backend` interface.

#![warn(missing_docs)]

pub mod block_cache;
pub mod bytes;
pub mod config;
pub mod cursor;
pub mod env;
pub mod error;
pub mod ids;
pub mod json;
pub mod kv;
pub mod leases;
pub mod outcome;
pub mod record;
pub mod status;
pub mod store;
pub mod time;

#[cfg(test)]
mod store_tests;

#[cfg(target_family = "wasm")]
mod component;

pub use config::StoreConfig;
pub use env::{Environment, SystemEnvironment};
pub use error::StoreError;
pub use kv::{Entry, Kv, KvError, Listed, Listing, MemoryKv};
pub use record::{
    InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, StatusView, Task,
    TaskDetail, TaskPage, TaskRecord, TaskRequest,
};
pub use status::TaskStatus;
pub use store::TaskStore;
