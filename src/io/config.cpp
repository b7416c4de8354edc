#include "nnterp/config.hpp"

#include <cstdint>
#include <fstream>
#include <iterator>

#include "io/config_json.hpp"
#include "io/json_limits.hpp"
#include "io/json_reader.hpp"
#include "nnterp/error.hpp"

namespace nnterp {

using nlohmann::json;

struct Config::Data {
  nlohmann::json value = nlohmann::json::object();
  std::string source = "(empty config)";
};

Config::Config() : data_(std::make_shared<const Data>()) {}

Config ConfigAccess::from_json(nlohmann::json j, std::string source) {
  if (!j.is_object()) throw Error(ErrorKind::Config, source, "config is not a JSON object");
  io::check_json_depth(io::json_value_depth(j), source);  // before anything copies or dumps it
  Config c;
  c.data_ = std::make_shared<const Config::Data>(Config::Data{std::move(j), std::move(source)});
  return c;
}

const nlohmann::json& ConfigAccess::json(const Config& c) { return c.data_->value; }

const json* config_find(const Config& c, std::initializer_list<const char*> keys) {
  const json& j = ConfigAccess::json(c);
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

const std::string& Config::source() const { return data_->source; }

std::string Config::dump(int indent) const { return data_->value.dump(indent); }

Config Config::section(const char* key) const {
  const json* v = config_find(*this, {key});
  if (v && !v->is_object())
    throw Error(ErrorKind::Config, source(), "'" + std::string(key) + "' should be an object or null, got " + v->dump());
  return ConfigAccess::from_json(v ? *v : json::object(), source() + " (" + key + ")");
}

static Config parse_text(std::string_view text, std::string source) {
  io::check_json_depth(io::json_text_depth(text), source);
  json parsed;
  try {
    parsed = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Format, source, std::string("invalid JSON: ") + e.what());
  }
  return ConfigAccess::from_json(std::move(parsed), std::move(source));
}

Config Config::parse(std::string_view text, std::string source) { return parse_text(text, std::move(source)); }

Config Config::load(const std::filesystem::path& path) {
  std::error_code ec;
  std::ifstream in(path, std::ios::binary);
  if (!in || !std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::Io, path.string(), "cannot open", "a model folder must contain config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_text(text, path.string());
}

std::string Config::model_type() const { return string({"model_type"}); }

std::optional<std::string> Config::checkpoint_dtype() const {
  if (!config_find(*this, {"dtype", "torch_dtype"})) return std::nullopt;
  return string({"dtype", "torch_dtype"});
}

bool Config::has(const std::string& key) const { return config_find(*this, {key.c_str()}) != nullptr; }

static std::string names(std::initializer_list<const char*> keys) {
  std::string out;
  for (const char* k : keys) out += std::string(out.empty() ? "'" : " or '") + k + "'";
  return out;
}

// The first present (non-null) key's value, checked by JsonValue (errors name the file and key).
static std::optional<io::JsonValue> first_present(const Config& c, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (const json* v = config_find(c, {k})) return io::JsonValue(*v, c.source(), ErrorKind::Config, k);
  return std::nullopt;
}

static io::JsonValue required(const Config& c, std::initializer_list<const char*> keys, const char* what) {
  if (auto v = first_present(c, keys)) return *v;
  throw Error(ErrorKind::Config, c.source(), "missing " + names(keys) + " (" + what + ")");
}

int64_t Config::integer(std::initializer_list<const char*> keys) const { return required(*this, keys, "an integer").integer(); }
double Config::number(std::initializer_list<const char*> keys) const { return required(*this, keys, "a number").number(); }
std::string Config::string(std::initializer_list<const char*> keys) const { return required(*this, keys, "a string").string(); }

int64_t Config::integer_or(std::initializer_list<const char*> keys, int64_t fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->integer() : fallback;
}
double Config::number_or(std::initializer_list<const char*> keys, double fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->number() : fallback;
}
bool Config::boolean_or(std::initializer_list<const char*> keys, bool fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->boolean() : fallback;
}
std::string Config::string_or(std::initializer_list<const char*> keys, const std::string& fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->string() : fallback;
}
std::vector<int64_t> Config::integers_or(std::initializer_list<const char*> keys, std::vector<int64_t> fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->integers() : fallback;
}
std::vector<double> Config::numbers(std::initializer_list<const char*> keys) const {
  return required(*this, keys, "a list of numbers").numbers();
}
std::vector<std::string> Config::strings_or(std::initializer_list<const char*> keys, std::vector<std::string> fallback) const {
  auto v = first_present(*this, keys);
  return v ? v->strings() : fallback;
}

std::vector<int64_t> Config::token_ids(const char* key) const {
  const auto v = first_present(*this, {key});
  if (!v) return {};
  return v->is_array() ? v->integers() : std::vector<int64_t>{v->integer()};
}

io::JsonValue config_root(const Config& c) { return io::JsonValue(ConfigAccess::json(c), c.source(), ErrorKind::Config); }

}  // namespace nnterp
