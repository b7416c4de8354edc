#include "nnterp/config.hpp"

#include <cmath>
#include <cstdint>
#include <fstream>

#include "io/json_limits.hpp"
#include "nnterp/error.hpp"

namespace nnterp {

using nlohmann::json;

Config::Config(nlohmann::json j, std::string source) : json_(std::move(j)), source_(std::move(source)) {
  if (!json_.is_object()) throw Error(ErrorKind::Config, source_, "config is not a JSON object");
  io::check_json_depth(io::json_value_depth(json_), source_);  // before anything copies or dumps it
}

Config Config::load(const std::filesystem::path& path) {
  std::error_code ec;
  std::ifstream in(path, std::ios::binary);
  if (!in || !std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::Io, path.string(), "cannot open", "a model folder must contain config.json");
  nlohmann::json parsed;
  try {
    parsed = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Format, path.string(), std::string("invalid JSON: ") + e.what());
  }
  return Config(std::move(parsed), path.string());
}

std::string Config::model_type() const { return string({"model_type"}); }

std::optional<std::string> Config::checkpoint_dtype() const {
  if (!find({"dtype", "torch_dtype"})) return std::nullopt;
  return string({"dtype", "torch_dtype"});
}

bool Config::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const json* Config::find(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    auto it = json_.find(k);
    if (it != json_.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

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
                "'" + first_present_name(c.json(), keys) + "' should be " + what + ", got " + value.dump());
  }
}

template <typename T>
static T required(const Config& c, std::initializer_list<const char*> keys, const char* what) {
  const json* v = c.find(keys);
  if (!v) throw Error(ErrorKind::Config, c.source(), "missing " + names(keys) + " (" + what + ")");
  return typed<T>(*v, c, keys, what);
}

template <typename T>
static T optional_value(const Config& c, std::initializer_list<const char*> keys, T fallback, const char* what) {
  const json* v = c.find(keys);
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
