#!/usr/bin/env bash
# The layering rules (README "Layout"), checked on the includes (ctest: lint.layering):
#   io → chat → tokenizer, io → model → trace → methods → cli, io → sae → trace: a layer includes only the headers of the layers below it;
#   include/nnterp/ includes only libtorch, the standard library and include/nnterp/ (no src/, no
#   nlohmann/json: a consumer needs only libtorch + nnterp); cli/ and python/src/ include only the public API;
#   architecture files name standardized weights by Weight:: key, never by string.
# Prints every violation and exits 1 when there is one.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
violation() { echo "layering: $1"; fail=1; }

# Quoted project includes of a file: "core/x.hpp" → core
project_includes() { grep -hoE '^#include "[^"]+"' "$@" 2>/dev/null | sed -E 's/#include "([^"]+)"/\1/'; }

check_dir() {  # check_dir DIR ALLOWED_PREFIX_REGEX
  local dir=$1 allowed=$2 f inc
  for f in $(find "$dir" -name '*.cpp' -o -name '*.hpp'); do
    while read -r inc; do
      [ -z "$inc" ] && continue
      [[ $inc =~ ^($allowed) ]] || violation "$f includes \"$inc\""
    done < <(project_includes "$f")
  done
}

check_dir include/nnterp 'nnterp/'
grep -nE '#include *<nlohmann/' include/nnterp/*.hpp && violation "a public header includes nlohmann/json"
check_dir cli 'nnterp/|[a-z_]+\.hpp$'
check_dir python/src 'nnterp/|bindings\.hpp$'
check_dir src/core 'nnterp/|core/'
check_dir src/io 'nnterp/|core/|io/'
check_dir src/chat 'nnterp/|core/|io/|chat/'
check_dir src/tokenizer 'nnterp/|core/|io/|chat/|tokenizer/'
check_dir src/model 'nnterp/|core/|io/|model/'
check_dir src/sae 'nnterp/|core/|io/|sae/'
check_dir src/trace 'nnterp/|core/|trace/'
check_dir src/generate 'nnterp/|core/|generate/'
check_dir src/methods 'nnterp/|core/|io/|methods/'
check_dir src/plot 'nnterp/|core/|plot/'

# Standardized weight names are typed keys (nnterp/weight_names.hpp): none of the table's names
# (or their stems, "layers.{i}.attn.o") may appear as a string literal in the architecture files or
# their shared helpers. lm_head.* is left out: HF checkpoints name that tensor the same way.
stems=$(grep -oE '\{Weight::[A-Za-z]+, "[^"]+"' src/core/weight_names.cpp | sed -E 's/.*"([^"]+)"/\1/' |
        sed -E 's/\.(weight|bias)$//' | grep -v '^lm_head$' | sort -u | sed -E 's/[.{}]/\\&/g' | paste -sd'|')
[ -n "$stems" ] || violation "no weight names found in src/core/weight_names.cpp"
if grep -nE "\"($stems)(\.weight|\.bias)?\"" src/model/archs/*.cpp src/model/archs/*.hpp src/model/arch_registry.cpp; then
  violation "a standardized weight name is spelled as a string above (use Weight:: keys)"
fi

[ $fail = 0 ] && echo "layering: ok (includes follow io → model → trace → methods → cli; weights are typed)"
exit $fail
