// Checked reading of untrusted JSON (config.json, generation_config.json, safetensors headers and
// index files, activation manifests, JSONL prompt files): every accessor checks what it reads and
// throws nnterp::Error naming the file, the key path ("rope_scaling.factor", "mlp_only_layers[2]")
// and the type it expected. nnterp reads file contents only through these (tools/check_json_reads.sh
// fails the build's lint when a raw nlohmann get<>/at()/operator[] on a file's content appears).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nnterp/error.hpp"

namespace nnterp::io {

// The JSON document in `path`, parsed with the nesting limit (json_limits.hpp); an Error naming the
// file when it cannot be read (Io) or is not JSON (Format).
nlohmann::json read_json_file(const std::filesystem::path& path);

class JsonValue {
 public:
  // `value` must outlive the JsonValue. `kind` is the ErrorKind of every error (Config for a
  // model's config files, Format for other files); `path` is where `value` sits in its file.
  JsonValue(const nlohmann::json& value, std::string source, ErrorKind kind = ErrorKind::Format, std::string path = "");

  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }
  // The raw value, for type tests and dumps (never read it with get<>, at() or []).
  const nlohmann::json& raw() const { return *value_; }

  bool is_null() const { return value_->is_null(); }
  bool is_object() const { return value_->is_object(); }
  bool is_array() const { return value_->is_array(); }
  bool is_string() const { return value_->is_string(); }
  bool is_bool() const { return value_->is_boolean(); }
  bool is_number() const { return value_->is_number(); }
  bool is_integer() const;  // an integer in int64 range (4096.0 counts)
  bool is_uinteger() const;  // an integer in [0, 2^64) (4096.0 counts)

  // Objects (each throws when this value is not an object).
  bool has(const std::string& key) const;                        // present and not null
  bool contains(const std::string& key) const;                   // present, null included
  std::optional<JsonValue> find(const std::string& key) const;  // absent or null: nullopt
  JsonValue at(const std::string& key) const;                   // absent or null: an error naming the key
  std::vector<std::pair<std::string, JsonValue>> items() const;
  // The member `key`, converted, or `fallback` when absent or null.
  int64_t integer_or(const std::string& key, int64_t fallback) const;
  double number_or(const std::string& key, double fallback) const;
  bool boolean_or(const std::string& key, bool fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;

  // Arrays.
  std::vector<JsonValue> elements() const;
  // elements() / items() without a vector: f(element) or f(key, member) for each in turn, through
  // one JsonValue reused from call to call (so only valid during the call). For large arrays and
  // objects (a tokenizer's 500,000 merges), where building a JsonValue apiece slows loading.
  template <typename F>
  void for_each_element(F&& f) const;
  template <typename F>
  void for_each_item(F&& f) const;
  size_t size() const;  // of an array or object

  // Scalars: an error naming the path when the value has another type.
  int64_t integer() const;  // 4096.0 is accepted as 4096; 2.5, 1e300 and 2^64-1 are not integers
  uint64_t uinteger() const;  // the same in [0, 2^64): 2^64-1 is accepted, -1 is not
  double number() const;    // any number
  bool boolean() const;
  std::string string() const;
  std::vector<int64_t> integers() const;     // an array of integers
  std::vector<double> numbers() const;       // an array of numbers
  std::vector<std::string> strings() const;  // an array of strings

  // Throws Error: "'<path>' should be <expected>, got <the value>".
  [[noreturn]] void fail(const std::string& expected) const;
  // The path of a member or element of this value.
  std::string child_path(const std::string& key) const;
  std::string child_path(size_t index) const;

 private:
  void expect(bool ok, const char* expected) const {
    if (!ok) fail(expected);
  }
  const nlohmann::json* value_;
  std::string source_;
  ErrorKind kind_;
  std::string path_;
};

template <typename F>
void JsonValue::for_each_element(F&& f) const {
  expect(is_array(), "an array");
  JsonValue e(*value_, source_, kind_);
  for (size_t i = 0; i < value_->size(); ++i) {
    e.value_ = &(*value_)[i];
    e.path_.assign(path_).append("[").append(std::to_string(i)).append("]");  // child_path(i), in place
    f(static_cast<const JsonValue&>(e));
  }
}

template <typename F>
void JsonValue::for_each_item(F&& f) const {
  expect(is_object(), "an object");
  JsonValue e(*value_, source_, kind_);
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    e.value_ = &it.value();
    e.path_.assign(path_).append(path_.empty() ? "" : ".").append(it.key());  // child_path(key), in place
    f(it.key(), static_cast<const JsonValue&>(e));
  }
}

}  // namespace nnterp::io
