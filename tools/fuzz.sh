#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/fuzzing.md) and runs each for a given time.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs are names with or without the fuzz_ prefix (default:
# all five). Each target runs on a copy of its seed corpus (fuzz/corpus/<name>/ ->
# build-fuzz/corpus/<name>/, kept between runs so coverage accumulates) with its dictionary, a 10 s
# per-input timeout and a 2 GiB RSS limit; its log is build-fuzz/logs/<name>.log and any crashing
# input lands in build-fuzz/artifacts/. Prints the executions, exec/s, coverage and peak RSS of
# each; exits nonzero if any target found a crash, leak, timeout, OOM or sanitizer report.
#
# Environment: JOBS (parallel targets, default 1), NICE (niceness, default 10), FUZZ_TIMEOUT
# (per-input limit in seconds, default 10; wall-clock, so raise it on a loaded machine),
# FUZZ_BUILD (build folder, default build-fuzz), FUZZ_ARGS (extra libFuzzer flags), FUZZ_NO_BUILD=1
# (run the targets already built).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
shift || true
ALL=(safetensors config tokenizer_load tokenizer_encode cli_inputs)
TARGETS=()
for t in "$@"; do TARGETS+=("${t#fuzz_}"); done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (one of: ${ALL[*]})" >&2; exit 2; }
done
BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${JOBS:-1}
NICE=${NICE:-10}

# clang (with libFuzzer's runtime) and the project's own dependencies.
if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "fuzz.sh: installing clang"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang
fi
if ! dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed"; then
  bash tools/install-deps.sh
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DNNTERP_FUZZ=ON -DNNTERP_BUILD_TESTS=OFF \
    -DNNTERP_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  nice -n "$NICE" cmake --build "$BUILD" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")
fi

mkdir -p "$BUILD/logs" "$BUILD/artifacts" "$BUILD/corpus"
dict_of() {
  case $1 in
    safetensors) echo fuzz/safetensors.dict ;;
    config) echo fuzz/config.dict ;;
    tokenizer_load) echo fuzz/tokenizer.dict ;;
    tokenizer_encode) echo "" ;;  # raw bytes: a dictionary of JSON words would not help
    cli_inputs) echo fuzz/cli_inputs.dict ;;
  esac
}

run_one() {
  local t=$1 corpus="$BUILD/corpus/$1" log="$BUILD/logs/$1.log" dict
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  dict=$(dict_of "$t")
  local cmd=(nice -n "$NICE" "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout="${FUZZ_TIMEOUT:-10}"
             -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-")
  [ -n "$dict" ] && cmd+=(-dict="$dict")
  # shellcheck disable=SC2206
  cmd+=(${FUZZ_ARGS:-} "$corpus")
  echo "fuzz.sh: ${cmd[*]}" | tee "$log"
  local rc=0
  "${cmd[@]}" >>"$log" 2>&1 || rc=$?
  echo "fuzz.sh: exit status $rc" >>"$log"
  return 0
}

pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
wait "${pids[@]}"

# Summary from each log.
failed=0
printf '%-18s %12s %8s %8s %8s %8s  %s\n' target execs exec/s cov ft rss_mb result
for t in "${TARGETS[@]}"; do
  log="$BUILD/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok
  # (a "slow-unit" artifact is informational: libFuzzer keeps going)
  if grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: |fuzz property violated' "$log" ||
     ! grep -q 'fuzz.sh: exit status 0' "$log"; then
    result="FAILED (see $log)"
    failed=1
  fi
  printf '%-18s %12s %8s %8s %8s %8s  %s\n' "fuzz_$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${rss:-?}" "$result"
done
exit $failed
