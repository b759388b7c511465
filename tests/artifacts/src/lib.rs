//! Components that exist only for tests, built by this crate's build script
//! (a nested cargo build of `guest/` for `wasm32-wasip2`), the way
//! wasmtime's `test-programs/artifacts` keeps guest builds out of the
//! host's build. Needs the `wasm32-wasip2` target (`tests/run-all.sh`
//! installs it).

/// The guest built with its `fault-injection` feature: it traps, loops or
/// allocates without bound for the reserved owner ids of
/// `guest/src/component/mod.rs` (`fault-injection:trap`, `…:loop`, `…:allocate`).
pub static FAULT_INJECTION_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pmcp_tasks_guest_faults.wasm"));
