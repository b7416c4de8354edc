// Name patterns with "{i}" (layer) and "{e}" (expert), as in the tables of points and weights and
// in the architecture files' HF names.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace nnterp {

// `pattern` with every "{i}" replaced by `layer` and every "{e}" by `expert`.
inline std::string expand_name_pattern(std::string pattern, int64_t layer, int64_t expert = -1) {
  for (auto [key, value] : {std::pair<const char*, int64_t>{"{i}", layer}, {"{e}", expert}})
    for (size_t at = pattern.find(key); at != std::string::npos; at = pattern.find(key))
      pattern.replace(at, 3, std::to_string(value));
  return pattern;
}

}  // namespace nnterp
