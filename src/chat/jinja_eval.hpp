// The evaluator: renders a syntax tree with a context, following what jinja2's compiled Python
// code does (scoping, macro calls, loops, undefined values), inside the limits of RenderOptions.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja_ast.hpp"

namespace nnterp::chat::jinja_detail {

// Variables visible at one point of a template.  jinja2 gives each for-loop iteration, macro
// call, {% set %}/{% filter %} block and {% with %} its own scope (a frame); `if` shares its
// parent's.  Lookups walk outwards, except that a frame's FrameInfo may say a name starts out
// undefined there; assignments always write to the innermost scope.
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent, const FrameInfo* frame = nullptr)
      : parent_(std::move(parent)), frame_(frame) {}
  // The value of `name` here, or nullptr when it is undefined here.
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  std::shared_ptr<Scope> parent_;
  const FrameInfo* frame_;
  std::unordered_map<std::string, Value> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

// A builtin function or bound method.
class Function : public Object {
 public:
  using Fn = std::function<Value(Interpreter&, const CallArgs&)>;
  Function(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override { return "<built-in method " + name_ + ">"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, const CallArgs& args) override { return fn_(interp, args); }
  void release_references() override { fn_ = nullptr; }

 private:
  std::string name_;
  Fn fn_;
};

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  Interpreter(const Program& program, const RenderOptions& options);
  ~Interpreter();  // frees reference cycles the render created
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const nlohmann::ordered_json& context);

  // ---- services for builtins ----
  const RenderOptions& options() const { return options_; }
  Value call(const Value& callee, const CallArgs& args);
  Value get_attribute(const Value& object, const std::string& name);  // `x.name`, jinja2's getattr
  Value get_item(const Value& object, const Value& key);              // `x[key]`, jinja2's getitem
  // Fails with a limit error if a string of `bytes` (or a list of `count` items) is too big.
  void check_string_size(size_t bytes) const;
  void check_list_size(size_t count) const;
  void count_iteration();
  // Remembers an object to release when the render ends (it may be part of a cycle).
  void track(const std::shared_ptr<Object>& object);
  void track(const std::shared_ptr<ListData>& list);
  void track(const std::shared_ptr<DictData>& dict);

  // Counts one level of nesting against max_recursion_depth for as long as it lives.
  class Nesting {
   public:
    explicit Nesting(Interpreter& interp);
    ~Nesting();
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Interpreter& interp_;
  };

  // ---- used by macro and loop objects ----
  Value invoke_macro(const MacroDef& def, const ScopePtr& closure, const CallArgs& args);
  Value call_recursive_loop(const ForStmt& stmt, const ScopePtr& scope, const Value& iterable, int depth);

 private:
  const Program& program_;
  const RenderOptions& options_;
  size_t iterations_ = 0;
  int depth_ = 0;
  std::vector<std::function<void()>> releasers_;

  [[noreturn]] void rethrow_at(const EvalError& error, size_t offset) const;
  void emit(std::string& out, std::string_view text) const;

  // statements
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_statement(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  void exec_output(const OutputStmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_if(const IfStmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_for(const ForStmt& stmt, const ScopePtr& scope, std::string& out);
  Flow run_loop(const ForStmt& stmt, std::vector<Value> items, const ScopePtr& scope, int depth, std::string& out);
  std::vector<Value> loop_items(const ForStmt& stmt, const Value& iterable, const ScopePtr& scope);
  Flow exec_set_block(const SetBlockStmt& stmt, const ScopePtr& scope, std::string& out);
  void exec_call_block(const CallBlockStmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_filter_block(const FilterBlockStmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_with(const WithStmt& stmt, const ScopePtr& scope, std::string& out);
  void assign(const Target& target, const Value& value, Scope& scope);
  Value make_macro(const MacroDef& def, const ScopePtr& closure);

  // expressions
  Value eval(const Expr& expr, const ScopePtr& scope);
  Value eval_node(const Expr& expr, const ScopePtr& scope);
  Value eval_name(const NameExpr& expr, const ScopePtr& scope);
  Value eval_dict(const DictExpr& expr, const ScopePtr& scope);
  Value eval_getitem(const GetitemExpr& expr, const ScopePtr& scope);
  Value eval_slice(const Value& object, const SliceExpr& slice, const ScopePtr& scope);
  CallArgs eval_arguments(const Arguments& args, const ScopePtr& scope);
  Value eval_filter(const FilterExpr& expr, const ScopePtr& scope, const Value* body);
  Value eval_compare(const CompareExpr& expr, const ScopePtr& scope);
  Value eval_cond(const CondExpr& expr, const ScopePtr& scope);
  // Applies a {% filter %} / {% set %} block's filter chain to the rendered body.
  Value apply_block_filter(const Expr& filter, const Value& body, const ScopePtr& scope);
};

}  // namespace nnterp::chat::jinja_detail
