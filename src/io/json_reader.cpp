#include "io/json_reader.hpp"

#include <cmath>
#include <fstream>
#include <iterator>

#include "io/json_limits.hpp"

namespace nnterp::io {

using nlohmann::json;

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path.string(), "cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check_json_depth(json_text_depth(text), path.string());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Format, path.string(), std::string("invalid JSON: ") + e.what());
  }
}

JsonValue::JsonValue(const json& value, std::string source, ErrorKind kind, std::string path)
    : value_(&value), source_(std::move(source)), kind_(kind), path_(std::move(path)) {}

std::string JsonValue::child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
std::string JsonValue::child_path(size_t index) const { return path_ + "[" + std::to_string(index) + "]"; }

void JsonValue::fail(const std::string& expected) const {
  // The value as written, shortened: a corrupt file can hold megabytes where a number belongs.
  std::string got = value_->dump(-1, ' ', false, json::error_handler_t::replace);
  if (got.size() > 80) got = got.substr(0, 77) + "...";
  const std::string what = path_.empty() ? "the top level" : "'" + path_ + "'";
  throw Error(kind_, source_, what + " should be " + expected + ", got " + got);
}

bool JsonValue::is_integer() const {
  if (value_->is_number_unsigned()) return value_->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
  if (value_->is_number_integer()) return true;
  if (!value_->is_number_float()) return false;
  const double d = value_->get<double>();
  return d >= -9.2e18 && d <= 9.2e18 && d == std::floor(d);
}

bool JsonValue::is_uinteger() const {
  if (value_->is_number_unsigned()) return true;
  if (value_->is_number_integer()) return value_->get<int64_t>() >= 0;
  if (!value_->is_number_float()) return false;
  const double d = value_->get<double>();
  return d >= 0 && d <= 1.8e19 && d == std::floor(d);
}

bool JsonValue::has(const std::string& key) const { return find(key).has_value(); }

bool JsonValue::contains(const std::string& key) const {
  expect(is_object(), "an object");
  return value_->contains(key);
}

std::optional<JsonValue> JsonValue::find(const std::string& key) const {
  expect(is_object(), "an object");
  auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonValue(*it, source_, kind_, child_path(key));
}

JsonValue JsonValue::at(const std::string& key) const {
  if (auto v = find(key)) return *v;
  throw Error(kind_, source_, "missing '" + child_path(key) + "'");
}

std::vector<std::pair<std::string, JsonValue>> JsonValue::items() const {
  expect(is_object(), "an object");
  std::vector<std::pair<std::string, JsonValue>> out;
  for (auto it = value_->begin(); it != value_->end(); ++it)
    out.emplace_back(it.key(), JsonValue(it.value(), source_, kind_, child_path(it.key())));
  return out;
}

std::vector<JsonValue> JsonValue::elements() const {
  expect(is_array(), "an array");
  std::vector<JsonValue> out;
  for (size_t i = 0; i < value_->size(); ++i) out.emplace_back((*value_)[i], source_, kind_, child_path(i));
  return out;
}

size_t JsonValue::size() const {
  expect(is_array() || is_object(), "an array or an object");
  return value_->size();
}

int64_t JsonValue::integer() const {
  expect(is_integer(), "an integer");
  return value_->is_number_float() ? static_cast<int64_t>(value_->get<double>()) : value_->get<int64_t>();
}

uint64_t JsonValue::uinteger() const {
  expect(is_uinteger(), "a non-negative integer");
  if (value_->is_number_float()) return static_cast<uint64_t>(value_->get<double>());
  return value_->is_number_unsigned() ? value_->get<uint64_t>() : static_cast<uint64_t>(value_->get<int64_t>());
}

double JsonValue::number() const {
  expect(is_number(), "a number");
  return value_->get<double>();
}

bool JsonValue::boolean() const {
  expect(is_bool(), "true or false");
  return value_->get<bool>();
}

std::string JsonValue::string() const {
  expect(is_string(), "a string");
  return value_->get<std::string>();
}

std::vector<int64_t> JsonValue::integers() const {
  expect(is_array(), "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : elements()) out.push_back(e.integer());
  return out;
}

std::vector<double> JsonValue::numbers() const {
  expect(is_array(), "a list of numbers");
  std::vector<double> out;
  for (const auto& e : elements()) out.push_back(e.number());
  return out;
}

std::vector<std::string> JsonValue::strings() const {
  expect(is_array(), "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : elements()) out.push_back(e.string());
  return out;
}

int64_t JsonValue::integer_or(const std::string& key, int64_t fallback) const {
  auto v = find(key);
  return v ? v->integer() : fallback;
}
double JsonValue::number_or(const std::string& key, double fallback) const {
  auto v = find(key);
  return v ? v->number() : fallback;
}
bool JsonValue::boolean_or(const std::string& key, bool fallback) const {
  auto v = find(key);
  return v ? v->boolean() : fallback;
}
std::string JsonValue::string_or(const std::string& key, const std::string& fallback) const {
  auto v = find(key);
  return v ? v->string() : fallback;
}

}  // namespace nnterp::io
