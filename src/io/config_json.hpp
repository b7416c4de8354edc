// The JSON behind a Config, for the library's own readers (architecture files read nested lists
// and objects that the typed accessors do not cover, through io::JsonValue). Not part of the public API.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "io/json_reader.hpp"
#include "nnterp/config.hpp"

namespace nnterp {

struct ConfigAccess {
  // Checks that `json` is an object of bounded nesting; `source` names it in errors.
  static Config from_json(nlohmann::json json, std::string source);
  static const nlohmann::json& json(const Config& config);
};

// The value of the first present (non-null) key among `keys`, or null (for presence and type tests;
// read values through config_root or Config's accessors).
const nlohmann::json* config_find(const Config& config, std::initializer_list<const char*> keys);
// The whole config as a checked JSON reader (errors are ErrorKind::Config naming the file and key path).
io::JsonValue config_root(const Config& config);

}  // namespace nnterp
