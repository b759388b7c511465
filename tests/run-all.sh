#!/usr/bin/env bash
# The whole test suite and release gates. CI runs exactly this (.ci/run
# calls it). Every setup step is idempotent, so it is safe to run again.
#
#   1. tools and services the tests need (redis-server, moto, cargo-hack,
#      cargo-component, the wasm32-wasip2 target)
#   2. cargo fmt --check
#   3. the feature matrix: check and clippy -D warnings for every feature
#      combination of every package (cargo hack --feature-powerset)
#   4. clippy of the guest for wasm32-wasip2
#   5. cargo doc -D warnings (no broken intra-doc links)
#   6. the component built by cargo-component; tests: unit and doc tests
#      with all features, then the contract, sandbox (which also loads the
#      cargo-component build) and backend suites for every feature combination
#   7. the demo (the README's run command)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tests/setup.sh
source tests/setup.sh

step "toolchain and wasm32-wasip2 target (from rust-toolchain.toml)"
ensure_toolchain

step "services the tests start themselves: redis-server, redis-cli"
ensure_redis

step "DynamoDB emulator: moto's server mode, in a virtual environment under target/"
ensure_moto

step "cargo-hack and cargo-component"
cargo_tool cargo-hack 0.6.46
cargo_tool cargo-component 0.21.1

step "cargo fmt --check"
cargo fmt --all -- --check

step "feature matrix: cargo check (without dev-dependencies) of every combination"
# (no --locked: cargo-hack edits the manifests while it runs, and restores them)
cargo hack check --workspace --feature-powerset --no-dev-deps

step "feature matrix: cargo clippy --all-targets -D warnings of every combination"
cargo hack clippy --locked --workspace --feature-powerset --all-targets -- -D warnings

step "cargo clippy (guest for wasm32-wasip2, with and without test faults)"
(cd guest && cargo clippy --locked --target wasm32-wasip2 -- -D warnings)
(cd guest && cargo clippy --locked --target wasm32-wasip2 --all-features -- -D warnings)

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --all-features --no-deps

step "the component built by cargo component (the sandbox tests load it too)"
(cd guest && cargo component build --locked --release --target wasm32-wasip2)
export PMCP_CARGO_COMPONENT_WASM="$PWD/target/wasm32-wasip2/release/pmcp_tasks_guest.wasm"
cargo run --locked --quiet -p pmcp-tasks-host --bin pmcp-tasks -- --component "$PMCP_CARGO_COMPONENT_WASM" >/dev/null
echo "the host ran the demo on the cargo-component build"

step "unit and doc tests (guest, host; all features)"
cargo test --locked -p pmcp-tasks-guest -p pmcp-tasks-host --all-features

step "contract suite (memory, Redis, Redis Cluster, DynamoDB) and sandbox tests, every feature combination"
cargo hack test --locked -p pmcp-tasks-tests --feature-powerset

step "demo (the README's run command)"
cargo run --locked --quiet -p pmcp-tasks-host --bin pmcp-tasks >/dev/null
echo "demo ran"
