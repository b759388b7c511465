//! Every integration suite of the workspace's shared tests in one binary
//! (linking wasmtime and the AWS SDK once, not once per suite), one module
//! per suite; the backend suites compile with their feature.
//!
//! `instances.rs` stays a binary of its own: its slot test fills every
//! slot of the shared embedded runtime, which these suites share.

mod conflicts;
mod dynamodb;
mod harness;
mod identity;
mod memory;
mod network_faults;
mod redis_cluster;
mod redis_single;
mod rmcp_client;
mod sandbox;
mod worker_steps;
