#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/fuzzing.md) and runs each for a given time.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#   tools/fuzz.sh --campaign MINUTES [TARGET...]
#
# SECONDS per target (default 60); TARGETs are names with or without the fuzz_ prefix (default:
# all six). Each target runs on a copy of its seed corpus (fuzz/corpus/<name>/ ->
# build-fuzz/corpus/<name>/, kept between runs so coverage accumulates) with its dictionary, a 10 s
# per-input timeout and a 2 GiB RSS limit; its log is build-fuzz/logs/<name>.log and any crashing
# input lands in build-fuzz/artifacts/. Prints the executions, exec/s, coverage and peak RSS of
# each; exits nonzero if any target found a crash, leak, timeout, OOM or sanitizer report.
#
# --campaign MINUTES: each target fuzzes for MINUTES (two at a time unless JOBS says otherwise) on
# a persistent working corpus outside the repository, build-fuzz/campaign/<name>/ (seeded from
# fuzz/corpus/<name>/, reused by every campaign so coverage accumulates); then the repository's
# corpus is replaced by the minimized union (libFuzzer -merge=1) of itself and the working corpus:
# the named seeds (make_seeds.py's, regression_* included) are always kept, then the committed
# inputs that still add edges, then the working corpus's inputs (named by SHA-1) that add more.
# Prints a table (executions, exec/s, cov/ft, working corpus, peak RSS, findings, fuzz/corpus files
# before -> after, +added -removed) and writes it to build-fuzz/campaign/report.md; logs go to
# build-fuzz/campaign/logs/. Any crash-/leak-/timeout-/oom- input is copied to
# build-fuzz/campaign/findings/ and the script exits nonzero.
#
# Environment: JOBS (parallel targets, default 1; 2 in a campaign), NICE (niceness, default 10),
# FUZZ_TIMEOUT (per-input limit in seconds, default 10; wall-clock, so raise it on a loaded machine),
# FUZZ_BUILD (build folder, default build-fuzz), FUZZ_ARGS (extra libFuzzer flags), FUZZ_NO_BUILD=1
# (run the targets already built). Campaign only: FUZZ_CAMPAIGN_DIR (default
# $FUZZ_BUILD/campaign), FUZZ_FORK=N (run libFuzzer with -fork=N -ignore_crashes=1
# -ignore_timeouts=1 -ignore_ooms=1, so that a finding does not end the target's run; default:
# one process per target), FUZZ_NO_MERGE=1 (leave fuzz/corpus/ alone), FUZZ_MERGE_FEATURES=all
# (minimize keeping libFuzzer's hit-count features too, not only edges: about 3x the files).
set -euo pipefail
cd "$(dirname "$0")/.."

CAMPAIGN=""
if [ "${1:-}" = "--campaign" ]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "fuzz.sh: --campaign needs a number of minutes" >&2; exit 2; }
  CAMPAIGN=$2
  SECONDS_PER_TARGET=$((CAMPAIGN * 60))
  shift 2
else
  SECONDS_PER_TARGET=${1:-60}
  shift || true
fi
ALL=(safetensors config tokenizer_load tokenizer_encode cli_inputs chat_template)
TARGETS=()
for t in "$@"; do TARGETS+=("${t#fuzz_}"); done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (one of: ${ALL[*]})" >&2; exit 2; }
done
BUILD=${FUZZ_BUILD:-build-fuzz}
if [ -n "$CAMPAIGN" ]; then JOBS=${JOBS:-2}; else JOBS=${JOBS:-1}; fi
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

dict_of() {
  case $1 in
    safetensors) echo fuzz/safetensors.dict ;;
    config) echo fuzz/config.dict ;;
    tokenizer_load) echo fuzz/tokenizer.dict ;;
    tokenizer_encode) echo "" ;;  # raw bytes: a dictionary of JSON words would not help
    cli_inputs) echo fuzz/cli_inputs.dict ;;
    chat_template) echo fuzz/chat_template.dict ;;
  esac
}

# ---- campaign mode ----------------------------------------------------------------------------
CDIR=${FUZZ_CAMPAIGN_DIR:-$BUILD/campaign}

# Files of a folder as "sha1 name" lines.
hashes() { (cd "$1" && find . -maxdepth 1 -type f -printf '%f\0' | xargs -0 -r sha1sum | sed 's/^\([0-9a-f]*\)  /\1 /'); }

# libFuzzer's final numbers in LOG (-print_final_stats=1 and its last status line), into the
# variables execs, eps, rss, cov, ft and corp (empty when absent).
read_stats() {
  local log=$1 last
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  # "#N DONE cov: C ft: F corp: U/SIZE ..." (plain) or "#N: cov: C ft: F corp: U exec/s: E ..." (-fork).
  last=$(grep -E '^#[0-9]+:?[[:space:]].*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\(\/[0-9]*[a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  [ -n "$eps" ] || eps=$(sed -n 's/.*exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
}

# Runs FUNCTION TARGET for every target, JOBS at a time, and waits for all.
run_targets() {
  local pids=() t
  for t in "${TARGETS[@]}"; do
    "$1" "$t" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  done
  wait "${pids[@]}"
}

campaign_run() {
  local t=$1 work="$CDIR/$1" log="$CDIR/logs/$1.log" art="$CDIR/artifacts/$1" dict
  mkdir -p "$work" "$art"
  rm -f "$art"/*
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  dict=$(dict_of "$t")
  local cmd=(nice -n "$NICE" "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout="${FUZZ_TIMEOUT:-10}"
             -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/$t-")
  [ -n "$dict" ] && cmd+=(-dict="$dict")
  [ -n "${FUZZ_FORK:-}" ] && cmd+=(-fork="$FUZZ_FORK" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  # shellcheck disable=SC2206
  cmd+=(${FUZZ_ARGS:-} "$work")
  echo "fuzz.sh: ${cmd[*]}" | tee "$log"
  local rc=0
  "${cmd[@]}" >>"$log" 2>&1 || rc=$?
  echo "fuzz.sh: exit status $rc" >>"$log"
}

# fuzz/corpus/<t>/ := the minimized union of itself and the working corpus. Writes "+added -removed
# before after" (counted by content) to $CDIR/merge-<t>.txt, or "failed".
campaign_merge() {
  local t=$1 repo="fuzz/corpus/$1" work="$CDIR/$1" log="$CDIR/logs/$1.merge.log" new="$CDIR/merge-$1"
  rm -rf "$new" && mkdir -p "$new"
  # The named seeds (fuzz/corpus/make_seeds.py's, regression_* among them) are always kept; then
  # the repository's other inputs that still add coverage beyond them; then the working corpus's
  # inputs that add coverage beyond all those. (One merge of everything would also be minimal, but
  # would trade a third of the committed inputs for slightly smaller ones on every campaign.)
  find "$repo" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' -exec cp {} "$new"/ \;
  local rc=0 features=(-use_counters=0) src  # edges; "all": also libFuzzer's hit-count buckets (~3x the files)
  [ "${FUZZ_MERGE_FEATURES:-edges}" = all ] && features=()
  : >"$log"
  for src in "$repo" "$work"; do
    [ $rc -eq 0 ] || break
    nice -n "$NICE" "$BUILD/fuzz/fuzz_$t" -merge=1 "${features[@]}" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
      -artifact_prefix="$CDIR/artifacts/$t/merge-$t-" "$new" "$src" >>"$log" 2>&1 || rc=$?
  done
  if [ $rc -ne 0 ] || [ -z "$(ls -A "$new")" ]; then
    echo "failed" >"$CDIR/merge-$t.txt"
    return
  fi
  # A kept repository input keeps its name; a new one has the SHA-1 name libFuzzer gave it.
  declare -A old_name=()
  local h f
  while read -r h f; do old_name[$h]=$f; done < <(hashes "$repo")
  local listing
  listing=$(hashes "$new")
  while read -r h f; do
    if [ -n "${old_name[$h]:-}" ] && [ "${old_name[$h]}" != "$f" ] && [ ! -e "$new/${old_name[$h]}" ]; then
      mv "$new/$f" "$new/${old_name[$h]}"
    fi
  done <<<"$listing"
  local before after added removed
  before=$(hashes "$repo" | cut -d' ' -f1 | sort -u)
  after=$(hashes "$new" | cut -d' ' -f1 | sort -u)
  added=$(comm -13 <(echo "$before") <(echo "$after") | grep -c . || true)
  removed=$(comm -23 <(echo "$before") <(echo "$after") | grep -c . || true)
  find "$repo" -maxdepth 1 -type f -delete
  cp "$new"/* "$repo"/
  rm -rf "$new"
  echo "+$added -$removed $(grep -c . <<<"$before") $(grep -c . <<<"$after")" >"$CDIR/merge-$t.txt"
}

campaign() {
  mkdir -p "$CDIR/logs" "$CDIR/findings"
  local t
  run_targets campaign_run
  if [ -z "${FUZZ_NO_MERGE:-}" ]; then
    for t in "${TARGETS[@]}"; do campaign_merge "$t"; done
  fi

  local failed=0 report="$CDIR/report.md" rows=()
  for t in "${TARGETS[@]}"; do
    local log="$CDIR/logs/$t.log" execs eps rss cov ft corp findings="" merge="not merged" kind n
    read_stats "$log"
    [ -n "$corp" ] || corp=$(find "$CDIR/$t" -maxdepth 1 -type f | wc -l)
    for kind in crash leak timeout oom; do
      n=$(find "$CDIR/artifacts/$t" -maxdepth 1 -type f -name "$t-$kind-*" 2>/dev/null | wc -l)
      [ "$n" -eq 0 ] || findings+="${findings:+, }$n $kind"
    done
    if [ -n "$findings" ]; then
      failed=1
      find "$CDIR/artifacts/$t" -maxdepth 1 -type f -regextype egrep -regex ".*/$t-(crash|leak|timeout|oom)-.*" \
        -exec cp {} "$CDIR/findings/" \;
    elif grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: |fuzz property violated' "$log" ||
         ! grep -q 'fuzz.sh: exit status 0' "$log"; then
      findings="run FAILED, see $log"
      failed=1
    fi
    if [ -f "$CDIR/merge-$t.txt" ] && [ -z "${FUZZ_NO_MERGE:-}" ]; then
      read -r a r b n2 <"$CDIR/merge-$t.txt" || true
      if [ "$a" = failed ]; then merge="merge FAILED, see $CDIR/logs/$t.merge.log"; failed=1
      else merge="$b -> $n2 ($a $r)"; fi
      rm -f "$CDIR/merge-$t.txt"
    fi
    rows+=("| \`fuzz_$t\` | ${execs:-?} | ${eps:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${rss:-?} | ${findings:-none} | $merge |")
  done
  {
    echo "# Fuzz campaign"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ local changes)'):" \
         "$CAMPAIGN min per target, $JOBS at a time${FUZZ_FORK:+, -fork=$FUZZ_FORK}; working corpora in \`$CDIR/\`."
    echo
    echo "| target | execs | exec/s | cov | ft | working corpus | peak RSS MB | findings | fuzz/corpus files |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Findings: \`$CDIR/findings/\`; logs: \`$CDIR/logs/\`."
  } >"$report"
  cat "$report"
  return $failed
}

[ -z "$CAMPAIGN" ] || { campaign && exit 0 || exit 1; }

mkdir -p "$BUILD/logs" "$BUILD/artifacts" "$BUILD/corpus"
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

run_targets run_one

# Summary from each log.
failed=0
printf '%-18s %12s %8s %8s %8s %8s  %s\n' target execs exec/s cov ft rss_mb result
for t in "${TARGETS[@]}"; do
  log="$BUILD/logs/$t.log"
  read_stats "$log"
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
