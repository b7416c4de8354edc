#!/usr/bin/env bash
# Installs the dependencies, builds nnterp with its tests, and runs every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
BUILD_DIR="${NNTERP_BUILD_DIR:-build}"
# ccache: paths relative to the checkout, so a fresh clone elsewhere (as CI makes) reuses the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
