// Python attributes of builtin values (str, list, tuple, dict and number methods) and the
// template globals.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <set>

#include "chat/jinja_builtins.hpp"
#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"
#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

namespace {

// Positional-or-keyword arguments of a method, by parameter name.
class MethodArgs {
 public:
  MethodArgs(const std::string& method, const CallArgs& args, std::vector<const char*> names, size_t required)
      : values_(names.size()) {
    if (args.positional.size() > names.size()) {
      fail(method + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
           std::to_string(args.positional.size()) + " given)");
    }
    for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
    for (const auto& keyword : args.keyword) {
      const auto it = std::find_if(names.begin(), names.end(), [&](const char* n) { return keyword.first == n; });
      if (it == names.end()) fail(method + "() got an unexpected keyword argument '" + keyword.first + "'");
      values_[static_cast<size_t>(it - names.begin())] = keyword.second;
    }
    for (size_t i = 0; i < required; ++i) {
      if (!values_[i]) fail(method + "() missing required argument '" + names[i] + "'");
    }
  }
  bool given(size_t i) const { return values_[i].has_value() && !values_[i]->is_none(); }
  const Value& operator[](size_t i) const { return *values_[i]; }

  const std::string& str(size_t i, const std::string& method) const {
    if (!values_[i]->is_string()) fail(method + "() argument must be str, not " + type_name(*values_[i]));
    return values_[i]->str();
  }
  std::optional<std::string> opt_str(size_t i, const std::string& method) const {
    if (!given(i)) return std::nullopt;
    return str(i, method);
  }
  int64_t integer(size_t i, int64_t fallback) const {
    if (!given(i)) return fallback;
    if (!values_[i]->is_integral()) fail("'" + type_name(*values_[i]) + "' object cannot be interpreted as an integer");
    return values_[i]->as_int();
  }
  std::optional<int64_t> opt_int(size_t i) const {
    if (!given(i)) return std::nullopt;
    return integer(i, 0);
  }

 private:
  std::vector<std::optional<Value>> values_;
};

Value bound_method(const std::string& name, Function::Fn fn) { return Value::object(std::make_shared<Function>(name, std::move(fn))); }

Value strings_to_list(std::vector<std::string> parts, bool markup) {
  std::vector<Value> items;
  for (auto& p : parts) items.push_back(markup ? Value::markup(std::move(p)) : Value::string(std::move(p)));
  return Value::list(std::move(items));
}

char32_t fill_char(const MethodArgs& a, size_t i, const std::string& method) {
  if (!a.given(i)) return U' ';
  const std::u32string fill = to_u32(a.str(i, method));
  if (fill.size() != 1) fail("The fill character must be exactly one character long");
  return fill[0];
}

template <class Pred>
bool all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return false;
  for (size_t pos = 0; pos < s.size();) {
    if (!pred(decode_utf8(s, pos))) return false;
  }
  return true;
}

bool py_istitle(const std::string& s) {
  bool previous_cased = false;
  bool any_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (is_upper(c)) {
      if (previous_cased) return false;
      previous_cased = any_cased = true;
    } else if (is_lower(c)) {
      if (!previous_cased) return false;
      previous_cased = any_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return any_cased;
}

bool py_isidentifier(const std::string& s) {
  if (s.empty()) return false;
  size_t pos = 0;
  const char32_t first = decode_utf8(s, pos);
  if (!(first == '_' || is_alpha(first))) return false;
  while (pos < s.size()) {
    if (!is_word_char(decode_utf8(s, pos))) return false;
  }
  return true;
}

std::string py_expandtabs(Interpreter& in, const std::string& s, int64_t tabsize) {
  std::string out;
  int64_t column = 0;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (c == '\t') {
      if (tabsize > 0) {
        const int64_t spaces = tabsize - column % tabsize;
        in.check_string_size(out.size() + static_cast<size_t>(spaces));
        out.append(static_cast<size_t>(spaces), ' ');
        column += spaces;
      }
    } else {
      append_utf8(out, c);
      column = (c == '\n' || c == '\r') ? 0 : column + 1;
    }
  }
  return out;
}

// startswith / endswith accept a str or a tuple of str.
bool affix_method(const std::string& s, const MethodArgs& a, const std::string& method, bool suffix) {
  const Value& affix = a[0];
  const auto start = a.opt_int(1);
  const auto end = a.opt_int(2);
  if (affix.is_tuple()) {
    for (const auto& item : affix.items()) {
      if (!item.is_string()) fail("tuple for " + method + " must only contain str, not " + type_name(item));
      if (py_affix(s, item.str(), start, end, suffix)) return true;
    }
    return false;
  }
  if (!affix.is_string()) {
    fail(method + " first arg must be str or a tuple of str, not " + type_name(affix));
  }
  return py_affix(s, affix.str(), start, end, suffix);
}

// Methods whose arguments markupsafe escapes when called on Markup.
bool escapes_arguments(const std::string& name) {
  static const std::set<std::string> kNames = {"capitalize", "title",      "lower",      "upper",       "replace",
                                               "ljust",      "rjust",      "lstrip",     "rstrip",      "center",
                                               "strip",      "expandtabs", "swapcase",   "zfill",       "partition",
                                               "rpartition", "removeprefix", "removesuffix"};
  return kNames.count(name) != 0;
}

CallArgs escape_string_args(const CallArgs& args) {
  CallArgs out = args;
  const auto escape = [](Value& v) {
    if (v.is_string() && !v.is_markup()) v = Value::markup(html_escape(v.str()));
  };
  for (auto& v : out.positional) escape(v);
  for (auto& kw : out.keyword) escape(kw.second);
  return out;
}

Value call_str_method(Interpreter& in, const std::string& name, const Value& self, const CallArgs& raw_args) {
  const bool markup = self.is_markup();
  const CallArgs args = markup && escapes_arguments(name) ? escape_string_args(raw_args) : raw_args;
  const std::string& s = self.str();
  const auto text = [&](std::string t) {
    in.check_string_size(t.size());
    return markup ? Value::markup(std::move(t)) : Value::string(std::move(t));
  };
  const auto a = [&](std::vector<const char*> names, size_t required = 0) { return MethodArgs(name, args, std::move(names), required); };

  if (name == "capitalize") return a({}), text(py_capitalize(s));
  if (name == "casefold") return a({}), text(py_replace(py_lower(s), "\xc3\x9f", "ss", -1, in.options().max_output_bytes));
  if (name == "lower") return a({}), text(py_lower(s));
  if (name == "upper") return a({}), text(py_upper(s));
  if (name == "swapcase") return a({}), text(py_swapcase(s));
  if (name == "title") return a({}), text(py_title(s));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const MethodArgs m = a({"chars"});
    return text(py_strip(s, m.opt_str(0, name), name != "rstrip", name != "lstrip"));
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    const MethodArgs m = a({"width", "fillchar"}, 1);
    const int64_t width = m.integer(0, 0);
    in.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    const char32_t fill = fill_char(m, 1, name);
    if (name == "center") return text(py_center(s, width, fill));
    return text(py_pad(s, width, fill, name == "ljust" ? '<' : '>'));
  }
  if (name == "zfill") {
    const MethodArgs m = a({"width"}, 1);
    const int64_t width = m.integer(0, 0);
    in.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    const auto length = static_cast<int64_t>(count_code_points(s));
    if (width <= length) return text(s);
    const bool sign = !s.empty() && (s[0] == '+' || s[0] == '-');
    return text((sign ? s.substr(0, 1) : "") + std::string(static_cast<size_t>(width - length), '0') + s.substr(sign ? 1 : 0));
  }
  if (name == "count") {
    const MethodArgs m = a({"sub", "start", "end"}, 1);
    return Value::integer(py_count(s, m.str(0, name), m.opt_int(1), m.opt_int(2)));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const MethodArgs m = a({"sub", "start", "end"}, 1);
    const int64_t at = py_find(s, m.str(0, name), m.opt_int(1), m.opt_int(2), name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex")) fail("substring not found");
    return Value::integer(at);
  }
  if (name == "startswith" || name == "endswith") {
    const MethodArgs m = a({"prefix", "start", "end"}, 1);
    return Value::boolean(affix_method(s, m, name, name == "endswith"));
  }
  if (name == "replace") {
    const MethodArgs m = a({"old", "new", "count"}, 2);
    return text(py_replace(s, m.str(0, name), m.str(1, name), m.integer(2, -1), in.options().max_output_bytes));
  }
  if (name == "split" || name == "rsplit") {
    const MethodArgs m = a({"sep", "maxsplit"});
    const auto sep = m.opt_str(0, name);
    const int64_t maxsplit = m.integer(1, -1);
    return strings_to_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit), markup);
  }
  if (name == "splitlines") {
    const MethodArgs m = a({"keepends"});
    return strings_to_list(py_splitlines(s, m.given(0) && truthy(m[0])), markup);
  }
  if (name == "partition" || name == "rpartition") {
    const MethodArgs m = a({"sep"}, 1);
    const std::string& sep = m.str(0, name);
    if (sep.empty()) fail("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<std::string> parts;
    if (at == std::string::npos) {
      parts = name == "partition" ? std::vector<std::string>{s, "", ""} : std::vector<std::string>{"", "", s};
    } else {
      parts = {s.substr(0, at), sep, s.substr(at + sep.size())};
    }
    std::vector<Value> items;
    for (auto& p : parts) items.push_back(markup ? Value::markup(std::move(p)) : Value::string(std::move(p)));
    return Value::tuple(std::move(items));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const MethodArgs m = a({"affix"}, 1);
    const std::string& affix = m.str(0, name);
    if (name == "removeprefix") return text(s.compare(0, affix.size(), affix) == 0 ? s.substr(affix.size()) : s);
    const bool ends = s.size() >= affix.size() && s.compare(s.size() - affix.size(), affix.size(), affix) == 0;
    return text(ends ? s.substr(0, s.size() - affix.size()) : s);
  }
  if (name == "join") {
    const MethodArgs m = a({"iterable"}, 1);
    std::string out;
    size_t i = 0;
    for (const auto& item : iterate(m[0])) {
      if (!item.is_string()) {
        fail("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(item) + " found");
      }
      if (i++) out += s;
      out += markup && !item.is_markup() ? html_escape(item.str()) : item.str();
      in.check_string_size(out.size());
    }
    return text(std::move(out));
  }
  if (name == "expandtabs") {
    const MethodArgs m = a({"tabsize"});
    return text(py_expandtabs(in, s, m.integer(0, 8)));
  }
  if (name == "format") return text(brace_format(in, s, args));
  if (name == "format_map") {
    const MethodArgs m = a({"mapping"}, 1);
    if (!m[0].is_dict()) fail("format_map() argument must be a mapping");
    CallArgs keywords;
    for (const auto& [key, value] : m[0].dict_data().entries()) keywords.keyword.emplace_back(to_str(key), value);
    return text(brace_format(in, s, keywords));
  }
  a({});
  if (name == "isalnum") return Value::boolean(all_chars(s, [](char32_t c) { return is_alpha(c) || is_digit(c); }));
  if (name == "isalpha") return Value::boolean(all_chars(s, is_alpha));
  if (name == "isascii") return Value::boolean(std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  if (name == "isdecimal" || name == "isdigit" || name == "isnumeric") {
    return Value::boolean(all_chars(s, [&](char32_t c) {
      return name == "isdecimal" ? (is_digit(c) && c != 0xB2 && c != 0xB3 && c != 0xB9) : is_digit(c);
    }));
  }
  if (name == "isspace") return Value::boolean(all_chars(s, is_space));
  if (name == "isprintable") return Value::boolean(s.empty() || all_chars(s, is_printable));
  if (name == "isidentifier") return Value::boolean(py_isidentifier(s));
  if (name == "istitle") return Value::boolean(py_istitle(s));
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (size_t pos = 0; pos < s.size();) {
      const char32_t c = decode_utf8(s, pos);
      if (name == "islower" ? is_upper(c) : (is_lower(c) && to_upper(c) != c)) return Value::boolean(false);
      cased = cased || is_cased(c);
    }
    return Value::boolean(cased);
  }
  fail("'str' object has no attribute '" + name + "'");
}

const std::set<std::string>& str_method_names() {
  static const std::set<std::string> kNames = {
      "capitalize", "casefold",   "center",     "count",     "endswith",     "expandtabs",   "find",
      "format",     "format_map", "index",      "isalnum",   "isalpha",      "isascii",      "isdecimal",
      "isdigit",    "isidentifier", "islower",  "isnumeric", "isprintable",  "isspace",      "istitle",
      "isupper",    "join",       "ljust",      "lower",     "lstrip",       "partition",    "removeprefix",
      "removesuffix", "replace",  "rfind",      "rindex",    "rjust",        "rpartition",   "rsplit",
      "rstrip",     "split",      "splitlines", "startswith", "strip",       "swapcase",     "title",
      "upper",      "zfill"};
  return kNames;
}

// ---- list, tuple, dict --------------------------------------------------------------------

int64_t sequence_index(const Value& self, const MethodArgs& m) {
  const auto& items = self.items();
  const auto n = static_cast<int64_t>(items.size());
  int64_t from = m.integer(1, 0);
  int64_t to = m.integer(2, n);
  if (from < 0) from = std::max<int64_t>(from + n, 0);
  if (to < 0) to = std::max<int64_t>(to + n, 0);
  for (int64_t i = from; i < std::min(to, n); ++i) {
    if (equals(items[static_cast<size_t>(i)], m[0])) return i;
  }
  fail(repr(m[0]) + " is not in " + type_name(self));
}

Value call_sequence_method(Interpreter& in, const std::string& name, const Value& self, const CallArgs& args) {
  const auto a = [&](std::vector<const char*> names, size_t required = 0) { return MethodArgs(name, args, std::move(names), required); };
  if (name == "count") {
    const MethodArgs m = a({"value"}, 1);
    return Value::integer(std::count_if(self.items().begin(), self.items().end(), [&](const Value& x) { return equals(x, m[0]); }));
  }
  if (name == "index") return Value::integer(sequence_index(self, a({"value", "start", "stop"}, 1)));
  if (name == "copy") return a({}), Value::list(self.items());
  // Mutating methods (only reachable with RenderOptions::allow_container_mutation).
  in.track(self.list_ptr());
  std::vector<Value>& items = self.list_data().items;
  if (name == "append") {
    const MethodArgs m = a({"object"}, 1);
    in.check_list_size(items.size() + 1);
    items.push_back(m[0]);
    return Value::none();
  }
  if (name == "extend") {
    const MethodArgs m = a({"iterable"}, 1);
    std::vector<Value> more = iterate(m[0]);
    in.check_list_size(items.size() + more.size());
    items.insert(items.end(), more.begin(), more.end());
    return Value::none();
  }
  if (name == "insert") {
    const MethodArgs m = a({"index", "object"}, 2);
    const auto n = static_cast<int64_t>(items.size());
    int64_t i = m.integer(0, 0);
    if (i < 0) i = std::max<int64_t>(i + n, 0);
    i = std::min(i, n);
    items.insert(items.begin() + i, m[1]);
    return Value::none();
  }
  if (name == "pop") {
    const MethodArgs m = a({"index"});
    if (items.empty()) fail("pop from empty list");
    const auto n = static_cast<int64_t>(items.size());
    int64_t i = m.integer(0, -1);
    if (i < 0) i += n;
    if (i < 0 || i >= n) fail("pop index out of range");
    Value out = items[static_cast<size_t>(i)];
    items.erase(items.begin() + i);
    return out;
  }
  if (name == "remove") {
    const MethodArgs m = a({"value"}, 1);
    const auto it = std::find_if(items.begin(), items.end(), [&](const Value& x) { return equals(x, m[0]); });
    if (it == items.end()) fail("list.remove(x): x not in list");
    items.erase(it);
    return Value::none();
  }
  if (name == "reverse") return a({}), std::reverse(items.begin(), items.end()), Value::none();
  if (name == "clear") return a({}), items.clear(), Value::none();
  if (name == "sort") {
    const MethodArgs m = a({"reverse"});
    const bool reverse = m.given(0) && truthy(m[0]);
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return reverse ? less_than(y, x) : less_than(x, y);
    });
    return Value::none();
  }
  fail("'list' object has no attribute '" + name + "'");
}

Value dict_view(const Value& self, ViewKind kind) {
  std::vector<Value> items;
  for (const auto& [key, value] : self.dict_data().entries()) {
    if (kind == ViewKind::kItems) {
      items.push_back(Value::tuple({key, value}));
    } else {
      items.push_back(kind == ViewKind::kKeys ? key : value);
    }
  }
  return Value::dict_view(kind, std::move(items));
}

Value call_dict_method(Interpreter& in, const std::string& name, const Value& self, const CallArgs& args) {
  const auto a = [&](std::vector<const char*> names, size_t required = 0) { return MethodArgs(name, args, std::move(names), required); };
  DictData& dict = self.dict_data();
  if (name == "get") {
    const MethodArgs m = a({"key", "default"}, 1);
    if (const Value* v = dict.find(m[0])) return *v;
    return m.given(1) || (args.positional.size() > 1) ? m[1] : Value::none();
  }
  if (name == "items") return a({}), dict_view(self, ViewKind::kItems);
  if (name == "keys") return a({}), dict_view(self, ViewKind::kKeys);
  if (name == "values") return a({}), dict_view(self, ViewKind::kValues);
  if (name == "copy") return a({}), Value::dict(std::make_shared<DictData>(dict));
  if (name == "fromkeys") {
    const MethodArgs m = a({"iterable", "value"}, 1);
    auto out = std::make_shared<DictData>();
    for (const auto& key : iterate(m[0])) out->set(key, m.given(1) ? m[1] : Value::none());
    return Value::dict(std::move(out));
  }
  // Mutating methods (only reachable with RenderOptions::allow_container_mutation).
  in.track(self.dict_ptr());
  if (name == "clear") return a({}), dict.clear(), Value::none();
  if (name == "pop") {
    const MethodArgs m = a({"key", "default"}, 1);
    if (const Value* v = dict.find(m[0])) {
      Value out = *v;
      dict.erase(m[0]);
      return out;
    }
    if (args.positional.size() > 1 || m.given(1)) return m[1];
    fail("KeyError: " + repr(m[0]));
  }
  if (name == "popitem") {
    a({});
    if (dict.empty()) fail("popitem(): dictionary is empty");
    const auto last = dict.entries().back();
    dict.erase(last.first);
    return Value::tuple({last.first, last.second});
  }
  if (name == "setdefault") {
    const MethodArgs m = a({"key", "default"}, 1);
    if (const Value* v = dict.find(m[0])) return *v;
    const Value fallback = args.positional.size() > 1 ? m[1] : Value::none();
    dict.set(m[0], fallback);
    return fallback;
  }
  if (name == "update") {
    if (args.positional.size() > 1) fail("update expected at most 1 argument");
    if (!args.positional.empty()) {
      const Value& other = args.positional[0];
      if (other.is_dict()) {
        for (const auto& [key, value] : other.dict_data().entries()) dict.set(key, value);
      } else {
        for (const auto& pair : iterate(other)) {
          const std::vector<Value> kv = iterate(pair);
          if (kv.size() != 2) fail("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
          dict.set(kv[0], kv[1]);
        }
      }
    }
    for (const auto& [key, value] : args.keyword) dict.set(Value::string(key), value);
    return Value::none();
  }
  fail("'dict' object has no attribute '" + name + "'");
}

Value unsafe(const std::string& name, const Value& self) {
  return Value::undefined("access to attribute '" + name + "' of '" + type_name(self) + "' object is unsafe.");
}

std::optional<Value> method_of(Interpreter& in, const Value& self, const std::string& name,
                               const std::set<std::string>& safe, const std::set<std::string>& mutating,
                               Value (*impl)(Interpreter&, const std::string&, const Value&, const CallArgs&)) {
  (void)in;
  if (safe.count(name)) {
    return bound_method(name, [impl, name, self](Interpreter& i, const CallArgs& args) { return impl(i, name, self, args); });
  }
  if (mutating.count(name)) {
    // jinja2's ImmutableSandboxedEnvironment refuses methods that modify a list or dict.
    if (!in.options().allow_container_mutation) return unsafe(name, self);
    return bound_method(name, [impl, name, self](Interpreter& i, const CallArgs& args) { return impl(i, name, self, args); });
  }
  return std::nullopt;
}

std::optional<Value> number_attribute(const Value& self, const std::string& name) {
  if (self.is_integral()) {
    const Value as_int = Value::integer(self.as_int());
    if (name == "real" || name == "numerator") return as_int;
    if (name == "imag") return Value::integer(0);
    if (name == "denominator") return Value::integer(1);
    if (name == "conjugate") return bound_method(name, [as_int](Interpreter&, const CallArgs& a) { return MethodArgs("conjugate", a, {}, 0), as_int; });
    if (name == "bit_length") {
      return bound_method(name, [as_int](Interpreter&, const CallArgs& a) {
        MethodArgs("bit_length", a, {}, 0);
        uint64_t m = as_int.as_int() < 0 ? 0 - static_cast<uint64_t>(as_int.as_int()) : static_cast<uint64_t>(as_int.as_int());
        int64_t bits = 0;
        while (m) {
          ++bits;
          m >>= 1;
        }
        return Value::integer(bits);
      });
    }
    return std::nullopt;
  }
  const double f = self.as_double();
  if (name == "real") return Value::number(f);
  if (name == "imag") return Value::number(0.0);
  if (name == "conjugate") return bound_method(name, [f](Interpreter&, const CallArgs& a) { return MethodArgs("conjugate", a, {}, 0), Value::number(f); });
  if (name == "is_integer") {
    return bound_method(name, [f](Interpreter&, const CallArgs& a) {
      MethodArgs("is_integer", a, {}, 0);
      return Value::boolean(std::isfinite(f) && f == std::floor(f));
    });
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> builtin_attribute(Interpreter& interp, const Value& value, const std::string& name) {
  static const std::set<std::string> kNone;
  static const std::set<std::string> kListSafe = {"copy", "count", "index"};
  static const std::set<std::string> kListMutating = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
  static const std::set<std::string> kTupleSafe = {"count", "index"};
  static const std::set<std::string> kDictSafe = {"get", "items", "keys", "values", "copy", "fromkeys"};
  static const std::set<std::string> kDictMutating = {"clear", "pop", "popitem", "setdefault", "update"};
  if (name.size() > 1 && name[0] == '_' && name[1] == '_' && !value.is_dict()) return unsafe(name, value);
  switch (value.kind()) {
    case Value::Kind::kString:
      return method_of(interp, value, name, str_method_names(), kNone, call_str_method);
    case Value::Kind::kList:
      return method_of(interp, value, name, kListSafe, kListMutating, call_sequence_method);
    case Value::Kind::kTuple: {
      const auto& fields = value.list_data().field_names;
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == name) return value.items()[i];
      }
      return method_of(interp, value, name, kTupleSafe, kNone, call_sequence_method);
    }
    case Value::Kind::kDict:
      return method_of(interp, value, name, kDictSafe, kDictMutating, call_dict_method);
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
      return number_attribute(value, name);
    default:
      return std::nullopt;
  }
}

// ---- globals ------------------------------------------------------------------------------

namespace {

// jinja2's namespace(): an object whose attributes {% set ns.attr = ... %} may assign.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string repr() const override { return "<Namespace " + jinja_detail::repr(Value::dict(attrs_)) + ">"; }
  std::optional<Value> get_attr(const std::string& name) override {
    if (const Value* v = attrs_->find(Value::string(name))) return *v;
    return std::nullopt;
  }
  bool set_attr(const std::string& name, Value value) override {
    attrs_->set(Value::string(name), std::move(value));
    return true;
  }
  void release_references() override { attrs_->clear(); }
  void take_children(std::vector<Value>& out) override { attrs_->take_children(out); }
  DictData& attrs() { return *attrs_; }

 private:
  std::shared_ptr<DictData> attrs_ = std::make_shared<DictData>();
};

class Cycler : public Object, public std::enable_shared_from_this<Cycler> {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  std::string repr() const override { return "<jinja2.utils.Cycler object>"; }
  std::optional<Value> get_attr(const std::string& name) override {
    if (name == "items") return Value::tuple(items_);
    if (name == "pos") return Value::integer(static_cast<int64_t>(pos_));
    if (name == "current") return items_[pos_];
    std::shared_ptr<Cycler> self = shared_from_this();
    if (name == "next") {
      return bound_method(name, [self](Interpreter&, const CallArgs& a) {
        MethodArgs("next", a, {}, 0);
        Value out = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return out;
      });
    }
    if (name == "reset") {
      return bound_method(name, [self](Interpreter&, const CallArgs& a) {
        MethodArgs("reset", a, {}, 0);
        self->pos_ = 0;
        return Value::none();
      });
    }
    return std::nullopt;
  }
  void take_children(std::vector<Value>& out) override {
    for (auto& item : items_) out.push_back(std::move(item));
    items_.clear();
  }

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
};

class Joiner : public Object {
 public:
  explicit Joiner(std::string separator) : separator_(std::move(separator)) {}
  std::string type_name() const override { return "Joiner"; }
  std::string repr() const override { return "<jinja2.utils.Joiner object>"; }
  bool callable() const override { return true; }
  Value call(Interpreter&, const CallArgs& args) override {
    MethodArgs("joiner", args, {}, 0);
    if (!used_) {
      used_ = true;
      return Value::string("");
    }
    return Value::string(separator_);
  }

 private:
  std::string separator_;
  bool used_ = false;
};

// dict(*args, **kwargs) as Python builds it: a mapping or pairs, then keywords.
std::shared_ptr<DictData> build_dict(const char* function, const CallArgs& args) {
  if (args.positional.size() > 1) fail(std::string(function) + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  auto dict = std::make_shared<DictData>();
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      *dict = source.dict_data();
    } else {
      for (const auto& pair : iterate(source)) {
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) {
          fail("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        }
        dict->set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keyword) dict->set(Value::string(key), value);
  return dict;
}

Value global_range(Interpreter& in, const CallArgs& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3) {
    fail("range expected at most 3 arguments, got " + std::to_string(args.positional.size()));
  }
  std::vector<int64_t> n;
  for (const auto& v : args.positional) {
    if (!v.is_integral()) fail("'" + type_name(v) + "' object cannot be interpreted as an integer");
    n.push_back(v.as_int());
  }
  const int64_t start = n.size() == 1 ? 0 : n[0];
  const int64_t stop = n.size() == 1 ? n[0] : n[1];
  const int64_t step = n.size() == 3 ? n[2] : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  // The sandbox's safe_range refuses ranges longer than MAX_RANGE.
  const long double length = step > 0 ? (start < stop ? (static_cast<long double>(stop) - start + step - 1) / step : 0)
                                      : (start > stop ? (static_cast<long double>(start) - stop - step - 1) / -step : 0);
  if (length > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    items.push_back(Value::integer(i));
    in.count_iteration();
  }
  return Value::list(std::move(items));
}

Value global_namespace(Interpreter& in, const CallArgs& args) {
  auto ns = std::make_shared<Namespace>();
  auto dict = build_dict("namespace", args);
  for (const auto& [key, value] : dict->entries()) ns->attrs().set(key, value);
  in.track(ns);
  return Value::object(ns);
}

Value global_cycler(Interpreter& in, const CallArgs& args) {
  if (!args.keyword.empty()) fail("cycler() takes no keyword arguments");
  if (args.positional.empty()) fail("at least one item has to be provided");
  auto cycler = std::make_shared<Cycler>(args.positional);
  in.track(cycler);
  return Value::object(cycler);
}

Value global_joiner(Interpreter&, const CallArgs& args) {
  const MethodArgs m("joiner", args, {"sep"}, 0);
  return Value::object(std::make_shared<Joiner>(m.given(0) ? to_str(m[0]) : ", "));
}

Value global_raise_exception(Interpreter&, const CallArgs& args) {
  const MethodArgs m("raise_exception", args, {"message"}, 1);
  throw EvalError{TemplateError::Kind::kRaised, to_str(m[0])};
}

LocalTime system_local_time() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  LocalTime out;
  out.year = tm.tm_year + 1900;
  out.month = tm.tm_mon + 1;
  out.day = tm.tm_mday;
  out.hour = tm.tm_hour;
  out.minute = tm.tm_min;
  out.second = tm.tm_sec;
  out.microsecond = static_cast<int>(
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000);
  return out;
}

// datetime.strftime: %f, %z and %Z are Python's (a naive datetime has no zone); the rest is
// the C library's strftime, as CPython uses it.
std::string py_strftime(Interpreter& in, const std::string& format, const LocalTime& now) {
  std::tm tm{};
  tm.tm_year = now.year - 1900;
  tm.tm_mon = now.month - 1;
  tm.tm_mday = now.day;
  tm.tm_hour = now.hour;
  tm.tm_min = now.minute;
  tm.tm_sec = now.second;
  std::tm normalized = tm;
  const std::time_t t = timegm(&normalized);  // fills in the weekday and day of the year
  gmtime_r(&t, &tm);
  tm.tm_isdst = -1;
  std::string c_format;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      c_format += format[i];
      continue;
    }
    const char c = format[++i];
    if (c == 'f') {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%06d", now.microsecond);
      c_format += buf;
    } else if (c == 'z' || c == 'Z') {
      // naive datetime: empty
    } else {
      c_format += '%';
      c_format += c;
    }
  }
  if (c_format.empty()) return "";
  for (size_t size = 256; size <= (size_t{1} << 20); size *= 4) {
    std::vector<char> buf(size);
    const size_t n = std::strftime(buf.data(), buf.size(), c_format.c_str(), &tm);
    if (n > 0) {
      in.check_string_size(n);
      return std::string(buf.data(), n);
    }
  }
  return "";
}

Value global_strftime_now(Interpreter& in, const CallArgs& args) {
  const MethodArgs m("strftime_now", args, {"format"}, 1);
  if (!m[0].is_string()) fail("strftime() argument 1 must be str, not " + type_name(m[0]));
  const LocalTime now = in.options().now ? in.options().now() : system_local_time();
  return Value::string(py_strftime(in, m[0].str(), now));
}

Value global_dict(Interpreter&, const CallArgs& args) { return Value::dict(build_dict("dict", args)); }

// jinja2's lipsum() makes random text; it exists (so `lipsum is defined`) but is not reproducible.
Value global_lipsum(Interpreter&, const CallArgs&) { fail("lipsum() is not supported (its output is random)"); }

}  // namespace

void define_globals(Scope& scope) {
  const auto define = [&](const char* name, Function::Fn fn) {
    scope.set(name, Value::object(std::make_shared<Function>(name, std::move(fn))));
  };
  define("range", global_range);
  define("dict", global_dict);
  define("namespace", global_namespace);
  define("cycler", global_cycler);
  define("joiner", global_joiner);
  define("raise_exception", global_raise_exception);
  define("strftime_now", global_strftime_now);
  define("lipsum", global_lipsum);
}

}  // namespace nnterp::chat::jinja_detail
