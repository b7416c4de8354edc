#include "chat/jinja_value.hpp"

#include <cmath>
#include <cstdio>

#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

void fail(std::string message) { throw EvalError{TemplateError::Kind::kRuntime, std::move(message)}; }
void fail_limit(std::string message) { throw EvalError{TemplateError::Kind::kLimit, std::move(message)}; }

namespace {

void check_nesting(int depth) {
  if (depth > kMaxValueNesting) fail_limit("values are nested too deeply (more than " + std::to_string(kMaxValueNesting) + " levels)");
}

}  // namespace

// ---- construction -----------------------------------------------------------------------

Value Value::undefined(std::string hint) {
  Value v;
  v.text_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.scalar_.b = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.scalar_.i = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.scalar_.f = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.text_ = std::move(s);
  return v;
}

Value Value::markup(std::string s) {
  Value v = string(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kList;
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  v.ref_ = std::move(data);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}

Value Value::iterator(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kIterator;
  return v;
}

Value Value::lazy_iterator(std::vector<Value> inputs, Producer producer) {
  Value v = iterator({});
  v.list_data().producer = std::move(producer);
  v.list_data().lazy_inputs = std::move(inputs);
  return v;
}

void materialize(const Value& iterator) {
  ListData& data = iterator.list_data();
  if (!data.producer) return;
  const auto producer = std::move(data.producer);
  std::vector<Value> inputs = std::move(data.lazy_inputs);
  data.producer = nullptr;
  data.lazy_inputs.clear();
  data.items = producer(inputs);
  drain_values(std::move(inputs));
}

Value Value::dict_view(ViewKind view, std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kDictView;
  v.list_data().view = view;
  return v;
}

Value Value::dict(std::shared_ptr<DictData> data) {
  Value v;
  v.kind_ = Kind::kDict;
  v.ref_ = std::move(data);
  return v;
}

Value Value::empty_dict() { return dict(std::make_shared<DictData>()); }

Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = Kind::kObject;
  v.ref_ = std::move(object);
  return v;
}

const std::vector<Value>& Value::items() const { return list_data().items; }

ViewKind Value::view_kind() const { return kind_ == Kind::kDictView ? list_data().view : ViewKind::kNone; }

bool Value::owns_container() const {
  return std::visit(
      [](const auto& p) {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
          return false;
        } else {
          return p.use_count() == 1;
        }
      },
      ref_);
}

void Value::take_children(std::vector<Value>& out) {
  if (auto* list = std::get_if<std::shared_ptr<ListData>>(&ref_)) {
    for (auto& item : (*list)->items) out.push_back(std::move(item));
    (*list)->items.clear();
    for (auto& input : (*list)->lazy_inputs) out.push_back(std::move(input));
    (*list)->lazy_inputs.clear();
    (*list)->producer = nullptr;
  } else if (auto* dict = std::get_if<std::shared_ptr<DictData>>(&ref_)) {
    (*dict)->take_children(out);
  } else if (auto* object = std::get_if<std::shared_ptr<Object>>(&ref_)) {
    (*object)->take_children(out);
  }
}

void drain_values(std::vector<Value>&& values) {
  std::vector<Value> pending = std::move(values);
  while (!pending.empty()) {
    Value v = std::move(pending.back());
    pending.pop_back();
    if (v.owns_container()) v.take_children(pending);
  }  // v dies here holding no children, so its destructor does not recurse
}

ListData::~ListData() {
  if (!items.empty()) drain_values(std::move(items));
  if (!lazy_inputs.empty()) drain_values(std::move(lazy_inputs));
}

// ---- dict ---------------------------------------------------------------------------------

DictData::~DictData() {
  if (!entries_.empty()) {
    std::vector<Value> children;
    take_children(children);
    drain_values(std::move(children));
  }
}

const Value* DictData::find(const Value& key) const {
  const auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void DictData::set(const Value& key, Value value) {
  std::string k = hash_key(key);
  const auto it = index_.find(k);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);  // Python keeps the first key object
    return;
  }
  index_.emplace(std::move(k), entries_.size());
  entries_.emplace_back(key, std::move(value));
}

bool DictData::erase(const Value& key) {
  const auto it = index_.find(hash_key(key));
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(hash_key(entries_[i].first), i);
  return true;
}

void DictData::clear() {
  std::vector<Value> children;
  take_children(children);
  drain_values(std::move(children));
}

void DictData::take_children(std::vector<Value>& out) {
  for (auto& [key, value] : entries_) {
    out.push_back(std::move(key));
    out.push_back(std::move(value));
  }
  entries_.clear();
  index_.clear();
}

// ---- objects ------------------------------------------------------------------------------

std::optional<Value> Object::get_attr(const std::string& name) {
  (void)name;
  return std::nullopt;
}

bool Object::set_attr(const std::string& name, Value value) {
  (void)name;
  (void)value;
  return false;
}

Value Object::call(Interpreter& interp, const CallArgs& args) {
  (void)interp;
  (void)args;
  fail("'" + type_name() + "' object is not callable");
}

// ---- Python semantics -------------------------------------------------------------------

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_double() != 0;
    case Value::Kind::kString:
      return !v.str().empty();
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDictView:
      return !v.items().empty();
    case Value::Kind::kDict:
      return !v.dict_data().empty();
    case Value::Kind::kIterator:
      return true;  // generator objects are always true
    case Value::Kind::kObject: {
      const auto n = v.object().length();
      return !n || *n > 0;
    }
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return v.is_markup() ? "Markup" : "str";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kTuple:
      return "tuple";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kIterator:
      return "generator";
    case Value::Kind::kDictView:
      switch (v.view_kind()) {
        case ViewKind::kKeys:
          return "dict_keys";
        case ViewKind::kValues:
          return "dict_values";
        default:
          return "dict_items";
      }
    case Value::Kind::kObject:
      return v.object().type_name();
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return type_name(v) + " object";
}

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && (c < 0x7F || (c > 0x7F && is_printable(c)))) {
      append_utf8(out, c);
    } else {
      append_hex_escape(out, c);
    }
  }
  out += quote;
  return out;
}

namespace {

std::string repr_at(const Value& v, int depth);

std::string join_reprs(const std::vector<Value>& items, int depth) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += repr_at(items[i], depth + 1);
  }
  return out;
}

std::string repr_dict(const DictData& d, int depth) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : d.entries()) {
    if (!first) out += ", ";
    first = false;
    out += repr_at(key, depth + 1);
    out += ": ";
    out += repr_at(value, depth + 1);
  }
  return out + "}";
}

// The nesting of the str_at calls around an object's repr(): a namespace's repr() starts over
// with repr() of its attributes, which must not reset the count (a namespace holding itself, or a
// long chain of namespaces, recursed until the stack overflowed; found by fuzz_chat_template).
thread_local int t_enclosing_depth = 0;

// str() and repr() differ only for strings (and Undefined) at the top level.
std::string str_at(const Value& v, int depth, bool as_repr) {
  check_nesting(t_enclosing_depth + depth);
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return as_repr ? "Undefined" : "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return repr_int(v.as_int());
    case Value::Kind::kFloat:
      return repr_float(v.as_double());
    case Value::Kind::kString:
      if (!as_repr) return v.str();
      return v.is_markup() ? "Markup(" + repr_string(v.str()) + ")" : repr_string(v.str());
    case Value::Kind::kList:
      return "[" + join_reprs(v.items(), depth) + "]";
    case Value::Kind::kTuple:
      return "(" + join_reprs(v.items(), depth) + (v.items().size() == 1 ? ",)" : ")");
    case Value::Kind::kDict:
      return repr_dict(v.dict_data(), depth);
    case Value::Kind::kIterator:
      return "<generator object>";
    case Value::Kind::kDictView:
      return type_name(v) + "([" + join_reprs(v.items(), depth) + "])";
    case Value::Kind::kObject: {
      struct Enclosing {
        int saved = t_enclosing_depth;
        ~Enclosing() { t_enclosing_depth = saved; }
      } enclosing;
      t_enclosing_depth += depth + 1;
      return v.object().repr();
    }
  }
  return "";
}

std::string repr_at(const Value& v, int depth) { return str_at(v, depth, true); }

}  // namespace

std::string to_str(const Value& v) { return str_at(v, 0, false); }
std::string repr(const Value& v) { return str_at(v, 0, true); }

bool equals(const Value& a, const Value& b, int depth) {
  check_nesting(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.str() == b.str();
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i], depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.dict_data();
      const auto& y = b.dict_data();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries()) {
        const Value* other = y.find(key);
        if (!other || !equals(value, *other, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::kDictView: {
      if (a.view_kind() != b.view_kind() || a.view_kind() == ViewKind::kValues) return a.list_ptr() == b.list_ptr();
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (const auto& item : x) {
        bool found = false;
        for (const auto& other : y) {
          if (equals(item, other, depth + 1)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    case Value::Kind::kIterator:
      return a.list_ptr() == b.list_ptr();
    case Value::Kind::kObject:
      return a.object_ptr() == b.object_ptr();
    default:
      return false;
  }
}

bool less_than(const Value& a, const Value& b, int depth) {
  check_nesting(depth);
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order is code point order
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i], depth + 1)) return less_than(x[i], y[i], depth + 1);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

std::string hash_key(const Value& v, int depth) {
  check_nesting(depth);
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "u";
    case Value::Kind::kNone:
      return "N";
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return "i" + std::to_string(v.as_int());
    case Value::Kind::kFloat: {
      const double f = v.as_double();
      if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18) {
        return "i" + std::to_string(static_cast<int64_t>(f));
      }
      return "f" + repr_float(f);
    }
    case Value::Kind::kString:
      return "s" + v.str();
    case Value::Kind::kTuple: {
      std::string out = "t";
      for (const auto& item : v.items()) {
        std::string k = hash_key(item, depth + 1);
        out += std::to_string(k.size()) + ":" + k;
      }
      return out;
    }
    case Value::Kind::kIterator:
    case Value::Kind::kObject: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "o%p",
                    v.is_object() ? static_cast<const void*>(v.object_ptr().get())
                                  : static_cast<const void*>(v.list_ptr().get()));
      return buf;
    }
    default:
      fail("unhashable type: '" + type_name(v) + "'");
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        decode_utf8(s, pos);
        chars.push_back(Value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDictView:
      return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict_data().size());
      for (const auto& entry : v.dict_data().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kIterator: {
      materialize(v);
      ListData& data = v.list_data();
      std::vector<Value> rest(data.items.begin() + static_cast<std::ptrdiff_t>(data.cursor), data.items.end());
      data.cursor = data.items.size();
      return rest;
    }
    default:
      fail("'" + type_name(v) + "' object is not iterable");
  }
}

bool is_iterable(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kString:
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDict:
    case Value::Kind::kIterator:
    case Value::Kind::kDictView:
      return true;
    default:
      return false;
  }
}

std::optional<size_t> length_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return count_code_points(v.str());
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDictView:
      return v.items().size();
    case Value::Kind::kDict:
      return v.dict_data().size();
    case Value::Kind::kObject:
      return v.object().length();
    default:
      return std::nullopt;
  }
}

void fail_undefined(const Value& undefined) {
  throw EvalError{TemplateError::Kind::kRuntime,
                  undefined.undefined_hint().empty() ? "undefined value used" : undefined.undefined_hint()};
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The caller's context (messages, tools): each value is read as the type the switch just matched.
Value from_json(const nlohmann::ordered_json& j, int max_depth) {
  if (max_depth < 0) fail_limit("the context is nested too deeply");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());  // json: type-checked
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());  // json: type-checked
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();  // json: type-checked
      // Python ints are unbounded; values past int64 become floats here.
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());  // json: type-checked
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get_ref<const std::string&>());  // json: type-checked
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item, max_depth - 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto dict = std::make_shared<DictData>();
      for (const auto& [key, item] : j.items()) dict->set(Value::string(key), from_json(item, max_depth - 1));
      return Value::dict(std::move(dict));
    }
    default:
      fail("the context holds a value that has no Python equivalent (binary data)");
  }
}

}  // namespace nnterp::chat::jinja_detail
