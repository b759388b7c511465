#!/usr/bin/env bash
# The whole test suite: formatting, lints (host and guest targets), the
# guest's unit tests and the host contract suite. CI runs exactly this
# (.ci/run calls it). Safe to run again: every setup step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Installs Debian packages that are missing (as root, or through sudo).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

step "services the tests start themselves: redis-server, redis-cli"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt_install redis-server redis-tools
fi
redis-server --version

step "DynamoDB emulator: moto's server mode, in a virtual environment under target/"
moto_env="target/dynamodb-emulator"
if [ ! -x "$moto_env/bin/moto_server" ]; then
  if ! python3 -m venv "$moto_env" 2>/dev/null; then
    apt_install python3-venv
    python3 -m venv "$moto_env"
  fi
  "$moto_env/bin/pip" install --quiet "moto[server]==5.2.5"
fi
export PMCP_MOTO_PYTHON="$PWD/$moto_env/bin/python"
"$moto_env/bin/python" -c 'import moto; print("moto", moto.__version__)'

step "toolchain and wasm32-wasip2 target (from rust-toolchain.toml)"
rustup toolchain install
rustup show active-toolchain

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host platform, all targets; default features, then all)"
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --workspace --all-targets --all-features -- -D warnings

step "cargo clippy (guest for wasm32-wasip2, with and without test faults)"
(cd guest && cargo clippy --locked --target wasm32-wasip2 -- -D warnings)
(cd guest && cargo clippy --locked --target wasm32-wasip2 --all-features -- -D warnings)

step "cargo test (unit tests; contract suite on memory, Redis, Redis Cluster, DynamoDB; sandbox)"
cargo test --locked --workspace --all-features

step "demo (the README's run command)"
cargo run --locked --quiet -p pmcp-tasks-host --bin pmcp-tasks >/dev/null
echo "demo ran"
