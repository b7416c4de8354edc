// A model's config.json with typed, error-reporting accessors.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace nnterp {

class Config {
 public:
  Config() = default;
  Config(nlohmann::json json, std::string source);
  static Config load(const std::filesystem::path& config_json);

  const nlohmann::json& json() const { return json_; }
  const std::string& source() const { return source_; }
  std::string model_type() const;
  // The checkpoint's dtype as written by transformers ("float32", "bfloat16", ...): the key
  // `dtype` (transformers >= 4.56) or `torch_dtype` (older); nullopt when neither is present.
  std::optional<std::string> checkpoint_dtype() const;

  bool has(const std::string& key) const;  // present and not null
  // The first present (non-null) key among `keys`; throws Error(Config) naming them all if none is.
  int64_t integer(std::initializer_list<const char*> keys) const;
  double number(std::initializer_list<const char*> keys) const;
  std::string string(std::initializer_list<const char*> keys) const;
  // The same with a default when no key is present; a present value of the wrong type still throws.
  int64_t integer_or(std::initializer_list<const char*> keys, int64_t fallback) const;
  double number_or(std::initializer_list<const char*> keys, double fallback) const;
  bool boolean_or(std::initializer_list<const char*> keys, bool fallback) const;
  std::string string_or(std::initializer_list<const char*> keys, const std::string& fallback) const;
  const nlohmann::json* find(std::initializer_list<const char*> keys) const;

 private:
  nlohmann::json json_;
  std::string source_;
};

}  // namespace nnterp
