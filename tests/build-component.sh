#!/usr/bin/env bash
# Builds the default component that pmcp-tasks-host embeds, reproducibly:
# the pinned toolchain (rust-toolchain.toml), the locked dependencies,
# paths remapped (checkout, cargo home, sysroot), fat LTO, one codegen unit,
# no debug info. The same sources give the same bytes on any machine.
#
#   ./tests/build-component.sh          rebuild host/component/pmcp_tasks.wasm
#                                       (run it after changing guest/ or wit/)
#   ./tests/build-component.sh --check  rebuild into target/ and fail unless
#                                       the bytes equal the committed file (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh

committed="host/component/pmcp_tasks.wasm"
target_dir="target/component-build"
ensure_toolchain >/dev/null

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
sysroot="$(rustc --print sysroot)"
remap="--remap-path-prefix=$PWD=/pmcp-tasks --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$sysroot=/rustc"
# Flags for the wasm target only: build scripts and proc macros keep the
# ordinary ones, and no outer wrapper (clippy, coverage) leaks in.
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
    -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
  CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="$remap" \
  CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_DEBUG=false \
  CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  CARGO_PROFILE_RELEASE_INCREMENTAL=false \
  cargo build --locked --quiet --release -p pmcp-tasks-guest --target wasm32-wasip2 \
    --target-dir "$target_dir"
built="$target_dir/wasm32-wasip2/release/pmcp_tasks_guest.wasm"

if [ "${1:-}" = "--check" ]; then
  if cmp -s "$built" "$committed"; then
    echo "reproducible: the rebuilt component equals $committed ($(wc -c <"$committed") bytes, sha256 $(sha256sum "$committed" | cut -c1-16)…)"
  else
    echo "error: $committed differs from a fresh build of guest/ ($(wc -c <"$built") vs $(wc -c <"$committed") bytes)." >&2
    echo "Run ./tests/build-component.sh and commit the result." >&2
    exit 1
  fi
else
  cp "$built" "$committed"
  echo "wrote $committed ($(wc -c <"$committed") bytes, sha256 $(sha256sum "$committed" | cut -c1-16)…)"
fi
