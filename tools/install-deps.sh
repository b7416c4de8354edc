#!/usr/bin/env bash
# Installs everything nnterp needs on Debian 12 (bookworm) or newer. Run as root or with sudo.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas-dev          # libtorch on OpenBLAS (reference BLAS is ~20x slower)
  nlohmann-json3-dev libcli11-dev libfmt-dev zlib1g-dev
  libonig-dev libutf8proc-dev           # tokenizer regexes and Unicode normalization
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium                              # headless browser for tests/browser (the HTML plots)
  python3-dev pybind11-dev python3-torch  # the Python module (python/, docs/python.md)
  python3-pytest python3-numpy python3-pandas python3-plotly  # its tests, prompts_to_df, plot_topk_tokens
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "nnterp: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
