// jinja2's builtin filters, tests and globals, transformers' additions, and the methods that
// templates call on str, list and dict values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chat/jinja_ast.hpp"
#include "chat/jinja_value.hpp"

namespace nnterp::chat::jinja_detail {

class Scope;

enum class BuiltinStatus {
  kSupported,
  kUnsupported,  // exists in jinja2 but not here
  kUnknown,      // jinja2 would not compile the template either
};
BuiltinStatus filter_status(std::string_view name);
BuiltinStatus test_status(std::string_view name);

// Apply a filter / test by name (the parser checked the name).
Value apply_filter(Interpreter& interp, const std::string& name, const Value& value, const CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& value, const CallArgs& args);

// `value.name` for Python attributes: str/list/dict methods, int.real, ...; nullopt if there is
// none.  Methods that modify a container come back as an undefined value that fails when
// called, as in jinja2's ImmutableSandboxedEnvironment, unless mutation is allowed.
std::optional<Value> builtin_attribute(Interpreter& interp, const Value& value, const std::string& name);

// Defines the globals: range, dict, namespace, cycler, joiner, raise_exception, strftime_now.
void define_globals(Scope& scope);

// Python's operators, as jinja2 applies them (the sandbox does not intercept any).
Value arithmetic(Interpreter& interp, BinaryOp op, const Value& a, const Value& b);
Value unary_sign(const Value& operand, bool negate);
bool compare(CompareOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);  // `item in container`

// json.dumps with transformers' defaults (ensure_ascii=False); fails for values json rejects.
struct JsonOptions {
  bool ensure_ascii = false;
  bool indent_set = false;
  std::string indent;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string json_dumps(Interpreter& interp, const Value& value, const JsonOptions& options);

}  // namespace nnterp::chat::jinja_detail
