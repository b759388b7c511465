#!/usr/bin/env bash
# The whole test suite: formatting, lints (host and guest targets), the
# guest's unit tests and the host contract suite. CI runs exactly this
# (.ci/run calls it). Safe to run again: every setup step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain and wasm32-wasip2 target (from rust-toolchain.toml)"
rustup toolchain install
rustup show active-toolchain

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host platform, all targets)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo clippy (guest for wasm32-wasip2, with and without test faults)"
(cd guest && cargo clippy --locked --target wasm32-wasip2 -- -D warnings)
(cd guest && cargo clippy --locked --target wasm32-wasip2 --all-features -- -D warnings)

step "cargo test (guest unit tests, host unit tests, contract and sandbox suites)"
cargo test --locked --workspace

step "demo (the README's run command)"
cargo run --locked --quiet -p pmcp-tasks-host --bin pmcp-tasks >/dev/null
echo "demo ran"
