// Runtime values of the Jinja interpreter, with Python's semantics.
//
// A Value is one of: Undefined (jinja2's Undefined), None, bool, int, float, str (optionally
// marked safe, as markupsafe.Markup), list, tuple, dict (insertion ordered, Python keys),
// iterator (a one-shot sequence, as the generators that `map` or `select` return), a dict view
// (what dict.items() returns) or an Object (namespace, loop, macro, builtin function, ...).
// Containers are shared by reference, as in Python.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/jinja.hpp"

namespace nnterp::chat::jinja_detail {

class Interpreter;
class Object;
class Value;
struct ListData;
class DictData;

// An error raised while evaluating; the evaluator attaches the template location to it.
struct EvalError {
  TemplateError::Kind kind;
  std::string message;
};
[[noreturn]] void fail(std::string message);
[[noreturn]] void fail_limit(std::string message);

// How deeply values may nest before repr(), ==, tojson and friends give up (they recurse).
constexpr int kMaxValueNesting = 1000;

enum class ViewKind : uint8_t { kNone, kItems, kKeys, kValues };

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kIterator,
    kDictView,
    kObject,
  };

  Value() = default;  // Undefined
  static Value undefined(std::string hint);  // hint: the error message if the value gets used
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value markup(std::string s);  // a str marked safe (markupsafe.Markup)
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(std::shared_ptr<DictData> data);
  static Value empty_dict();
  static Value iterator(std::vector<Value> items);
  // A generator whose items are computed (and whose errors are raised) when first consumed,
  // as jinja2's map / select / ... generators run only when iterated.
  // The producer gets `inputs` (the values it reads); they are kept as values, not captured,
  // so that freeing a long chain of generators does not recurse.
  using Producer = std::function<std::vector<Value>(const std::vector<Value>& inputs)>;
  static Value lazy_iterator(std::vector<Value> inputs, Producer producer);
  static Value dict_view(ViewKind view, std::vector<Value> items);
  static Value object(std::shared_ptr<Object> object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_markup() const { return kind_ == Kind::kString && markup_; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_iterator() const { return kind_ == Kind::kIterator; }
  bool is_object() const { return kind_ == Kind::kObject; }
  // Python's int, counting bool (a subclass of int).
  bool is_integral() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }
  // Python's numbers.Number: bool, int or float.
  bool is_number() const { return is_integral() || kind_ == Kind::kFloat; }
  // Backed by ListData: list, tuple, iterator or dict view.
  bool has_items() const {
    return kind_ == Kind::kList || kind_ == Kind::kTuple || kind_ == Kind::kIterator || kind_ == Kind::kDictView;
  }

  bool as_bool() const { return scalar_.b; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (scalar_.b ? 1 : 0) : scalar_.i; }
  double as_double() const { return kind_ == Kind::kFloat ? scalar_.f : static_cast<double>(as_int()); }
  const std::string& str() const { return text_; }
  const std::string& undefined_hint() const { return text_; }
  ListData& list_data() const { return *std::get<std::shared_ptr<ListData>>(ref_); }
  const std::shared_ptr<ListData>& list_ptr() const { return std::get<std::shared_ptr<ListData>>(ref_); }
  DictData& dict_data() const { return *std::get<std::shared_ptr<DictData>>(ref_); }
  const std::shared_ptr<DictData>& dict_ptr() const { return std::get<std::shared_ptr<DictData>>(ref_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(ref_); }
  const std::shared_ptr<Object>& object_ptr() const { return std::get<std::shared_ptr<Object>>(ref_); }
  // The items of a list, tuple or dict view (an iterator's items include consumed ones).
  const std::vector<Value>& items() const;
  ViewKind view_kind() const;
  // True when destroying this value would destroy the container it refers to.
  bool owns_container() const;
  // Moves the values out of a uniquely owned container (see drain_values).
  void take_children(std::vector<Value>& out);

 private:
  Kind kind_ = Kind::kUndefined;
  bool markup_ = false;
  union {
    bool b;
    int64_t i;
    double f;
  } scalar_{};
  std::string text_;  // a string's text, or an undefined value's hint
  std::variant<std::monostate, std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<Object>> ref_;
};

// Destroys values without recursing once per nesting level, so that a deeply nested structure
// (a namespace chain built in a loop) cannot overflow the stack when it is freed.
void drain_values(std::vector<Value>&& values);

struct ListData {
  std::vector<Value> items;
  // Lazy iterators: producer(lazy_inputs) computes `items` on first use.
  std::function<std::vector<Value>(const std::vector<Value>&)> producer;
  std::vector<Value> lazy_inputs;
  size_t cursor = 0;  // iterators: how many items were consumed
  ViewKind view = ViewKind::kNone;
  std::vector<std::string> field_names;  // a named tuple's fields (groupby's grouper, list)
  ~ListData();
};

// A Python dict: insertion ordered, keys compared as Python compares them (1 == 1.0 == True).
class DictData {
 public:
  DictData() = default;
  DictData(const DictData&) = default;
  ~DictData();
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  const Value* find(const Value& key) const;  // fails for unhashable keys
  void set(const Value& key, Value value);
  bool erase(const Value& key);
  void clear();
  void take_children(std::vector<Value>& out);

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;  // hash_key(key) -> position in entries_
};

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Namespaces, loops, macros, builtin functions and bound methods.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;  // Python's type(x).__name__
  virtual std::string repr() const = 0;
  virtual std::optional<Value> get_attr(const std::string& name);
  virtual bool set_attr(const std::string& name, Value value);  // false: not a namespace
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interp, const CallArgs& args);
  virtual std::optional<size_t> length() const { return std::nullopt; }
  // Drops references to other values so that reference cycles are freed when a render ends.
  virtual void release_references() {}
  // Moves out the values this object holds, for drain_values.
  virtual void take_children(std::vector<Value>& out) { (void)out; }
};

// ---- Python semantics -------------------------------------------------------------------

bool truthy(const Value& v);
std::string type_name(const Value& v);         // "int", "str", "dict", "NoneType", ...
std::string object_type_repr(const Value& v);  // jinja2's wording in messages: "dict object", "None"
std::string to_str(const Value& v);             // str(v); Undefined is ""
std::string repr(const Value& v);               // repr(v)
std::string repr_string(std::string_view s);    // repr() of a str, with Python's choice of quotes
bool equals(const Value& a, const Value& b, int depth = 0);
// a < b; fails with a TypeError when Python cannot order the two.
bool less_than(const Value& a, const Value& b, int depth = 0);
// A string that is equal for keys Python considers equal; fails for unhashable values.
std::string hash_key(const Value& v, int depth = 0);
// Runs a lazy iterator's producer, if it has not run yet.
void materialize(const Value& iterator);
// Python's iter(): the items a for-loop sees (consumes iterators); fails if not iterable.
std::vector<Value> iterate(const Value& v);
bool is_iterable(const Value& v);
// len(); nullopt when the value has no length.
std::optional<size_t> length_of(const Value& v);
[[noreturn]] void fail_undefined(const Value& undefined);

// markupsafe.escape() of a text.
std::string html_escape(std::string_view s);

Value from_json(const nlohmann::ordered_json& j, int max_depth);

}  // namespace nnterp::chat::jinja_detail
