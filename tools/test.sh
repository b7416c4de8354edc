#!/usr/bin/env bash
# Installs the dependencies, builds nnterp with its tests, and runs every test. CI runs exactly this.
# Then builds part of the suite with AddressSanitizer + UndefinedBehaviorSanitizer and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
BUILD_DIR="${NNTERP_BUILD_DIR:-build}"
# ccache: paths relative to the checkout, so a fresh clone elsewhere (as CI makes) reuses the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"

# ---- sanitizers (ASan + UBSan, leak checking on; docs/hardening.md) ----------------------------
# A second build (-O1, NNTERP_SANITIZE=ON) in build-asan. CI builds and runs only io_test,
# tokenizer_test (without the repeated large-vocabulary tokenizer cases) and trace_test (every
# architecture's forward, the fiber switches, edits, errors): the code that parses untrusted files
# and the trace engine, within CI's time budget (the library alone is ~7 CPU-minutes to compile
# under sanitizers; the CLI, needed by methods_test, about as much again).
# NNTERP_SANITIZE_ALL=1 builds and runs every test binary under the sanitizers (the whole suite).
# NNTERP_SANITIZE=0 skips this part.
if [ "${NNTERP_SANITIZE:-1}" != 0 ]; then
  ASAN_DIR="${NNTERP_ASAN_BUILD_DIR:-build-asan}"
  cmake -S . -B "$ASAN_DIR" -G Ninja -DNNTERP_SANITIZE=ON -DNNTERP_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
  if [ "${NNTERP_SANITIZE_ALL:-0}" = 1 ]; then
    cmake --build "$ASAN_DIR"
    ctest --test-dir "$ASAN_DIR" --output-on-failure -j "$(nproc)" -L sanitize
  else
    cmake --build "$ASAN_DIR" --target io_test tokenizer_test trace_test
    # The tokenizer cases left out load the same 256k-token vocabularies again (gemma2/3) or
    # re-run every family's loader (DefaultOptions...): 4/5 of tokenizer_test's time under ASan.
    GTEST_FILTER="-Tokenizers/FamilyCases.DefaultOptionsFollowTokenizerConfig/*:Tokenizers/FamilyCases.MatchesReference/gemma2:Tokenizers/FamilyCases.MatchesReference/gemma3" \
      ctest --test-dir "$ASAN_DIR" --output-on-failure -j "$(nproc)" -L sanitize -R '^(io_test|tokenizer_test|trace_test)$'
  fi
fi
