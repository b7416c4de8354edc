#!/usr/bin/env bash
# Untrusted JSON (config.json, generation_config.json, tokenizer files, manifests, JSONL prompt
# files) is read only through the checked accessors of src/io/json_reader.hpp, whose errors name
# the file, the key path and the expected type (ctest: lint.json_reads). A raw nlohmann read —
# get<>, get_ref<>, value("key", ...), or ["key"] outside an assignment — fails this check unless:
#   * the file is src/io/json_reader.cpp (the accessors themselves), or
#   * the file is src/io/safetensors.cpp, whose header/index parser is its own checked reader (each
#     value's type is tested before it is read; the fuzz_safetensors target covers it), or
#   * the line reads JSON that nnterp built itself and says so: `// json: built here`, or
#   * the line reads a value as the type a switch on its type() just matched: `// json: type-checked`.
set -uo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\.get<|\.get_ref<|\.value\("|\["[A-Za-z_][A-Za-z0-9_.]*"\]' src --include='*.cpp' --include='*.hpp' |
       grep -vE '^src/io/(json_reader|safetensors)\.cpp:' |
       grep -vE 'json: (built here|type-checked)' |
       grep -vE '\["[A-Za-z_][A-Za-z0-9_.]*"\](\["[A-Za-z_][A-Za-z0-9_.]*"\])* = ' |
       grep -vE '^[^:]+:[0-9]+: *//')
if [ -n "$hits" ]; then
  echo "$hits"
  echo "json reads: raw nlohmann reads of file content above; use io::JsonValue (src/io/json_reader.hpp)"
  exit 1
fi
echo "json reads: ok (file content is read through io::JsonValue)"
