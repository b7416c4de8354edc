#!/usr/bin/env bash
# The tests that need a GPU, on a machine that has one (CI and Debian's libtorch are CPU-only, so
# there these tests report "skipped"). Builds nnterp against a CUDA libtorch in build-cuda and runs:
#   * Cuda.*                       forward and generation on cuda against the CPU
#   * HF/Dtypes.*, Dtype*, Memory.* the dtype suite (its bf16/f16 models then run native kernels)
#   * every architecture's parity and generation with the model on the GPU (NNTERP_TEST_DEVICE=cuda)
#
#   tools/gpu_tests.sh [/path/to/libtorch]
#
# The libtorch: the argument, else $LIBTORCH, else the one of an installed PyTorch
# (python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'). It must be a CUDA build:
# the script stops when torch::cuda::is_available() is false.
set -euo pipefail
cd "$(dirname "$0")/.."
LIBTORCH="${1:-${LIBTORCH:-}}"
if [ -z "$LIBTORCH" ]; then
  LIBTORCH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)"
fi
if [ -z "$LIBTORCH" ]; then
  echo "gpu_tests.sh: give the path of a CUDA libtorch (argument or LIBTORCH=...)" >&2
  exit 2
fi
BUILD_DIR="${NNTERP_CUDA_BUILD_DIR:-build-cuda}"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$LIBTORCH" -DNNTERP_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" --target model_test generate_test
cd tests
"../$BUILD_DIR/tests/model_test" --gtest_filter='Cuda.*' --gtest_fail_if_no_test_selected 2>&1 | tee /dev/stderr | grep -q "SKIPPED" &&
  { echo "gpu_tests.sh: the Cuda tests were skipped: this libtorch or machine has no CUDA" >&2; exit 1; }
"../$BUILD_DIR/tests/model_test" --gtest_filter='Cuda.*:HF/Dtypes.*:Dtype*:Memory.*:Validation.*'
NNTERP_TEST_DEVICE=cuda "../$BUILD_DIR/tests/model_test" --gtest_filter='HF/Parity.*'
NNTERP_TEST_DEVICE=cuda "../$BUILD_DIR/tests/generate_test"
echo "gpu_tests.sh: every GPU test passed"
