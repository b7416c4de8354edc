#include "nnterp/config.hpp"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>

#include "io/config_json.hpp"
#include "io/json_limits.hpp"
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

static std::string first_present_name(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (j.contains(k) && !j[k].is_null()) return k;
  return names(keys);
}

template <typename T>
static T typed(const json& value, const Config& c, std::initializer_list<const char*> keys, const char* what) {
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (value.is_number_float()) {  // 4096.0 is accepted as 4096
        double d = value.get<double>();
        if (!(d >= -9.2e18 && d <= 9.2e18) || d != std::floor(d)) throw std::runtime_error("not an integer");
        return static_cast<int64_t>(d);
      }
      if (!value.is_number_integer()) throw std::runtime_error("");
      if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw std::runtime_error("too large");
    } else if constexpr (std::is_same_v<T, double>) {
      if (!value.is_number()) throw std::runtime_error("");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!value.is_boolean()) throw std::runtime_error("");
    } else {
      if (!value.is_string()) throw std::runtime_error("");
    }
    return value.get<T>();
  } catch (const std::exception&) {
    throw Error(ErrorKind::Config, c.source(),
                "'" + first_present_name(ConfigAccess::json(c), keys) + "' should be " + what + ", got " + value.dump());
  }
}

template <typename T>
static T required(const Config& c, std::initializer_list<const char*> keys, const char* what) {
  const json* v = config_find(c, keys);
  if (!v) throw Error(ErrorKind::Config, c.source(), "missing " + names(keys) + " (" + what + ")");
  return typed<T>(*v, c, keys, what);
}

template <typename T>
static T optional_value(const Config& c, std::initializer_list<const char*> keys, T fallback, const char* what) {
  const json* v = config_find(c, keys);
  return v ? typed<T>(*v, c, keys, what) : fallback;
}

int64_t Config::integer(std::initializer_list<const char*> keys) const { return required<int64_t>(*this, keys, "an integer"); }
double Config::number(std::initializer_list<const char*> keys) const { return required<double>(*this, keys, "a number"); }
std::string Config::string(std::initializer_list<const char*> keys) const { return required<std::string>(*this, keys, "a string"); }
int64_t Config::integer_or(std::initializer_list<const char*> keys, int64_t f) const { return optional_value<int64_t>(*this, keys, f, "an integer"); }
double Config::number_or(std::initializer_list<const char*> keys, double f) const { return optional_value<double>(*this, keys, f, "a number"); }
bool Config::boolean_or(std::initializer_list<const char*> keys, bool f) const { return optional_value<bool>(*this, keys, f, "true or false"); }
std::string Config::string_or(std::initializer_list<const char*> keys, const std::string& f) const { return optional_value<std::string>(*this, keys, f, "a string"); }

}  // namespace nnterp
