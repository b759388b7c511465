#!/usr/bin/env bash
# The benchmark suite, one command. The in-memory part needs no service;
# the Redis and DynamoDB parts start a redis-server and a moto server of
# their own on free loopback ports, as the tests do.
#
#   ./tests/bench.sh            full run, release build (about three
#                               minutes once built; the first build takes
#                               longer): the harness (overhead, counted,
#                               engine, scaling, concurrency, memory,
#                               protocol, protocol-http), which prints
#                               the markdown report and writes it with its
#                               JSON to tests/bench-results/latest.{md,json}.
#                               The overhead ratios come from runs of the
#                               three subjects in turns (best of 5), not from
#                               criterion, which measures one subject after
#                               another: on a VM whose speed drifts by the
#                               minute its ratios swung by a third between
#                               two runs of the same code. The criterion
#                               bench (cargo bench --bench overhead) stays,
#                               for its statistics; --criterion DIR makes
#                               the report read its estimates instead.
#                               Before the harness, tests/peer (a workspace
#                               of its own: the peer's dependencies must not
#                               reach ours) times our host against the Rust
#                               peer, pmcp-tasks 0.2.0, in memory and on
#                               Redis (about five minutes); its rows join the
#                               report. --no-peer skips it.
#   ./tests/bench.sh --smoke    every benchmark once at tiny sizes, debug
#                               build, nothing written: keeps the suite
#                               from rotting (.ci/run runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh

features="redis,dynamodb"
ensure_toolchain >/dev/null
ensure_redis >/dev/null
ensure_moto >/dev/null
ensure_valgrind >/dev/null
# The gateway's rows run the MCP Python SDK's fixture server upstream.
ensure_mcp_clients >/dev/null

if [ "${1:-}" = "--smoke" ]; then
  # The workspace's feature set and build settings, as .ci/run builds them:
  # the smoke run reuses that build instead of compiling the crates a second
  # time, and the counted gate's baseline was taken from that build
  # (incremental builds count 5-9 % more instructions per call).
  export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only
  step "benchmark smoke: criterion overhead bench in test mode (each benchmark once)"
  cargo test --locked --workspace --all-features --bench overhead
  step "benchmark smoke: the harness at tiny sizes"
  cargo build --locked --quiet --workspace --all-features --bin pmcp-tasks-bench
  target/debug/pmcp-tasks-bench --smoke --json target/bench-smoke.json >/dev/null
  echo "harness smoke run: every scenario ran (figures in target/bench-smoke.json)"
  step "counted regression gate: instructions per call against tests/bench-results/counted-baseline.json"
  ./tests/check-counted.py tests/bench-results/counted-baseline.json target/bench-smoke.json
  exit 0
fi

results="tests/bench-results"
mkdir -p "$results"
peer=()
if [ "${1:-}" != "--no-peer" ]; then
  step "the Rust peer: pmcp-tasks 0.2.0 and our host, same workloads, in turns"
  # One target directory for both workspaces.
  cargo run --locked --release --manifest-path tests/peer/Cargo.toml --target-dir target -- \
    --json target/bench-peer.json
  peer=(--peer target/bench-peer.json)
fi
step "harness: every scenario; the report"
cargo run --locked --release -p pmcp-tasks-bench --features "$features" --bin pmcp-tasks-bench -- \
  "${peer[@]}" --json "$results/latest.json" --markdown "$results/latest.md"
