#!/usr/bin/env bash
# The installable package (ctest: package.install_and_consume). Usage: run.sh BUILD_DIR SOURCE_DIR WORK_DIR
#  1. cmake --install BUILD_DIR into a fresh prefix;
#  2. the installed headers include nothing from src/ and no nlohmann/json;
#  3. tests/package/consumer (find_package(nnterp) + nnterp::nnterp) configures, builds and runs
#     against the prefix alone: it loads the gpt2 fixture and checks its logits against HF's;
#  4. the prefix is moved elsewhere and its CLI runs `nnterp logit-lens` on the default model, which
#     it must find inside the moved prefix (not in the source tree);
#  5. given PYTHON (the module was built), the moved prefix's Python package imports from outside
#     the source tree and loads the default model from the prefix.
set -euo pipefail
build=$1 src=$2 work=$3 python=${4:-}
rm -rf "$work" && mkdir -p "$work"
unset NNTERP_DEFAULT_MODEL NNTERP_PLOTLY_JS
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in lib/libnnterp.so bin/nnterp include/nnterp/model.hpp lib/cmake/nnterp/nnterpConfig.cmake \
         share/nnterp/models/default/model.safetensors share/nnterp/plotly.min.js; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
if grep -rnE '#include *[<"](nlohmann/|src/|core/|io/|model/|trace/|methods/)' "$prefix/include"; then
  echo "FAIL: an installed header includes an internal or nlohmann header"; exit 1
fi
echo "ok: installed $(find "$prefix" -type f | wc -l) files; headers include only libtorch and nnterp"

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/tests/package/consumer" -B "$work/consumer" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-configure.log"
cmake --build "$work/consumer" >"$work/consumer-build.log"
"$work/consumer/consumer" "$src/tests/data/hf/gpt2"

moved=$work/moved-prefix
mv "$prefix" "$moved"
out=$("$moved/bin/nnterp" info --json)
echo "$out" | grep -q "\"path\": \"$moved/share/nnterp/models/default\"" ||
  { echo "FAIL: the moved CLI did not use its own default model:"; echo "$out" | head -3; exit 1; }
(cd "$work" && "$moved/bin/nnterp" logit-lens --prompt "The capital of France is" --html lens.html)
grep -q "Plotly" "$work/lens.html" || { echo "FAIL: lens.html has no plotly.js"; exit 1; }
echo "ok: the moved prefix's CLI found its default model and plotly.js in $moved/share/nnterp"

if [ -n "$python" ]; then
  pydir=$(ls -d "$moved"/lib/python3*/dist-packages 2>/dev/null | head -1)
  [ -n "$pydir" ] && [ -e "$pydir/nnterp/__init__.py" ] || { echo "FAIL: the Python package was not installed"; exit 1; }
  (cd "$work" && PYTHONPATH="$pydir" "$python" -c "
import nnterp
print('nnterp', nnterp.__version__, 'from', nnterp.__file__)
assert nnterp.__file__.startswith('$pydir'), nnterp.__file__
model = nnterp.StandardizedTransformer()
assert model.name_or_path == '$moved/share/nnterp/models/default', model.name_or_path
print(nnterp.logit_lens(model, 'The capital of France is').shape)
")
  echo "ok: the moved prefix's Python package imported and found its default model"
fi
