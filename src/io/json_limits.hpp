// A nesting limit for every JSON file nnterp reads (config.json, tokenizer.json,
// tokenizer_config.json, safetensors headers and index files, JSONL prompts).
//
// nlohmann's parser and destructor are iterative, but dump() (used in error messages), copies and
// comparisons recurse once per level: a file of a million '[' parses fine and then overflows the
// stack when an error message quotes it (found with crafted inputs beyond the fuzzers' size
// limit; see docs/fuzzing.md). Real files nest fewer than 10 levels.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nnterp/error.hpp"

namespace nnterp::io {

inline constexpr size_t kMaxJsonDepth = 128;

// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count).
inline size_t json_text_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// The same for a parsed value (iterative: safe on any depth).
inline size_t json_value_depth(const nlohmann::json& root) {
  size_t deepest = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    if (!value->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const auto& child : *value) stack.emplace_back(&child, depth + 1);
  }
  return deepest;
}

// Throws Error(Format) on `subject` when `depth` exceeds kMaxJsonDepth.
inline void check_json_depth(size_t depth, const std::string& subject) {
  if (depth > kMaxJsonDepth)
    throw Error(ErrorKind::Format, subject,
                "the JSON nests " + std::to_string(depth) + " levels deep, more than the " + std::to_string(kMaxJsonDepth) +
                    " nnterp reads",
                "the file is corrupt or not what it claims to be");
}

}  // namespace nnterp::io
