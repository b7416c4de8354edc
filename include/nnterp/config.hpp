// A model's config.json with typed, error-reporting accessors. Every accessor that reads a value
// names the file and the key when the value is missing or of the wrong type.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nnterp {

class Config {
 public:
  Config();  // an empty object
  static Config load(const std::filesystem::path& config_json);
  // JSON text (an object); `source` names it in errors.
  static Config parse(std::string_view json_text, std::string source);

  const std::string& source() const;
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
  // A list of integers / strings (mlp_only_layers, layer_types, ...): every element is checked.
  std::vector<int64_t> integers_or(std::initializer_list<const char*> keys, std::vector<int64_t> fallback) const;
  std::vector<double> numbers(std::initializer_list<const char*> keys) const;  // a required list of numbers
  std::vector<std::string> strings_or(std::initializer_list<const char*> keys, std::vector<std::string> fallback) const;
  // A token id setting (eos_token_id, pad_token_id, ...): an integer or a list of integers; empty
  // when absent or null; Error(Config) naming the key for anything else.
  std::vector<int64_t> token_ids(const char* key) const;
  // The nested object `key` (rope_scaling, attn_config, ...) as a Config whose source names it;
  // empty when absent or null; Error(Config) when it is not an object.
  Config section(const char* key) const;
  // The JSON text (indent < 0: one line).
  std::string dump(int indent = -1) const;

 private:
  struct Data;
  std::shared_ptr<const Data> data_;
  friend struct ConfigAccess;
};

}  // namespace nnterp
