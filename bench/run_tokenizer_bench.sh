#!/usr/bin/env bash
# Tokenizer throughput, nnterp vs HuggingFace tokenizers (official Node binding, same Rust code
# as Python transformers' fast tokenizers), on the same generated text, in the same run.
#
#   bench/run_tokenizer_bench.sh [BUILD_DIR] [-- extra bench_tokenizer args]
# BUILD_DIR defaults to ./build (it must hold bench/bench_tokenizer). Needs node + npm; installs
# bench/tokenizer_node's dependency (npm `tokenizers@0.23.2`) on first use.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BUILD="${1:-$REPO/build}"
[ "${1:-}" != "" ] && shift
[ "${1:-}" = "--" ] && shift
BENCH="$BUILD/bench/bench_tokenizer"
[ -x "$BENCH" ] || BENCH="$BUILD/bench_tokenizer"
if [ ! -x "$BENCH" ]; then
  echo "bench_tokenizer not found in $BUILD (build it: cmake --build $BUILD --target bench_tokenizer)" >&2
  exit 1
fi
if [ ! -d "$HERE/tokenizer_node/node_modules/tokenizers" ]; then
  (cd "$HERE/tokenizer_node" && npm install --no-audit --no-fund >/dev/null)
fi

DIRS=("$REPO/tests/data/tokenizers/gpt2" "$REPO/../shared/fixtures/tokenizers/llama3" "$REPO/../shared/fixtures/tokenizers/gemma2")
TEXT="$(mktemp /tmp/nnterp_tok_bench.XXXXXX.txt)"
OUT_CPP="$(mktemp)"; OUT_NODE="$(mktemp)"
trap 'rm -f "$TEXT" "$OUT_CPP" "$OUT_NODE"' EXIT

"$BENCH" --write-text "$TEXT" "$@" >/dev/null
# Interleaved per tokenizer (nnterp, then HF on the same tokenizer), so that both see the same
# machine load.
for dir in "${DIRS[@]}"; do
  echo "== $(basename "$dir")"
  "$BENCH" --text "$TEXT" "$dir" | tee -a "$OUT_CPP" | grep -v '^RESULT' | sed 's/^/  nnterp     /'
  node "$HERE/tokenizer_node/bench.mjs" --text "$TEXT" "$dir" | tee -a "$OUT_NODE" | grep -v '^RESULT' | sed 's/^/  HF (node)  /'
done

echo "== ratio (nnterp MB/s / HF MB/s; 'same ids' compares token counts and id checksums)"
python3 - "$OUT_CPP" "$OUT_NODE" <<'PY'
import json, sys
def load(p):
    return {(r["tokenizer"], r["mode"]): r for r in
            (json.loads(l[len("RESULT "):]) for l in open(p) if l.startswith("RESULT "))}
cpp, node = load(sys.argv[1]), load(sys.argv[2])
print(f"{'tokenizer':<14} {'mode':<6} {'nnterp MB/s':>12} {'HF MB/s':>10} {'ratio':>7}  same ids")
for key in cpp:
    if key not in node: continue
    c, n = cpp[key], node[key]
    same = c["tokens"] == n["tokens"] and c["checksum"] == n["checksum"]
    print(f"{key[0]:<14} {key[1]:<6} {c['mb_per_s']:>12.2f} {n['mb_per_s']:>10.2f} {c['mb_per_s']/n['mb_per_s']:>6.2f}x  {'yes' if same else 'NO'}")
PY
