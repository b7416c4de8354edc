#include "chat/jinja_eval.hpp"

#include "chat/jinja_builtins.hpp"
#include "chat/jinja_lexer.hpp"
#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent_.get()) {
    const auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
    if (s->frame_ && s->frame_->starts_undefined(name)) return nullptr;  // assigned later in that frame
  }
  return nullptr;
}

namespace {

// A macro (or the `caller` of a {% call %} block): its definition and the scope it was defined
// in, which it reads at call time as a Python closure would.
class Macro : public Object {
 public:
  Macro(const MacroDef& def, ScopePtr closure) : def_(def), closure_(std::move(closure)) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro " + repr_string(def_.name) + ">"; }
  bool callable() const override { return true; }

  Value call(Interpreter& interp, const CallArgs& args) override {
    if (!closure_) fail("macro '" + def_.name + "' called after its template finished rendering");
    return interp.invoke_macro(def_, closure_, args);
  }

  std::optional<Value> get_attr(const std::string& name) override {
    if (name == "name") return Value::string(def_.name);
    if (name == "arguments") {
      std::vector<Value> names;
      for (const auto& p : def_.params) names.push_back(Value::string(p));
      return Value::tuple(std::move(names));
    }
    if (name == "catch_kwargs") return Value::boolean(def_.uses_kwargs);
    if (name == "catch_varargs") return Value::boolean(def_.uses_varargs);
    if (name == "caller") return Value::boolean(def_.uses_caller);
    return std::nullopt;
  }

  void release_references() override { closure_.reset(); }

 private:
  const MacroDef& def_;
  ScopePtr closure_;
};

// jinja2's LoopContext: the `loop` variable of a for loop.
class Loop : public Object, public std::enable_shared_from_this<Loop> {
 public:
  Loop(std::vector<Value> items, int depth) : items_(std::move(items)), depth_(depth) {}

  void set_index(size_t i) { index_ = i; }
  const std::vector<Value>& items() const { return items_; }
  // Recursive loops can be called as loop(children) to render the body again.
  void make_recursive(const ForStmt& stmt, ScopePtr scope) {
    stmt_ = &stmt;
    scope_ = std::move(scope);
  }

  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_.size()) + ">";
  }
  std::optional<size_t> length() const override { return items_.size(); }
  bool callable() const override { return true; }

  Value call(Interpreter& interp, const CallArgs& args) override {
    if (!stmt_) fail("The loop must have the 'recursive' marker to be called recursively.");
    if (args.positional.size() != 1 || !args.keyword.empty()) fail("loop() takes exactly one argument");
    return interp.call_recursive_loop(*stmt_, scope_, args.positional[0], depth_ + 1);
  }

  std::optional<Value> get_attr(const std::string& name) override {
    const size_t n = items_.size();
    if (name == "index") return Value::integer(static_cast<int64_t>(index_ + 1));
    if (name == "index0") return Value::integer(static_cast<int64_t>(index_));
    if (name == "revindex") return Value::integer(static_cast<int64_t>(n - index_));
    if (name == "revindex0") return Value::integer(static_cast<int64_t>(n - index_ - 1));
    if (name == "first") return Value::boolean(index_ == 0);
    if (name == "last") return Value::boolean(index_ + 1 == n);
    if (name == "length") return Value::integer(static_cast<int64_t>(n));
    if (name == "depth") return Value::integer(depth_ + 1);
    if (name == "depth0") return Value::integer(depth_);
    if (name == "previtem") return index_ > 0 ? items_[index_ - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem") return index_ + 1 < n ? items_[index_ + 1] : Value::undefined("there is no next item");
    if (name == "cycle") return bound_method(name, &Loop::cycle);
    if (name == "changed") return bound_method(name, &Loop::changed);
    return std::nullopt;
  }

  void release_references() override { scope_.reset(); }
  void take_children(std::vector<Value>& out) override {
    for (auto& item : items_) out.push_back(std::move(item));
    items_.clear();
    out.push_back(std::move(last_changed_));
  }

 private:
  std::vector<Value> items_;
  size_t index_ = 0;
  int depth_ = 0;
  const ForStmt* stmt_ = nullptr;
  ScopePtr scope_;
  bool changed_called_ = false;
  Value last_changed_;

  Value bound_method(const std::string& name, Value (Loop::*method)(const CallArgs&)) {
    std::shared_ptr<Loop> self = shared_from_this();
    return Value::object(std::make_shared<Function>(
        name, [self, method](Interpreter&, const CallArgs& args) { return ((*self).*method)(args); }));
  }

  Value cycle(const CallArgs& args) {
    if (args.positional.empty()) fail("no items for cycling given");
    return args.positional[index_ % args.positional.size()];
  }

  Value changed(const CallArgs& args) {
    Value now = Value::tuple(args.positional);
    if (changed_called_ && equals(now, last_changed_)) return Value::boolean(false);
    changed_called_ = true;
    last_changed_ = std::move(now);
    return Value::boolean(true);
  }
};

}  // namespace

// ---- the interpreter --------------------------------------------------------------------

Interpreter::Nesting::Nesting(Interpreter& interp) : interp_(interp) {
  if (++interp_.depth_ > interp_.options_.max_recursion_depth) {
    --interp_.depth_;
    fail_limit("maximum recursion depth (" + std::to_string(interp_.options_.max_recursion_depth) + ") exceeded");
  }
}

Interpreter::Nesting::~Nesting() { --interp_.depth_; }

Interpreter::Interpreter(const Program& program, const RenderOptions& options) : program_(program), options_(options) {}

Interpreter::~Interpreter() {
  for (auto& release : releasers_) release();
}

std::string Interpreter::render(const nlohmann::ordered_json& context) {
  auto globals = std::make_shared<Scope>(nullptr);
  define_globals(*globals);
  auto context_scope = std::make_shared<Scope>(globals);
  std::string out;
  try {
    if (context.is_object()) {
      for (const auto& [key, value] : context.items()) {
        context_scope->set(key, from_json(value, options_.max_recursion_depth));
      }
    } else if (!context.is_null()) {
      fail("the context must be a JSON object");
    }
  } catch (const EvalError& error) {
    rethrow_at(error, 0);
  }
  exec_body(program_.body, std::make_shared<Scope>(context_scope, &program_.frame), out);
  return out;
}

void Interpreter::rethrow_at(const EvalError& error, size_t offset) const {
  const auto [line, column] = locate(program_.source, offset);
  throw TemplateError(error.kind, error.message, program_.name, line, column);
}

void Interpreter::emit(std::string& out, std::string_view text) const {
  if (out.size() + text.size() > options_.max_output_bytes) {
    fail_limit("the output exceeds max_output_bytes (" + std::to_string(options_.max_output_bytes) + ")");
  }
  out.append(text);
}

void Interpreter::check_string_size(size_t bytes) const {
  if (bytes > options_.max_output_bytes) {
    fail_limit("a string of " + std::to_string(bytes) + " bytes exceeds max_output_bytes (" +
               std::to_string(options_.max_output_bytes) + ")");
  }
}

void Interpreter::check_list_size(size_t count) const {
  // Counted as the memory the items take, against the same budget as strings.
  if (count > options_.max_output_bytes / sizeof(Value)) {
    fail_limit("a list of " + std::to_string(count) + " items exceeds max_output_bytes (" +
               std::to_string(options_.max_output_bytes) + ")");
  }
}

void Interpreter::count_iteration() {
  if (++iterations_ > options_.max_loop_iterations) {
    fail_limit("more than max_loop_iterations (" + std::to_string(options_.max_loop_iterations) +
               ") loop iterations and macro calls");
  }
}

void Interpreter::track(const std::shared_ptr<Object>& object) {
  releasers_.push_back([weak = std::weak_ptr<Object>(object)] {
    if (auto o = weak.lock()) o->release_references();
  });
}

void Interpreter::track(const std::shared_ptr<ListData>& list) {
  releasers_.push_back([weak = std::weak_ptr<ListData>(list)] {
    if (auto l = weak.lock()) drain_values(std::move(l->items));
  });
}

void Interpreter::track(const std::shared_ptr<DictData>& dict) {
  releasers_.push_back([weak = std::weak_ptr<DictData>(dict)] {
    if (auto d = weak.lock()) d->clear();
  });
}

// ---- statements -------------------------------------------------------------------------

Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& stmt : body) {
    const Flow flow = exec(*stmt, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Flow Interpreter::exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  try {
    Nesting nesting(*this);
    return exec_statement(stmt, scope, out);
  } catch (const EvalError& error) {
    rethrow_at(error, stmt.offset);
  }
}

Flow Interpreter::exec_statement(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  switch (stmt.kind) {
    case StmtKind::kOutput:
      exec_output(static_cast<const OutputStmt&>(stmt), scope, out);
      return Flow::kNormal;
    case StmtKind::kIf:
      return exec_if(static_cast<const IfStmt&>(stmt), scope, out);
    case StmtKind::kFor:
      return exec_for(static_cast<const ForStmt&>(stmt), scope, out);
    case StmtKind::kSet: {
      const auto& s = static_cast<const SetStmt&>(stmt);
      assign(s.target, eval(*s.value, scope), *scope);
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock:
      return exec_set_block(static_cast<const SetBlockStmt&>(stmt), scope, out);
    case StmtKind::kMacro: {
      const auto& def = static_cast<const MacroStmt&>(stmt).def;
      scope->set(def.name, make_macro(def, scope));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock:
      exec_call_block(static_cast<const CallBlockStmt&>(stmt), scope, out);
      return Flow::kNormal;
    case StmtKind::kFilterBlock:
      return exec_filter_block(static_cast<const FilterBlockStmt&>(stmt), scope, out);
    case StmtKind::kWith:
      return exec_with(static_cast<const WithStmt&>(stmt), scope, out);
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kScope: {
      const auto& s = static_cast<const ScopeStmt&>(stmt);
      return exec_body(s.body, std::make_shared<Scope>(scope, &s.frame), out);
    }
  }
  return Flow::kNormal;
}

void Interpreter::exec_output(const OutputStmt& stmt, const ScopePtr& scope, std::string& out) {
  for (const auto& part : stmt.parts) {
    if (!part.expr) {
      emit(out, part.text);
      continue;
    }
    const Value value = eval(*part.expr, scope);
    if (value.is_string()) {
      emit(out, value.str());
    } else {
      emit(out, to_str(value));
    }
  }
}

Flow Interpreter::exec_if(const IfStmt& stmt, const ScopePtr& scope, std::string& out) {
  for (const auto& branch : stmt.branches) {
    if (truthy(eval(*branch.test, scope))) return exec_body(branch.body, scope, out);
  }
  return exec_body(stmt.else_body, scope, out);
}

Flow Interpreter::exec_for(const ForStmt& stmt, const ScopePtr& scope, std::string& out) {
  const Value iterable = eval(*stmt.iterable, scope);
  return run_loop(stmt, loop_items(stmt, iterable, scope), scope, 0, out);
}

// The items a loop visits: those of the iterable that pass its `if` filter.
std::vector<Value> Interpreter::loop_items(const ForStmt& stmt, const Value& iterable, const ScopePtr& scope) {
  std::vector<Value> items = iterate(iterable);
  if (!stmt.filter) return items;
  std::vector<Value> kept;
  for (auto& item : items) {
    count_iteration();
    auto test_scope = std::make_shared<Scope>(scope);
    assign(stmt.target, item, *test_scope);
    if (truthy(eval(*stmt.filter, test_scope))) kept.push_back(std::move(item));
  }
  return kept;
}

Flow Interpreter::run_loop(const ForStmt& stmt, std::vector<Value> items, const ScopePtr& scope, int depth,
                           std::string& out) {
  auto loop = std::make_shared<Loop>(std::move(items), depth);
  if (stmt.recursive) {
    loop->make_recursive(stmt, scope);
    track(loop);
  }
  const Value loop_value = Value::object(loop);
  const size_t n = loop->items().size();
  // jinja2 clears its "run the else block" flag at the end of a loop body, so only an
  // iteration that finishes its body (no break, no continue) prevents the else block.
  bool completed_an_iteration = false;
  for (size_t i = 0; i < n; ++i) {
    count_iteration();
    loop->set_index(i);
    // Each iteration gets a fresh scope: assignments in the body do not outlive the iteration.
    auto iteration = std::make_shared<Scope>(scope, &stmt.body_frame);
    assign(stmt.target, loop->items()[i], *iteration);
    iteration->set("loop", loop_value);
    const Flow flow = exec_body(stmt.body, iteration, out);
    if (flow == Flow::kNormal) completed_an_iteration = true;
    if (flow == Flow::kBreak) break;
  }
  if (!completed_an_iteration) return exec_body(stmt.else_body, std::make_shared<Scope>(scope, &stmt.else_frame), out);
  return Flow::kNormal;
}

Value Interpreter::call_recursive_loop(const ForStmt& stmt, const ScopePtr& scope, const Value& iterable, int depth) {
  Nesting nesting(*this);
  std::string out;
  run_loop(stmt, loop_items(stmt, iterable, scope), scope, depth, out);
  return Value::string(std::move(out));
}

Flow Interpreter::exec_set_block(const SetBlockStmt& stmt, const ScopePtr& scope, std::string& out) {
  (void)out;
  std::string body;
  const Flow flow = exec_body(stmt.body, std::make_shared<Scope>(scope, &stmt.frame), body);
  if (flow != Flow::kNormal) return flow;  // break/continue leave before the assignment, as in jinja2
  Value value = Value::string(std::move(body));
  if (stmt.filter) value = apply_block_filter(*stmt.filter, value, scope);
  assign(stmt.target, value, *scope);
  return Flow::kNormal;
}

void Interpreter::exec_call_block(const CallBlockStmt& stmt, const ScopePtr& scope, std::string& out) {
  const auto& call = static_cast<const CallExpr&>(*stmt.call);
  const Value callee = eval(*call.callee, scope);
  CallArgs args = eval_arguments(call.args, scope);
  args.keyword.emplace_back("caller", make_macro(stmt.caller, scope));
  Value result;
  try {
    result = this->call(callee, args);
  } catch (const EvalError& error) {
    rethrow_at(error, call.offset);
  }
  emit(out, to_str(result));
}

Flow Interpreter::exec_filter_block(const FilterBlockStmt& stmt, const ScopePtr& scope, std::string& out) {
  std::string body;
  auto inner = std::make_shared<Scope>(scope, &stmt.frame);
  const Flow flow = exec_body(stmt.body, inner, body);
  if (flow != Flow::kNormal) return flow;
  emit(out, to_str(apply_block_filter(*stmt.filter, Value::string(std::move(body)), inner)));
  return Flow::kNormal;
}

Flow Interpreter::exec_with(const WithStmt& stmt, const ScopePtr& scope, std::string& out) {
  auto inner = std::make_shared<Scope>(scope, &stmt.frame);
  for (const auto& [target, value] : stmt.assignments) assign(target, eval(*value, scope), *inner);
  return exec_body(stmt.body, inner, out);
}

void Interpreter::assign(const Target& target, const Value& value, Scope& scope) {
  switch (target.kind) {
    case Target::Kind::kName:
      scope.set(target.name, value);
      return;
    case Target::Kind::kNamespaceAttr: {
      const Value* ns = scope.find(target.name);
      if (!ns || !ns->is_object() || !ns->object().set_attr(target.attr, value)) {
        fail("cannot assign attribute on non-namespace object");
      }
      return;
    }
    case Target::Kind::kTuple: {
      const std::vector<Value> items = iterate(value);
      const size_t want = target.items.size();
      if (items.size() < want) {
        fail("not enough values to unpack (expected " + std::to_string(want) + ", got " + std::to_string(items.size()) + ")");
      }
      if (items.size() > want) fail("too many values to unpack (expected " + std::to_string(want) + ")");
      for (size_t i = 0; i < want; ++i) assign(target.items[i], items[i], scope);
      return;
    }
  }
}

Value Interpreter::make_macro(const MacroDef& def, const ScopePtr& closure) {
  auto macro = std::make_shared<Macro>(def, closure);
  track(macro);
  return Value::object(macro);
}

// jinja2's Macro.__call__: positional arguments first, then keyword arguments for the
// remaining parameters, then `caller`, `kwargs` and `varargs` if the body uses them.
Value Interpreter::invoke_macro(const MacroDef& def, const ScopePtr& closure, const CallArgs& args) {
  count_iteration();
  Nesting nesting(*this);
  auto scope = std::make_shared<Scope>(closure, &def.frame);
  const size_t n_params = def.params.size();
  const size_t n_positional = std::min(args.positional.size(), n_params);
  std::vector<std::pair<std::string, Value>> kwargs = args.keyword;
  const auto take_kwarg = [&](const std::string& name) -> std::optional<Value> {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      if (it->first == name) {
        Value v = std::move(it->second);
        kwargs.erase(it);
        return v;
      }
    }
    return std::nullopt;
  };

  std::vector<std::optional<Value>> bound(n_params);
  for (size_t i = 0; i < n_positional; ++i) bound[i] = args.positional[i];
  bool found_caller = false;
  if (n_positional != n_params) {
    for (size_t i = n_positional; i < n_params; ++i) {
      bound[i] = take_kwarg(def.params[i]);
      if (def.params[i] == "caller") found_caller = true;
    }
  } else {
    for (const auto& p : def.params) found_caller = found_caller || p == "caller";
  }
  std::optional<Value> caller;
  if (def.uses_caller && !found_caller) caller = take_kwarg("caller");
  if (!def.uses_kwargs && !kwargs.empty()) {
    for (const auto& kw : kwargs) {
      if (kw.first == "caller") {
        fail("macro '" + def.name + "' was invoked with two values for the special caller argument. This is most likely a bug.");
      }
    }
    fail("macro '" + def.name + "' takes no keyword argument '" + kwargs.front().first + "'");
  }
  if (!def.uses_varargs && args.positional.size() > n_params) {
    fail("macro '" + def.name + "' takes not more than " + std::to_string(n_params) + " argument(s)");
  }

  // Bind in order; defaults are evaluated in the macro's scope when their argument is missing.
  const size_t first_default = n_params - def.defaults.size();
  for (size_t i = 0; i < n_params; ++i) {
    if (bound[i]) {
      scope->set(def.params[i], *bound[i]);
    } else if (i >= first_default) {
      scope->set(def.params[i], eval(*def.defaults[i - first_default], scope));
    } else {
      scope->set(def.params[i], Value::undefined("parameter '" + def.params[i] + "' was not provided"));
    }
  }
  if (def.uses_caller && !found_caller) {
    scope->set("caller", caller ? *caller : Value::undefined("No caller defined"));
  }
  if (def.uses_kwargs) {
    auto dict = std::make_shared<DictData>();
    for (auto& [key, value] : kwargs) dict->set(Value::string(key), std::move(value));
    scope->set("kwargs", Value::dict(std::move(dict)));
  }
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = n_params; i < args.positional.size(); ++i) rest.push_back(args.positional[i]);
    scope->set("varargs", Value::tuple(std::move(rest)));
  }
  std::string out;
  exec_body(def.body, scope, out);
  return Value::string(std::move(out));
}

// ---- expressions ------------------------------------------------------------------------

Value Interpreter::eval(const Expr& expr, const ScopePtr& scope) {
  try {
    Nesting nesting(*this);
    return eval_node(expr, scope);
  } catch (const EvalError& error) {
    rethrow_at(error, expr.offset);
  }
}

Value Interpreter::eval_node(const Expr& expr, const ScopePtr& scope) {
  switch (expr.kind) {
    case ExprKind::kConst:
      return static_cast<const ConstExpr&>(expr).value;
    case ExprKind::kName:
      return eval_name(static_cast<const NameExpr&>(expr), scope);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      for (const auto& item : static_cast<const SequenceExpr&>(expr).items) items.push_back(eval(*item, scope));
      return expr.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::kDict:
      return eval_dict(static_cast<const DictExpr&>(expr), scope);
    case ExprKind::kGetattr: {
      const auto& e = static_cast<const GetattrExpr&>(expr);
      return get_attribute(eval(*e.object, scope), e.attr);
    }
    case ExprKind::kGetitem:
      return eval_getitem(static_cast<const GetitemExpr&>(expr), scope);
    case ExprKind::kSlice:
      return Value::undefined("a slice used outside a subscript");
    case ExprKind::kCall: {
      const auto& e = static_cast<const CallExpr&>(expr);
      const Value callee = eval(*e.callee, scope);
      return call(callee, eval_arguments(e.args, scope));
    }
    case ExprKind::kFilter:
      return eval_filter(static_cast<const FilterExpr&>(expr), scope, nullptr);
    case ExprKind::kTest: {
      const auto& e = static_cast<const TestExpr&>(expr);
      const Value operand = eval(*e.operand, scope);
      return Value::boolean(apply_test(*this, e.name, operand, eval_arguments(e.args, scope)));
    }
    case ExprKind::kNot:
      return Value::boolean(!truthy(eval(*static_cast<const UnaryExpr&>(expr).operand, scope)));
    case ExprKind::kNeg:
    case ExprKind::kPos:
      return unary_sign(eval(*static_cast<const UnaryExpr&>(expr).operand, scope), expr.kind == ExprKind::kNeg);
    case ExprKind::kBinary: {
      const auto& e = static_cast<const BinaryExpr&>(expr);
      const Value left = eval(*e.left, scope);
      const Value right = eval(*e.right, scope);
      return arithmetic(*this, e.op, left, right);
    }
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      // Python's and/or return an operand, not a bool.
      const auto& e = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*e.left, scope);
      if (truthy(left) == (expr.kind == ExprKind::kOr)) return left;
      return eval(*e.right, scope);
    }
    case ExprKind::kConcat: {
      std::string text;
      for (const auto& item : static_cast<const ConcatExpr&>(expr).items) {
        const Value v = eval(*item, scope);
        text += v.is_string() ? v.str() : to_str(v);
        check_string_size(text.size());
      }
      return Value::string(std::move(text));
    }
    case ExprKind::kCompare:
      return eval_compare(static_cast<const CompareExpr&>(expr), scope);
    case ExprKind::kCondExpr:
      return eval_cond(static_cast<const CondExpr&>(expr), scope);
  }
  return Value();
}

Value Interpreter::eval_name(const NameExpr& expr, const ScopePtr& scope) {
  if (const Value* v = scope->find(expr.name)) return *v;
  return Value::undefined("'" + expr.name + "' is undefined");
}

Value Interpreter::eval_dict(const DictExpr& expr, const ScopePtr& scope) {
  auto dict = std::make_shared<DictData>();
  for (const auto& [key, value] : expr.items) {
    Value k = eval(*key, scope);
    dict->set(k, eval(*value, scope));
  }
  return Value::dict(std::move(dict));
}

Value Interpreter::eval_getitem(const GetitemExpr& expr, const ScopePtr& scope) {
  const Value object = eval(*expr.object, scope);
  if (expr.key->kind == ExprKind::kSlice) return eval_slice(object, static_cast<const SliceExpr&>(*expr.key), scope);
  return get_item(object, eval(*expr.key, scope));
}

namespace {

// Python's slice.indices(): the positions a slice visits in a sequence of `length` items.
std::vector<size_t> slice_positions(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                                    std::optional<int64_t> step_opt) {
  const int64_t step = step_opt.value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? length : length - 1;
  const auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) {
      x += length;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const int64_t from = clamp(start, step > 0 ? lower : upper);
  const int64_t to = clamp(stop, step > 0 ? upper : lower);
  std::vector<size_t> positions;
  for (int64_t i = from; step > 0 ? i < to : i > to; i += step) positions.push_back(static_cast<size_t>(i));
  return positions;
}

}  // namespace

// jinja2 compiles slices to a plain Python subscript (not its forgiving getitem), so a bad
// object or bound raises instead of giving undefined.
Value Interpreter::eval_slice(const Value& object, const SliceExpr& slice, const ScopePtr& scope) {
  const auto bound = [&](const ExprPtr& e) -> std::optional<int64_t> {
    if (!e) return std::nullopt;
    const Value v = eval(*e, scope);
    if (v.is_none()) return std::nullopt;
    if (!v.is_integral()) fail("slice indices must be integers or None or have an __index__ method");
    return v.as_int();
  };
  const auto start = bound(slice.start);
  const auto stop = bound(slice.stop);
  const auto step = bound(slice.step);
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_string()) {
    const std::u32string chars = to_u32(object.str());
    std::u32string picked;
    for (size_t i : slice_positions(static_cast<int64_t>(chars.size()), start, stop, step)) picked += chars[i];
    return object.is_markup() ? Value::markup(to_utf8(picked)) : Value::string(to_utf8(picked));
  }
  if (!object.is_list() && !object.is_tuple()) {
    if (object.is_dict()) fail("unhashable type: 'slice'");
    fail("'" + type_name(object) + "' object is not subscriptable");
  }
  const auto& items = object.items();
  std::vector<Value> picked;
  for (size_t i : slice_positions(static_cast<int64_t>(items.size()), start, stop, step)) picked.push_back(items[i]);
  return object.is_list() ? Value::list(std::move(picked)) : Value::tuple(std::move(picked));
}

CallArgs Interpreter::eval_arguments(const Arguments& args, const ScopePtr& scope) {
  CallArgs out;
  for (const auto& arg : args.positional) out.positional.push_back(eval(*arg, scope));
  if (args.star_args) {
    for (auto& item : iterate(eval(*args.star_args, scope))) out.positional.push_back(std::move(item));
  }
  for (const auto& [name, arg] : args.keyword) out.keyword.emplace_back(name, eval(*arg, scope));
  if (args.star_kwargs) {
    const Value mapping = eval(*args.star_kwargs, scope);
    if (!mapping.is_dict()) fail("argument after ** must be a mapping, not " + type_name(mapping));
    for (const auto& [key, value] : mapping.dict_data().entries()) {
      if (!key.is_string()) fail("keywords must be strings");
      out.keyword.emplace_back(key.str(), value);
    }
  }
  return out;
}

Value Interpreter::eval_filter(const FilterExpr& expr, const ScopePtr& scope, const Value* body) {
  const Value operand = expr.operand ? eval(*expr.operand, scope) : body ? *body : Value();
  return apply_filter(*this, expr.name, operand, eval_arguments(expr.args, scope));
}

Value Interpreter::apply_block_filter(const Expr& filter, const Value& body, const ScopePtr& scope) {
  const auto& f = static_cast<const FilterExpr&>(filter);
  try {
    const Value input = f.operand ? apply_block_filter(*f.operand, body, scope) : body;
    return apply_filter(*this, f.name, input, eval_arguments(f.args, scope));
  } catch (const EvalError& error) {
    rethrow_at(error, f.offset);
  }
}

Value Interpreter::eval_compare(const CompareExpr& expr, const ScopePtr& scope) {
  Value left = eval(*expr.first, scope);
  for (const auto& [op, operand] : expr.rest) {
    Value right = eval(*operand, scope);
    if (!compare(op, left, right)) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_cond(const CondExpr& expr, const ScopePtr& scope) {
  if (truthy(eval(*expr.test, scope))) return eval(*expr.then_value, scope);
  if (expr.else_value) return eval(*expr.else_value, scope);
  const int line = locate(program_.source, expr.offset).first;
  return Value::undefined("the inline if-expression on line " + std::to_string(line) +
                          " evaluated to false and no else section was defined.");
}

// ---- attribute and item access ----------------------------------------------------------

Value Interpreter::call(const Value& callee, const CallArgs& args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (callee.is_object() && callee.object().callable()) return callee.object().call(*this, args);
  fail("'" + type_name(callee) + "' object is not callable");
}

Value Interpreter::get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_object()) {
    if (auto v = object.object().get_attr(name)) return *v;
  } else {
    if (auto v = builtin_attribute(*this, object, name)) return *v;
    if (object.is_dict()) {
      if (const Value* v = object.dict_data().find(Value::string(name))) return *v;
    }
  }
  return Value::undefined("'" + object_type_repr(object) + "' has no attribute '" + name + "'");
}

Value Interpreter::get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) fail_undefined(object);
  const auto missing = [&] {
    // jinja2 falls back to the attribute for string keys.
    if (key.is_string()) {
      if (object.is_object()) {
        if (auto v = object.object().get_attr(key.str())) return *v;
      } else if (auto v = builtin_attribute(*this, object, key.str())) {
        return *v;
      }
      return Value::undefined("'" + object_type_repr(object) + "' has no attribute '" + key.str() + "'");
    }
    return Value::undefined("'" + object_type_repr(object) + "' has no element " + repr(key));
  };
  if (object.is_dict()) {
    bool hashable = true;
    try {
      hash_key(key);
    } catch (const EvalError&) {
      hashable = false;  // TypeError: unhashable, which jinja2 treats as a missing item
    }
    if (hashable) {
      if (const Value* v = object.dict_data().find(key)) return *v;
    }
    return missing();
  }
  if ((object.is_list() || object.is_tuple() || object.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (object.is_string()) {
      const std::u32string chars = to_u32(object.str());
      const auto n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return missing();
      std::string c;
      append_utf8(c, chars[static_cast<size_t>(i)]);
      return object.is_markup() ? Value::markup(std::move(c)) : Value::string(std::move(c));
    }
    const auto& items = object.items();
    const auto n = static_cast<int64_t>(items.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return missing();
    return items[static_cast<size_t>(i)];
  }
  return missing();
}

}  // namespace nnterp::chat::jinja_detail
