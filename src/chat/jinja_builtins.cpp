#include "chat/jinja_builtins.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"
#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

namespace {

// ---- argument binding -------------------------------------------------------------------

// Binds call arguments to named parameters as Python binds them for f(p0, p1, ...).
class Bound {
 public:
  Bound(const char* function, const CallArgs& args, std::initializer_list<const char*> names, size_t required = 0)
      : values_(names.size()) {
    const std::vector<const char*> params(names);
    if (args.positional.size() > params.size()) {
      fail(std::string(function) + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
           std::to_string(args.positional.size()) + " given)");
    }
    for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
    for (const auto& [name, value] : args.keyword) {
      size_t i = 0;
      while (i < params.size() && name != params[i]) ++i;
      if (i == params.size()) fail(std::string(function) + "() got an unexpected keyword argument '" + name + "'");
      if (values_[i]) fail(std::string(function) + "() got multiple values for argument '" + name + "'");
      values_[i] = value;
    }
    for (size_t i = 0; i < required; ++i) {
      if (!values_[i]) fail(std::string(function) + "() missing required argument '" + params[i] + "'");
    }
  }
  bool has(size_t i) const { return values_[i].has_value(); }
  // Present and not None (Python code that checks `x is not None`).
  bool given(size_t i) const { return values_[i].has_value() && !values_[i]->is_none(); }
  const Value& operator[](size_t i) const { return *values_[i]; }
  Value get(size_t i, Value fallback) const { return has(i) ? *values_[i] : std::move(fallback); }

 private:
  std::vector<std::optional<Value>> values_;
};

void no_arguments(const char* function, const CallArgs& args) { Bound(function, args, {}); }

int64_t int_arg(const Value& v, const char* what) {
  if (!v.is_integral()) fail("'" + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
  return v.as_int();
}

const std::string& str_arg(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + " must be str, not " + type_name(v));
  return v.str();
}

std::optional<std::string> opt_str_arg(const Bound& b, size_t i, const char* what) {
  if (!b.given(i)) return std::nullopt;
  return str_arg(b[i], what);
}

// jinja2's soft_str: strings (and Markup) as they are, anything else through str().
Value soft_str(const Value& v) { return v.is_string() ? v : Value::string(to_str(v)); }

// A string result that stays Markup when its input was.
Value same_kind(const Value& like, std::string text) {
  return like.is_markup() ? Value::markup(std::move(text)) : Value::string(std::move(text));
}

Value lower_if_string(const Value& v) { return v.is_string() ? Value::string(py_lower(v.str())) : v; }

// ---- attribute paths (jinja2's make_attrgetter) ------------------------------------------

std::vector<Value> attribute_parts(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_none() || attribute.is_undefined()) return parts;
  if (!attribute.is_string()) return {attribute};
  for (const auto& part : py_split(attribute.str(), std::string("."), -1)) {
    const bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    parts.push_back(digits ? Value::integer(std::stoll(part)) : Value::string(part));
  }
  return parts;
}

Value lookup_path(Interpreter& in, Value item, const std::vector<Value>& parts, const Value* fallback = nullptr) {
  for (const auto& part : parts) {
    item = in.get_item(item, part);
    if (fallback && item.is_undefined()) item = *fallback;
  }
  return item;
}

// ---- arithmetic -----------------------------------------------------------------------------

[[noreturn]] void fail_overflow() { fail("integer overflow (Python ints are unbounded; this interpreter uses 64 bits)"); }

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) fail("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) fail("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == 0) fail("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double float_mod(double a, double b) {
  if (b == 0) fail("float modulo");
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double float_floor_div(double a, double b) {
  if (b == 0) fail("float floor division by zero");
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

Value int_pow(int64_t base, int64_t exponent) {
  if (exponent < 0) {
    if (base == 0) fail("0.0 cannot be raised to a negative power");
    return Value::number(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
  }
  int64_t result = 1;
  int64_t b = base;
  while (exponent > 0) {
    if (exponent & 1) result = checked_mul(result, b);
    exponent >>= 1;
    if (exponent > 0) b = checked_mul(b, b);
  }
  return Value::integer(result);
}

Value float_pow(double a, double b) {
  if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
  if (a < 0 && b != std::floor(b) && std::isfinite(b)) fail("complex results of ** are not supported");
  const double r = std::pow(a, b);
  if (std::isinf(r) && std::isfinite(a) && std::isfinite(b)) fail("(34, 'Numerical result out of range')");
  return Value::number(r);
}

Value repeat_sequence(Interpreter& in, const Value& seq, int64_t times) {
  if (times <= 0) {
    if (seq.is_string()) return same_kind(seq, "");
    return seq.is_list() ? Value::list({}) : Value::tuple({});
  }
  if (seq.is_string()) {
    in.check_string_size(seq.str().size() * static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)));
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return same_kind(seq, std::move(out));
  }
  in.check_list_size(seq.items().size() * static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)));
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_list() ? Value::list(std::move(out)) : Value::tuple(std::move(out));
}

[[noreturn]] void unsupported_operands(const char* op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

Value add(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return Value::integer(checked_add(a.as_int(), b.as_int()));
    return Value::number(a.as_double() + b.as_double());
  }
  if (a.is_string() && b.is_string()) {
    in.check_string_size(a.str().size() + b.str().size());
    if (a.is_markup() || b.is_markup()) {
      // Markup + str escapes the plain operand (markupsafe's __add__ / __radd__).
      const std::string left = a.is_markup() ? a.str() : html_escape(a.str());
      const std::string right = b.is_markup() ? b.str() : html_escape(b.str());
      return Value::markup(left + right);
    }
    return Value::string(a.str() + b.str());
  }
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    in.check_list_size(a.items().size() + b.items().size());
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return a.is_list() ? Value::list(std::move(items)) : Value::tuple(std::move(items));
  }
  unsupported_operands("+", a, b);
}

}  // namespace

Value arithmetic(Interpreter& in, BinaryOp op, const Value& a, const Value& b) {
  // str % x never touches x's arithmetic: "%s" % undefined formats it like any value.
  if (op == BinaryOp::kMod && a.is_string()) return same_kind(a, percent_format(in, a.str(), b, a.is_markup()));
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const bool ints = a.is_integral() && b.is_integral();
  const bool numbers = a.is_number() && b.is_number();
  switch (op) {
    case BinaryOp::kAdd:
      return add(in, a, b);
    case BinaryOp::kSub:
      if (ints) return Value::integer(checked_sub(a.as_int(), b.as_int()));
      if (numbers) return Value::number(a.as_double() - b.as_double());
      unsupported_operands("-", a, b);
    case BinaryOp::kMul:
      if (ints) return Value::integer(checked_mul(a.as_int(), b.as_int()));
      if (numbers) return Value::number(a.as_double() * b.as_double());
      if ((a.is_string() || a.is_list() || a.is_tuple()) && b.is_integral()) return repeat_sequence(in, a, b.as_int());
      if ((b.is_string() || b.is_list() || b.is_tuple()) && a.is_integral()) return repeat_sequence(in, b, a.as_int());
      unsupported_operands("*", a, b);
    case BinaryOp::kDiv:
      if (numbers) {
        if (b.as_double() == 0) fail("division by zero");
        return Value::number(a.as_double() / b.as_double());
      }
      unsupported_operands("/", a, b);
    case BinaryOp::kFloorDiv:
      if (ints) return Value::integer(floor_div(a.as_int(), b.as_int()));
      if (numbers) return Value::number(float_floor_div(a.as_double(), b.as_double()));
      unsupported_operands("//", a, b);
    case BinaryOp::kMod:
      if (ints) return Value::integer(py_mod(a.as_int(), b.as_int()));
      if (numbers) return Value::number(float_mod(a.as_double(), b.as_double()));
      if (a.is_string()) return same_kind(a, percent_format(in, a.str(), b, a.is_markup()));
      unsupported_operands("%", a, b);
    case BinaryOp::kPow:
      if (ints) return int_pow(a.as_int(), b.as_int());
      if (numbers) return float_pow(a.as_double(), b.as_double());
      unsupported_operands("** or pow()", a, b);
  }
  fail("unknown operator");
}

Value unary_sign(const Value& operand, bool negate) {
  if (operand.is_undefined()) fail_undefined(operand);
  if (operand.is_integral()) {
    const int64_t i = operand.as_int();
    if (!negate) return Value::integer(i);
    if (i == INT64_MIN) fail("integer overflow");
    return Value::integer(-i);
  }
  if (operand.is_float()) return Value::number(negate ? -operand.as_double() : operand.as_double());
  fail(std::string("bad operand type for unary ") + (negate ? "-" : "+") + ": '" + type_name(operand) + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDictView:
      for (const auto& x : container.items()) {
        if (equals(x, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return container.dict_data().find(item) != nullptr;
    case Value::Kind::kIterator: {
      materialize(container);
      ListData& data = container.list_data();
      while (data.cursor < data.items.size()) {
        if (equals(data.items[data.cursor++], item)) return true;
      }
      return false;
    }
    default:
      fail("argument of type '" + type_name(container) + "' is not iterable");
  }
}

bool compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return equals(a, b);
    case CompareOp::kNe:
      return !equals(a, b);
    case CompareOp::kLt:
      return less_than(a, b);
    case CompareOp::kGt:
      return less_than(b, a);
    case CompareOp::kLtEq:
      return less_than(a, b) || equals(a, b);
    case CompareOp::kGtEq:
      return less_than(b, a) || equals(a, b);
    case CompareOp::kIn:
      return contains(b, a);
    case CompareOp::kNotIn:
      return !contains(b, a);
  }
  return false;
}

// ---- json.dumps -----------------------------------------------------------------------------

namespace {

void json_quote(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    char buf[16];
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        const char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  out += '"';
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return repr_float(f);
}

class JsonWriter {
 public:
  JsonWriter(Interpreter& in, const JsonOptions& options) : in_(in), o_(options) {}

  void write(const Value& v, int level) {
    if (level > kMaxValueNesting) fail_limit("values are nested too deeply for tojson");
    switch (v.kind()) {
      case Value::Kind::kNone:
        out_ += "null";
        return;
      case Value::Kind::kBool:
        out_ += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out_ += repr_int(v.as_int());
        return;
      case Value::Kind::kFloat:
        out_ += json_float(v.as_double());
        return;
      case Value::Kind::kString:
        json_quote(out_, v.str(), o_.ensure_ascii);
        return;
      case Value::Kind::kList:
      case Value::Kind::kTuple:
        write_array(v.items(), level);
        return;
      case Value::Kind::kDict:
        write_object(v.dict_data(), level);
        return;
      default:
        fail("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }

  std::string take() { return std::move(out_); }

 private:
  Interpreter& in_;
  const JsonOptions& o_;
  std::string out_;

  void newline(int level) {
    if (!o_.indent_set) return;
    out_ += '\n';
    for (int i = 0; i < level; ++i) out_ += o_.indent;
    in_.check_string_size(out_.size());
  }

  void write_array(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    newline(level + 1);
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) {
        out_ += o_.item_separator;
        newline(level + 1);
      }
      write(items[i], level + 1);
    }
    newline(level);
    out_ += ']';
    in_.check_string_size(out_.size());
  }

  static std::string key_text(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::kString:
        return key.str();
      case Value::Kind::kFloat:
        return json_float(key.as_double());
      case Value::Kind::kBool:
        return key.as_bool() ? "true" : "false";
      case Value::Kind::kInt:
        return repr_int(key.as_int());
      case Value::Kind::kNone:
        return "null";
      default:
        fail("keys must be str, int, float, bool or None, not " + type_name(key));
    }
  }

  void write_object(const DictData& dict, int level) {
    if (dict.empty()) {
      out_ += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& entry : dict.entries()) entries.push_back(&entry);
    if (o_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* x, const auto* y) { return less_than(x->first, y->first); });
    }
    out_ += '{';
    newline(level + 1);
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) {
        out_ += o_.item_separator;
        newline(level + 1);
      }
      json_quote(out_, key_text(entries[i]->first), o_.ensure_ascii);
      out_ += o_.key_separator;
      write(entries[i]->second, level + 1);
    }
    newline(level);
    out_ += '}';
    in_.check_string_size(out_.size());
  }
};

}  // namespace

std::string json_dumps(Interpreter& interp, const Value& value, const JsonOptions& options) {
  JsonWriter writer(interp, options);
  writer.write(value, 0);
  return writer.take();
}

namespace {

// ---- filters ------------------------------------------------------------------------------

using FilterFn = Value (*)(Interpreter&, const Value&, const CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, const CallArgs&);

Value filter_tojson(Interpreter& in, const Value& v, const CallArgs& args) {
  // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const Bound b("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = b.has(0) && truthy(b[0]);
  if (b.given(1)) {
    o.indent_set = true;
    if (b[1].is_string()) {
      o.indent = b[1].str();
    } else if (b[1].is_integral()) {
      in.check_string_size(static_cast<size_t>(std::max<int64_t>(b[1].as_int(), 0)));
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(b[1].as_int(), 0)), ' ');
    } else {
      fail("can't multiply sequence by non-int of type '" + type_name(b[1]) + "'");
    }
    o.item_separator = ",";
  }
  if (b.given(2)) {
    const Value& sep = b[2];
    if (!(sep.is_list() || sep.is_tuple()) || sep.items().size() != 2 || !sep.items()[0].is_string() ||
        !sep.items()[1].is_string()) {
      fail("separators must be a pair of strings");
    }
    o.item_separator = sep.items()[0].str();
    o.key_separator = sep.items()[1].str();
  }
  o.sort_keys = b.has(3) && truthy(b[3]);
  return Value::string(json_dumps(in, v, o));
}

Value filter_abs(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("abs", args);
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) fail("integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_undefined()) fail_undefined(v);
  fail("bad operand type for abs(): '" + type_name(v) + "'");
}

Value filter_attr(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("attr", args, {"name"}, 1);
  const std::string& name = str_arg(b[0], "attribute name");
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_object()) {
    if (auto a = v.object().get_attr(name)) return *a;
  } else if (auto a = builtin_attribute(in, v, name)) {
    return *a;
  }
  return Value::undefined("'" + object_type_repr(v) + "' has no attribute '" + name + "'");
}

Value filter_batch_now(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("batch", args, {"linecount", "fill_with"}, 1);
  const int64_t linecount = int_arg(b[0], "linecount");
  std::vector<Value> batches;
  std::vector<Value> current;
  for (auto& item : iterate(v)) {
    if (static_cast<int64_t>(current.size()) == linecount) {
      batches.push_back(Value::list(std::move(current)));
      current.clear();
    }
    current.push_back(std::move(item));
  }
  if (!current.empty()) {
    if (b.given(1) && static_cast<int64_t>(current.size()) < linecount) {
      in.check_list_size(static_cast<size_t>(linecount));
      current.resize(static_cast<size_t>(linecount), b[1]);
    }
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::iterator(std::move(batches));
}

Value filter_capitalize(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("capitalize", args);
  const Value s = soft_str(v);
  return same_kind(s, py_capitalize(s.str()));
}

Value filter_center(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("center", args, {"width"});
  const int64_t width = b.has(0) ? int_arg(b[0], "width") : 80;
  in.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)) * 4);
  const Value s = soft_str(v);
  return same_kind(s, py_center(s.str(), width, ' '));
}

Value filter_length(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("length", args);
  const auto n = length_of(v);
  if (!n) fail("object of type '" + type_name(v) + "' has no len()");
  return Value::integer(static_cast<int64_t>(*n));
}

Value filter_default(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("default", args, {"default_value", "boolean"});
  const bool boolean = b.has(1) && truthy(b[1]);
  if (v.is_undefined() || (boolean && !truthy(v))) return b.get(0, Value::string(""));
  return v;
}

Value filter_dictsort(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("dictsort", args, {"case_sensitive", "by", "reverse"});
  const bool case_sensitive = b.has(0) && truthy(b[0]);
  const std::string by = b.has(1) ? to_str(b[1]) : "key";
  const bool reverse = b.has(2) && truthy(b[2]);
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) fail("'" + type_name(v) + "' object has no attribute 'items'");
  struct Entry {
    Value sort_key;
    Value pair;
  };
  std::vector<Entry> entries;
  for (const auto& [key, value] : v.dict_data().entries()) {
    const Value& k = by == "key" ? key : value;
    entries.push_back({case_sensitive ? k : lower_if_string(k), Value::tuple({key, value})});
  }
  std::stable_sort(entries.begin(), entries.end(), [&](const Entry& x, const Entry& y) {
    return reverse ? less_than(y.sort_key, x.sort_key) : less_than(x.sort_key, y.sort_key);
  });
  std::vector<Value> out;
  for (auto& e : entries) out.push_back(std::move(e.pair));
  return Value::list(std::move(out));
}

Value filter_escape(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("escape", args);
  if (v.is_markup()) return v;
  return Value::markup(html_escape(to_str(v)));
}

Value filter_forceescape(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("forceescape", args);
  return Value::markup(html_escape(to_str(v)));
}

Value filter_first(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("first", args);
  if (v.is_iterator()) {
    materialize(v);
    ListData& data = v.list_data();
    if (data.cursor < data.items.size()) return data.items[data.cursor++];
  } else {
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value filter_last(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("last", args);
  if (v.is_iterator() || !is_iterable(v)) fail("'" + type_name(v) + "' object is not reversible");
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value filter_float(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("float", args, {"default"});
  const Value fallback = b.get(0, Value::number(0.0));
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    if (auto f = parse_py_float(v.str())) return Value::number(*f);
  }
  return fallback;
}

Value filter_format(Interpreter& in, const Value& v, const CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    fail("can't handle positional and keyword arguments at the same time");
  }
  Value format_args;
  if (!args.keyword.empty()) {
    auto dict = std::make_shared<DictData>();
    for (const auto& [key, value] : args.keyword) dict->set(Value::string(key), value);
    format_args = Value::dict(std::move(dict));
  } else {
    format_args = Value::tuple(args.positional);
  }
  const Value s = soft_str(v);
  return same_kind(s, percent_format(in, s.str(), format_args, s.is_markup()));
}

Value filter_groupby(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("groupby", args, {"attribute", "default", "case_sensitive"}, 1);
  const std::vector<Value> parts = attribute_parts(b[0]);
  const Value fallback = b.get(1, Value::none());
  const Value* fallback_ptr = fallback.is_none() ? nullptr : &fallback;
  const bool case_sensitive = b.has(2) && truthy(b[2]);
  struct Item {
    Value key;
    Value value;
  };
  std::vector<Item> items;
  for (auto& item : iterate(v)) {
    Value key = lookup_path(in, item, parts, fallback_ptr);
    items.push_back({case_sensitive ? key : lower_if_string(key), std::move(item)});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return less_than(x.key, y.key); });
  std::vector<Value> groups;
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    std::vector<Value> members;
    while (j < items.size() && equals(items[j].key, items[i].key)) members.push_back(items[j++].value);
    Value grouper = case_sensitive ? items[i].key : lookup_path(in, members.front(), parts, fallback_ptr);
    Value group = Value::tuple({std::move(grouper), Value::list(std::move(members))});
    group.list_data().field_names = {"grouper", "list"};
    groups.push_back(std::move(group));
    i = j;
  }
  return Value::list(std::move(groups));
}

Value filter_indent(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("indent", args, {"width", "first", "blank"});
  std::string indention;
  if (b.has(0) && b[0].is_string()) {
    indention = b[0].str();
  } else {
    const int64_t width = b.has(0) ? int_arg(b[0], "width") : 4;
    in.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    indention = std::string(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  const bool first = b.has(1) && truthy(b[1]);
  const bool blank = b.has(2) && truthy(b[2]);
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) fail("unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
  const std::vector<std::string> lines = py_splitlines(v.str() + "\n", false);  // jinja2 appends "\n" first
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if (i > 0 && (blank || !lines[i].empty())) out += indention;
    out += lines[i];
    in.check_string_size(out.size());
  }
  if (first) out = indention + out;
  return same_kind(v, std::move(out));
}

Value filter_int(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("int", args, {"default", "base"});
  const Value fallback = b.get(0, Value::integer(0));
  const int64_t base = b.has(1) ? int_arg(b[1], "base") : 10;
  const auto from_double = [&](double f) {
    if (std::isnan(f)) return fallback;
    if (std::isinf(f)) fail("cannot convert float infinity to integer");
    if (std::fabs(f) >= 9.2e18) fail("integer too large for this interpreter (64-bit)");
    return Value::integer(static_cast<int64_t>(std::trunc(f)));
  };
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) return from_double(v.as_double());
  if (v.is_string()) {
    if (auto i = parse_py_int(v.str(), static_cast<int>(base))) return Value::integer(*i);
    if (auto f = parse_py_float(v.str())) return from_double(*f);
  }
  return fallback;
}

Value filter_items_now(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("items", args);
  if (v.is_undefined()) return Value::iterator({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.dict_data().entries()) pairs.push_back(Value::tuple({key, value}));
  return Value::iterator(std::move(pairs));
}

Value filter_join(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("join", args, {"d", "attribute"});
  const std::string separator = b.has(0) ? to_str(b[0]) : "";
  const std::vector<Value> parts = b.given(1) ? attribute_parts(b[1]) : std::vector<Value>{};
  std::string out;
  bool first = true;
  for (const auto& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    const Value x = b.given(1) ? lookup_path(in, item, parts) : item;
    out += x.is_string() ? x.str() : to_str(x);
    in.check_string_size(out.size());
  }
  return Value::string(std::move(out));
}

Value filter_list(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("list", args);
  return Value::list(iterate(v));
}

Value filter_lower(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("lower", args);
  const Value s = soft_str(v);
  return same_kind(s, py_lower(s.str()));
}

Value filter_upper(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("upper", args);
  const Value s = soft_str(v);
  return same_kind(s, py_upper(s.str()));
}

Value filter_map_now(Interpreter& in, const Value& v, const CallArgs& args) {
  std::vector<Value> out;
  if (!truthy(v)) return Value::iterator({});
  const bool by_attribute = args.positional.empty() && !args.keyword.empty() &&
                            std::any_of(args.keyword.begin(), args.keyword.end(),
                                        [](const auto& kw) { return kw.first == "attribute"; });
  if (by_attribute) {
    Value attribute;
    Value fallback = Value::none();
    for (const auto& [key, value] : args.keyword) {
      if (key == "attribute") {
        attribute = value;
      } else if (key == "default") {
        fallback = value;
      } else {
        fail("Unexpected keyword argument '" + key + "'");
      }
    }
    const std::vector<Value> parts = attribute_parts(attribute);
    for (const auto& item : iterate(v)) out.push_back(lookup_path(in, item, parts, fallback.is_none() ? nullptr : &fallback));
    return Value::iterator(std::move(out));
  }
  if (args.positional.empty()) fail("map requires a filter argument");
  const std::string name = to_str(args.positional[0]);
  if (filter_status(name) != BuiltinStatus::kSupported) fail("No filter named '" + name + "'.");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const auto& item : iterate(v)) out.push_back(apply_filter(in, name, item, rest));
  return Value::iterator(std::move(out));
}

// min / max: the first item whose key is smallest (largest).
Value min_or_max(Interpreter& in, const Value& v, const CallArgs& args, bool want_max) {
  const Bound b(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = b.has(0) && truthy(b[0]);
  const std::vector<Value> parts = b.given(1) ? attribute_parts(b[1]) : std::vector<Value>{};
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const auto key_of = [&](const Value& item) {
    Value k = lookup_path(in, item, parts);
    return case_sensitive ? k : lower_if_string(k);
  };
  size_t best = 0;
  Value best_key = key_of(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key_of(items[i]);
    if (want_max ? less_than(best_key, k) : less_than(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value filter_max(Interpreter& in, const Value& v, const CallArgs& args) { return min_or_max(in, v, args, true); }
Value filter_min(Interpreter& in, const Value& v, const CallArgs& args) { return min_or_max(in, v, args, false); }

// pprint.pformat(value) with its defaults (indent=1, width=80, sort_dicts=True): the repr with
// sorted dict keys when it fits, otherwise containers one item per line and long strings split
// into implicitly concatenated pieces, as Python's PrettyPrinter lays them out.
class PrettyPrinter {
 public:
  explicit PrettyPrinter(Interpreter& in) : in_(in) {}

  std::string format(const Value& v) {
    write(v, 0, 0, 1);
    return std::move(out_);
  }

 private:
  static constexpr int64_t kWidth = 80;
  Interpreter& in_;
  std::string out_;

  static int64_t width_of(const std::string& s) { return static_cast<int64_t>(count_code_points(s)); }

  static std::vector<const std::pair<Value, Value>*> sorted_items(const DictData& dict) {
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : dict.entries()) entries.push_back(&e);
    std::stable_sort(entries.begin(), entries.end(), [](const auto* x, const auto* y) { return less_than(x->first, y->first); });
    return entries;
  }

  // pprint's one-line repr: dict keys sorted at every level.
  static std::string flat(const Value& v, int depth) {
    if (depth > kMaxValueNesting) fail_limit("values are nested too deeply for pprint");
    if (v.is_dict()) {
      std::string out = "{";
      bool first = true;
      for (const auto* e : sorted_items(v.dict_data())) {
        if (!first) out += ", ";
        first = false;
        out += flat(e->first, depth + 1) + ": " + flat(e->second, depth + 1);
      }
      return out + "}";
    }
    if (v.is_list() || v.is_tuple()) {
      std::string out = v.is_list() ? "[" : "(";
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += ", ";
        out += flat(v.items()[i], depth + 1);
      }
      if (v.is_tuple() && v.items().size() == 1) out += ",";
      return out + (v.is_list() ? "]" : ")");
    }
    return repr(v);
  }

  void emit(const std::string& text) {
    out_ += text;
    in_.check_string_size(out_.size());
  }

  void write(const Value& v, int64_t indent, int64_t allowance, int level) {
    if (level > kMaxValueNesting) fail_limit("values are nested too deeply for pprint");
    const std::string rep = flat(v, level);
    if (width_of(rep) <= kWidth - indent - allowance) return emit(rep);
    if (v.is_dict() && !v.dict_data().empty()) {
      emit("{");
      write_dict_items(sorted_items(v.dict_data()), indent + 1, allowance + 1, level + 1);
      return emit("}");
    }
    if ((v.is_list() || v.is_tuple()) && !v.items().empty()) {
      const std::string end = v.is_list() ? "]" : v.items().size() == 1 ? ",)" : ")";
      emit(v.is_list() ? "[" : "(");
      write_items(v.items(), indent + 1, allowance + static_cast<int64_t>(end.size()), level + 1);
      return emit(end);
    }
    if (v.is_string() && !v.is_markup() && !v.str().empty()) return write_string(v.str(), indent, allowance, level + 1);
    emit(rep);
  }

  void write_dict_items(const std::vector<const std::pair<Value, Value>*>& items, int64_t indent, int64_t allowance,
                        int level) {
    for (size_t i = 0; i < items.size(); ++i) {
      const bool last = i + 1 == items.size();
      const std::string key = flat(items[i]->first, level);
      emit(key + ": ");
      write(items[i]->second, indent + width_of(key) + 2, last ? allowance : 1, level);
      if (!last) emit(",\n" + std::string(static_cast<size_t>(indent), ' '));
    }
  }

  void write_items(const std::vector<Value>& items, int64_t indent, int64_t allowance, int level) {
    for (size_t i = 0; i < items.size(); ++i) {
      const bool last = i + 1 == items.size();
      if (i) emit(",\n" + std::string(static_cast<size_t>(indent), ' '));
      write(items[i], indent, last ? allowance : 1, level);
    }
  }

  // `re.findall(r'\S*\s*', line)` without its final empty match.
  static std::vector<std::string> word_runs(const std::string& line) {
    std::vector<std::string> parts;
    const std::u32string chars = to_u32(line);
    size_t i = 0;
    while (i < chars.size()) {
      const size_t start = i;
      while (i < chars.size() && !is_space(chars[i])) ++i;
      while (i < chars.size() && is_space(chars[i])) ++i;
      parts.push_back(to_utf8(std::u32string_view(chars).substr(start, i - start)));
    }
    return parts;
  }

  void write_string(const std::string& s, int64_t indent, int64_t allowance, int level) {
    if (level == 2) {  // pprint's `level == 1`: the top-level object (our levels start at 1 one call earlier)
      ++indent;
      ++allowance;
    }
    const std::vector<std::string> lines = py_splitlines(s, true);
    std::vector<std::string> chunks;
    int64_t max_width1 = kWidth - indent;
    const int64_t max_width = kWidth - indent;
    std::string rep;
    for (size_t i = 0; i < lines.size(); ++i) {
      rep = repr_string(lines[i]);
      if (i + 1 == lines.size()) max_width1 -= allowance;
      if (width_of(rep) <= max_width1) {
        chunks.push_back(rep);
        continue;
      }
      const std::vector<std::string> parts = word_runs(lines[i]);
      int64_t max_width2 = max_width;
      std::string current;
      for (size_t j = 0; j < parts.size(); ++j) {
        const std::string candidate = current + parts[j];
        if (j + 1 == parts.size() && i + 1 == lines.size()) max_width2 -= allowance;
        if (width_of(repr_string(candidate)) > max_width2) {
          if (!current.empty()) chunks.push_back(repr_string(current));
          current = parts[j];
        } else {
          current = candidate;
        }
      }
      if (!current.empty()) chunks.push_back(repr_string(current));
    }
    if (chunks.size() == 1) return emit(rep);
    if (level == 2) emit("(");
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (i) emit("\n" + std::string(static_cast<size_t>(indent), ' '));
      emit(chunks[i]);
    }
    if (level == 2) emit(")");
  }
};

Value filter_pprint(Interpreter& in, const Value& v, const CallArgs& args) {
  no_arguments("pprint", args);
  return Value::string(PrettyPrinter(in).format(v));
}

// select / reject / selectattr / rejectattr
Value select_or_reject_now(Interpreter& in, const Value& v, const CallArgs& args, bool select, bool by_attribute) {
  if (!truthy(v)) return Value::iterator({});
  size_t offset = 0;
  std::vector<Value> parts;
  if (by_attribute) {
    if (args.positional.empty()) fail("Missing parameter for attribute name");
    parts = attribute_parts(args.positional[0]);
    offset = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > offset) {
    test = to_str(args.positional[offset]);
    if (test_status(*test) != BuiltinStatus::kSupported) fail("No test named '" + *test + "'.");
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(offset) + 1, args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (auto& item : iterate(v)) {
    const Value subject = by_attribute ? lookup_path(in, item, parts) : item;
    const bool passed = test ? apply_test(in, *test, subject, test_args) : truthy(subject);
    if (passed == select) out.push_back(std::move(item));
  }
  return Value::iterator(std::move(out));
}

// A lazy iterator over `v` and `args`: jinja2's generator filters run their whole body,
// argument checks included, only when first consumed.
Value lazy_filter(Interpreter& in, const Value& v, const CallArgs& args,
                  std::function<Value(Interpreter&, const Value&, const CallArgs&)> now) {
  std::vector<Value> inputs = {v};
  inputs.insert(inputs.end(), args.positional.begin(), args.positional.end());
  std::vector<std::string> keywords;
  for (const auto& [key, value] : args.keyword) {
    keywords.push_back(key);
    inputs.push_back(value);
  }
  const size_t n_positional = args.positional.size();
  return Value::lazy_iterator(std::move(inputs), [&in, keywords, n_positional, now](const std::vector<Value>& values) {
    Interpreter::Nesting nesting(in);  // chains of generators run recursively
    CallArgs call;
    call.positional.assign(values.begin() + 1, values.begin() + 1 + static_cast<std::ptrdiff_t>(n_positional));
    for (size_t i = 0; i < keywords.size(); ++i) call.keyword.emplace_back(keywords[i], values[1 + n_positional + i]);
    return iterate(now(in, values[0], call));
  });
}

Value lazily(Interpreter& in, const Value& v, const CallArgs& args, FilterFn now) { return lazy_filter(in, v, args, now); }

Value select_or_reject(Interpreter& in, const Value& v, const CallArgs& args, bool select, bool by_attribute) {
  return lazy_filter(in, v, args, [select, by_attribute](Interpreter& i, const Value& value, const CallArgs& a) {
    return select_or_reject_now(i, value, a, select, by_attribute);
  });
}

Value filter_select(Interpreter& in, const Value& v, const CallArgs& a) { return select_or_reject(in, v, a, true, false); }
Value filter_reject(Interpreter& in, const Value& v, const CallArgs& a) { return select_or_reject(in, v, a, false, false); }
Value filter_selectattr(Interpreter& in, const Value& v, const CallArgs& a) { return select_or_reject(in, v, a, true, true); }
Value filter_rejectattr(Interpreter& in, const Value& v, const CallArgs& a) { return select_or_reject(in, v, a, false, true); }

Value filter_replace(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("replace", args, {"old", "new", "count"}, 2);
  const int64_t count = b.given(2) ? int_arg(b[2], "count") : -1;
  std::string out = py_replace(to_str(v), to_str(b[0]), to_str(b[1]), count, in.options().max_output_bytes);
  in.check_string_size(out.size());
  return Value::string(std::move(out));
}

Value filter_reverse(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("reverse", args);
  if (v.is_string()) {
    std::u32string chars = to_u32(v.str());
    std::reverse(chars.begin(), chars.end());
    return same_kind(v, to_utf8(chars));
  }
  if (!is_iterable(v)) fail("argument must be iterable");
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  // reversed() gives an iterator; a generator is not reversible, so jinja2 makes it a list
  return v.is_iterator() ? Value::list(std::move(items)) : Value::iterator(std::move(items));
}

double round_half_even_decimals(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0) {
    if (digits > 320) return x;
    // printf rounds the exact binary value correctly, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Value filter_round(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("round", args, {"precision", "method"});
  const int64_t precision = b.has(0) ? int_arg(b[0], "precision") : 0;
  const std::string method = b.has(1) ? to_str(b[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) fail("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value::integer(v.as_int());
      return Value::integer(static_cast<int64_t>(round_half_even_decimals(v.as_double(), precision)));
    }
    return Value::number(round_half_even_decimals(v.as_double(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_double() * scale;
  return Value::number((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_safe(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("safe", args);
  return Value::markup(v.is_string() ? v.str() : to_str(v));
}

Value filter_slice_now(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("slice", args, {"slices", "fill_with"}, 1);
  const int64_t slices = int_arg(b[0], "slices");
  if (slices == 0) fail("integer division or modulo by zero");
  const std::vector<Value> seq = iterate(v);
  const auto length = static_cast<int64_t>(seq.size());
  const int64_t per_slice = floor_div(length, slices);
  const int64_t with_extra = py_mod(length, slices);
  if (slices > 0) in.check_list_size(static_cast<size_t>(slices));
  std::vector<Value> out;
  int64_t offset = 0;
  for (int64_t n = 0; n < slices; ++n) {
    const int64_t start = offset + n * per_slice;
    if (n < with_extra) ++offset;
    const int64_t end = offset + (n + 1) * per_slice;
    std::vector<Value> part;
    for (int64_t i = std::max<int64_t>(start, 0); i < std::min(end, length); ++i) part.push_back(seq[static_cast<size_t>(i)]);
    if (b.given(1) && n >= with_extra) part.push_back(b[1]);
    out.push_back(Value::list(std::move(part)));
  }
  return Value::iterator(std::move(out));
}

Value filter_sort(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = b.has(0) && truthy(b[0]);
  const bool case_sensitive = b.has(1) && truthy(b[1]);
  // make_multi_attrgetter: "a,b" sorts by a then b; no attribute sorts by the item itself.
  std::vector<std::vector<Value>> paths;
  if (b.given(2) && b[2].is_string()) {
    for (const auto& part : py_split(b[2].str(), std::string(","), -1)) paths.push_back(attribute_parts(Value::string(part)));
  } else {
    paths.push_back(b.given(2) ? attribute_parts(b[2]) : std::vector<Value>{});
  }
  struct Item {
    Value key;
    Value value;
  };
  std::vector<Item> items;
  for (auto& item : iterate(v)) {
    std::vector<Value> key;
    for (const auto& path : paths) {
      Value k = lookup_path(in, item, path);
      key.push_back(case_sensitive ? k : lower_if_string(k));
    }
    items.push_back({Value::list(std::move(key)), std::move(item)});
  }
  std::stable_sort(items.begin(), items.end(), [&](const Item& x, const Item& y) {
    return reverse ? less_than(y.key, x.key) : less_than(x.key, y.key);
  });
  std::vector<Value> out;
  for (auto& item : items) out.push_back(std::move(item.value));
  return Value::list(std::move(out));
}

Value filter_string(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("string", args);
  return soft_str(v);
}

Value filter_sum(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("sum", args, {"attribute", "start"});
  Value total = b.get(1, Value::integer(0));
  if (total.is_string()) fail("sum() can't sum strings [use ''.join(seq) instead]");
  const std::vector<Value> parts = b.given(0) ? attribute_parts(b[0]) : std::vector<Value>{};
  for (const auto& item : iterate(v)) total = arithmetic(in, BinaryOp::kAdd, total, lookup_path(in, item, parts));
  return total;
}

Value filter_title(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("title", args);
  // jinja2 splits words at runs of `[-\s({\[<]` and capitalizes each word.
  const std::string s = to_str(soft_str(v));
  std::string out;
  bool word_start = true;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    const bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c);
    if (separator) {
      append_utf8(out, c);
      word_start = true;
    } else if (word_start) {
      std::string one;
      append_utf8(one, c);
      out += py_upper(one);
      word_start = false;
    } else {
      append_utf8(out, to_lower(c));
    }
  }
  return Value::string(std::move(out));
}

Value filter_trim(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("trim", args, {"chars"});
  const Value s = soft_str(v);
  return same_kind(s, py_strip(s.str(), opt_str_arg(b, 0, "chars"), true, true));
}

Value filter_truncate(Interpreter&, const Value& v, const CallArgs& args) {
  const Bound b("truncate", args, {"length", "killwords", "end", "leeway"});
  const int64_t length = b.has(0) ? int_arg(b[0], "length") : 255;
  const bool killwords = b.has(1) && truthy(b[1]);
  const std::string end = b.has(2) ? str_arg(b[2], "end") : "...";
  const int64_t leeway = b.given(3) ? int_arg(b[3], "leeway") : 5;
  const auto end_length = static_cast<int64_t>(count_code_points(end));
  if (length < end_length) fail("expected length >= " + std::to_string(end_length) + ", got " + std::to_string(length));
  if (leeway < 0) fail("expected leeway >= 0, got " + std::to_string(leeway));
  const auto n = length_of(v);
  if (!n) fail("object of type '" + type_name(v) + "' has no len()");
  if (static_cast<int64_t>(*n) <= length + leeway) return v;
  if (!v.is_string()) fail("truncate() of a " + type_name(v) + " is not supported");
  const std::u32string chars = to_u32(v.str());
  const std::u32string head = chars.substr(0, static_cast<size_t>(length - end_length));
  if (killwords) return Value::string(to_utf8(head) + end);
  const size_t space = head.rfind(U' ');
  return Value::string(to_utf8(space == std::u32string::npos ? head : head.substr(0, space)) + end);
}

Value filter_unique_now(Interpreter& in, const Value& v, const CallArgs& args) {
  const Bound b("unique", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = b.has(0) && truthy(b[0]);
  const std::vector<Value> parts = b.given(1) ? attribute_parts(b[1]) : std::vector<Value>{};
  std::unordered_set<std::string> seen;
  std::vector<Value> out;
  for (auto& item : iterate(v)) {
    Value key = lookup_path(in, item, parts);
    if (!case_sensitive) key = lower_if_string(key);
    if (seen.insert(hash_key(key)).second) out.push_back(std::move(item));
  }
  return Value::iterator(std::move(out));
}

Value filter_wordcount(Interpreter&, const Value& v, const CallArgs& args) {
  no_arguments("wordcount", args);
  const std::string s = to_str(soft_str(v));
  int64_t words = 0;
  bool in_word = false;
  for (size_t pos = 0; pos < s.size();) {
    const bool word = is_word_char(decode_utf8(s, pos));
    if (word && !in_word) ++words;
    in_word = word;
  }
  return Value::integer(words);
}

Value filter_batch(Interpreter& in, const Value& v, const CallArgs& a) { return lazily(in, v, a, filter_batch_now); }
Value filter_map(Interpreter& in, const Value& v, const CallArgs& a) { return lazily(in, v, a, filter_map_now); }
Value filter_slice(Interpreter& in, const Value& v, const CallArgs& a) { return lazily(in, v, a, filter_slice_now); }
Value filter_unique(Interpreter& in, const Value& v, const CallArgs& a) { return lazily(in, v, a, filter_unique_now); }
Value filter_items(Interpreter& in, const Value& v, const CallArgs& a) { return lazily(in, v, a, filter_items_now); }

const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> kFilters = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"batch", filter_batch},
      {"capitalize", filter_capitalize},
      {"center", filter_center},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"forceescape", filter_forceescape},
      {"format", filter_format},
      {"groupby", filter_groupby},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"pprint", filter_pprint},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"slice", filter_slice},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"truncate", filter_truncate},
      {"unique", filter_unique},
      {"upper", filter_upper},
      {"wordcount", filter_wordcount},
  };
  return kFilters;
}

// ---- tests --------------------------------------------------------------------------------

bool test_odd_or_even(Interpreter& in, const Value& v, const CallArgs& args, int64_t remainder) {
  no_arguments(remainder ? "odd" : "even", args);
  return equals(arithmetic(in, BinaryOp::kMod, v, Value::integer(2)), Value::integer(remainder));
}

const Value& one_argument(const char* test, const CallArgs& args) {
  const Bound b(test, args, {"other"}, 1);
  return args.positional.empty() ? args.keyword.front().second : args.positional.front();
}

bool is_sequence(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kString:
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kDict:
      return true;
    default:
      return false;
  }
}

bool same_object(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::kInt:  // CPython caches small ints
      return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;
    case Value::Kind::kString:
      return a.str() == b.str();
    case Value::Kind::kFloat:
      return false;
    case Value::Kind::kDict:
      return a.dict_ptr() == b.dict_ptr();
    case Value::Kind::kObject:
      return a.object_ptr() == b.object_ptr();
    default:
      return a.list_ptr() == b.list_ptr();
  }
}

bool apply_named_test(Interpreter& in, const std::string& name, const Value& v, const CallArgs& args) {
  const auto plain = [&] { no_arguments(name.c_str(), args); };
  if (name == "defined") return plain(), !v.is_undefined();
  if (name == "undefined") return plain(), v.is_undefined();
  if (name == "none") return plain(), v.is_none();
  if (name == "boolean") return plain(), v.is_bool();
  if (name == "false") return plain(), v.is_bool() && !v.as_bool();
  if (name == "true") return plain(), v.is_bool() && v.as_bool();
  if (name == "integer") return plain(), v.is_int();
  if (name == "float") return plain(), v.is_float();
  if (name == "number") return plain(), v.is_number();
  if (name == "string") return plain(), v.is_string();
  if (name == "mapping") return plain(), v.is_dict();
  if (name == "iterable") return plain(), is_iterable(v);
  if (name == "sequence") return plain(), is_sequence(v);
  if (name == "callable") return plain(), v.is_undefined() || (v.is_object() && v.object().callable());
  if (name == "escaped") return plain(), v.is_markup();
  if (name == "odd") return test_odd_or_even(in, v, args, 1);
  if (name == "even") return test_odd_or_even(in, v, args, 0);
  if (name == "lower" || name == "upper") {
    plain();
    const std::string s = to_str(v);
    bool cased = false;
    for (size_t pos = 0; pos < s.size();) {
      const char32_t c = decode_utf8(s, pos);
      if (name == "lower" ? is_upper(c) : (is_lower(c) && to_upper(c) != c)) return false;
      cased = cased || is_cased(c);
    }
    return cased;
  }
  if (name == "filter") return plain(), v.is_string() && filter_status(v.str()) != BuiltinStatus::kUnknown;
  if (name == "test") return plain(), v.is_string() && test_status(v.str()) != BuiltinStatus::kUnknown;
  if (name == "divisibleby") {
    const Bound b("divisibleby", args, {"num"}, 1);
    return equals(arithmetic(in, BinaryOp::kMod, v, b[0]), Value::integer(0));
  }
  if (name == "sameas") return same_object(v, one_argument("sameas", args));
  if (name == "in") {
    const Bound b("in", args, {"seq"}, 1);
    return contains(b[0], v);
  }
  static const std::unordered_map<std::string_view, CompareOp> kComparisons = {
      {"==", CompareOp::kEq}, {"eq", CompareOp::kEq},         {"equalto", CompareOp::kEq},
      {"!=", CompareOp::kNe}, {"ne", CompareOp::kNe},         {">", CompareOp::kGt},
      {"gt", CompareOp::kGt}, {"greaterthan", CompareOp::kGt}, {">=", CompareOp::kGtEq},
      {"ge", CompareOp::kGtEq}, {"<", CompareOp::kLt},        {"lt", CompareOp::kLt},
      {"lessthan", CompareOp::kLt}, {"<=", CompareOp::kLtEq}, {"le", CompareOp::kLtEq},
  };
  const auto it = kComparisons.find(name);
  if (it != kComparisons.end()) return compare(it->second, v, one_argument(name.c_str(), args));
  fail("No test named '" + name + "'.");
}

const std::set<std::string, std::less<>>& test_names() {
  static const std::set<std::string, std::less<>> kNames = {
      "defined", "undefined", "none",    "boolean", "false", "true",     "integer",     "float",  "number",
      "string",  "mapping",   "iterable", "sequence", "callable", "escaped", "odd",      "even",   "lower",
      "upper",   "filter",    "test",    "divisibleby", "sameas", "in", "==", "eq", "equalto", "!=", "ne",
      ">",       "gt",        "greaterthan", ">=", "ge", "<", "lt", "lessthan", "<=", "le"};
  return kNames;
}

}  // namespace

BuiltinStatus filter_status(std::string_view name) {
  if (filters().count(name)) return BuiltinStatus::kSupported;
  static const std::set<std::string_view> kUnsupported = {"filesizeformat", "random",  "striptags", "urlencode",
                                                          "urlize",         "wordwrap", "xmlattr"};
  return kUnsupported.count(name) ? BuiltinStatus::kUnsupported : BuiltinStatus::kUnknown;
}

BuiltinStatus test_status(std::string_view name) {
  return test_names().count(name) ? BuiltinStatus::kSupported : BuiltinStatus::kUnknown;
}

Value apply_filter(Interpreter& interp, const std::string& name, const Value& value, const CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) fail("No filter named '" + name + "'.");
  return it->second(interp, value, args);
}

bool apply_test(Interpreter& interp, const std::string& name, const Value& value, const CallArgs& args) {
  return apply_named_test(interp, name, value, args);
}

}  // namespace nnterp::chat::jinja_detail
