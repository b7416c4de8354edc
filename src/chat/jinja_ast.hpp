// The syntax tree the parser builds and the evaluator walks.  Nodes mirror jinja2's
// (jinja2/nodes.py) closely enough that the evaluator can follow jinja2's compiler.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.hpp"

namespace nnterp::chat::jinja_detail {

// ---- expressions ------------------------------------------------------------------------

enum class ExprKind : uint8_t {
  kConst,
  kName,
  kList,
  kTuple,
  kDict,
  kGetattr,
  kGetitem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kNot,
  kNeg,
  kPos,
  kBinary,
  kAnd,
  kOr,
  kConcat,
  kCompare,
  kCondExpr,
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp : uint8_t { kEq, kNe, kLt, kLtEq, kGt, kGtEq, kIn, kNotIn };

struct Expr {
  Expr(ExprKind k, size_t off) : kind(k), offset(off) {}
  virtual ~Expr() = default;
  ExprKind kind;
  size_t offset;   // position in the normalized source, for error messages
  int height = 1;  // 1 + the height of the tallest child (bounded by the parser)
};
using ExprPtr = std::unique_ptr<Expr>;

struct ConstExpr : Expr {
  ConstExpr(size_t off, Value v) : Expr(ExprKind::kConst, off), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(size_t off, std::string n) : Expr(ExprKind::kName, off), name(std::move(n)) {}
  std::string name;
};

// A list or tuple literal.
struct SequenceExpr : Expr {
  SequenceExpr(ExprKind k, size_t off) : Expr(k, off) {}
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  explicit DictExpr(size_t off) : Expr(ExprKind::kDict, off) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetattrExpr : Expr {
  GetattrExpr(size_t off, ExprPtr obj, std::string a)
      : Expr(ExprKind::kGetattr, off), object(std::move(obj)), attr(std::move(a)) {}
  ExprPtr object;
  std::string attr;
};

struct GetitemExpr : Expr {
  GetitemExpr(size_t off, ExprPtr obj, ExprPtr k) : Expr(ExprKind::kGetitem, off), object(std::move(obj)), key(std::move(k)) {}
  ExprPtr object;
  ExprPtr key;  // may be a SliceExpr
};

struct SliceExpr : Expr {
  explicit SliceExpr(size_t off) : Expr(ExprKind::kSlice, off) {}
  ExprPtr start, stop, step;  // each may be null
};

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct CallExpr : Expr {
  CallExpr(size_t off, ExprPtr c) : Expr(ExprKind::kCall, off), callee(std::move(c)) {}
  ExprPtr callee;
  Arguments args;
};

// `operand|name(args)`; operand is null for the filter of a {% filter %} or {% set %} block,
// which applies to the rendered body.
struct FilterExpr : Expr {
  FilterExpr(size_t off, ExprPtr op, std::string n) : Expr(ExprKind::kFilter, off), operand(std::move(op)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  Arguments args;
};

struct TestExpr : Expr {
  TestExpr(size_t off, ExprPtr op, std::string n) : Expr(ExprKind::kTest, off), operand(std::move(op)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  Arguments args;
};

// not / unary minus / unary plus.
struct UnaryExpr : Expr {
  UnaryExpr(ExprKind k, size_t off, ExprPtr op) : Expr(k, off), operand(std::move(op)) {}
  ExprPtr operand;
};

// Arithmetic (kBinary with `op`) and the short-circuit kAnd / kOr.
struct BinaryExpr : Expr {
  BinaryExpr(ExprKind k, size_t off, BinaryOp o, ExprPtr l, ExprPtr r)
      : Expr(k, off), op(o), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left, right;
};

// a ~ b ~ c
struct ConcatExpr : Expr {
  explicit ConcatExpr(size_t off) : Expr(ExprKind::kConcat, off) {}
  std::vector<ExprPtr> items;
};

// a < b <= c: chained as Python chains them.
struct CompareExpr : Expr {
  CompareExpr(size_t off, ExprPtr f) : Expr(ExprKind::kCompare, off), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

// `then_value if test else else_value`; else_value may be null (then: undefined).
struct CondExpr : Expr {
  CondExpr(size_t off, ExprPtr t, ExprPtr a, ExprPtr b)
      : Expr(ExprKind::kCondExpr, off), test(std::move(t)), then_value(std::move(a)), else_value(std::move(b)) {}
  ExprPtr test, then_value, else_value;
};

// Calls f on each direct child of an expression.
template <class F>
void for_each_child(const Expr& e, F&& f) {
  const auto visit = [&](const ExprPtr& p) {
    if (p) f(*p);
  };
  const auto visit_args = [&](const Arguments& a) {
    for (const auto& p : a.positional) visit(p);
    for (const auto& kw : a.keyword) visit(kw.second);
    visit(a.star_args);
    visit(a.star_kwargs);
  };
  switch (e.kind) {
    case ExprKind::kConst:
    case ExprKind::kName:
      break;
    case ExprKind::kList:
    case ExprKind::kTuple:
      for (const auto& p : static_cast<const SequenceExpr&>(e).items) visit(p);
      break;
    case ExprKind::kDict:
      for (const auto& [k, v] : static_cast<const DictExpr&>(e).items) {
        visit(k);
        visit(v);
      }
      break;
    case ExprKind::kGetattr:
      visit(static_cast<const GetattrExpr&>(e).object);
      break;
    case ExprKind::kGetitem:
      visit(static_cast<const GetitemExpr&>(e).object);
      visit(static_cast<const GetitemExpr&>(e).key);
      break;
    case ExprKind::kSlice: {
      const auto& s = static_cast<const SliceExpr&>(e);
      visit(s.start);
      visit(s.stop);
      visit(s.step);
      break;
    }
    case ExprKind::kCall:
      visit(static_cast<const CallExpr&>(e).callee);
      visit_args(static_cast<const CallExpr&>(e).args);
      break;
    case ExprKind::kFilter:
      visit(static_cast<const FilterExpr&>(e).operand);
      visit_args(static_cast<const FilterExpr&>(e).args);
      break;
    case ExprKind::kTest:
      visit(static_cast<const TestExpr&>(e).operand);
      visit_args(static_cast<const TestExpr&>(e).args);
      break;
    case ExprKind::kNot:
    case ExprKind::kNeg:
    case ExprKind::kPos:
      visit(static_cast<const UnaryExpr&>(e).operand);
      break;
    case ExprKind::kBinary:
    case ExprKind::kAnd:
    case ExprKind::kOr:
      visit(static_cast<const BinaryExpr&>(e).left);
      visit(static_cast<const BinaryExpr&>(e).right);
      break;
    case ExprKind::kConcat:
      for (const auto& p : static_cast<const ConcatExpr&>(e).items) visit(p);
      break;
    case ExprKind::kCompare:
      visit(static_cast<const CompareExpr&>(e).first);
      for (const auto& op : static_cast<const CompareExpr&>(e).rest) visit(op.second);
      break;
    case ExprKind::kCondExpr: {
      const auto& c = static_cast<const CondExpr&>(e);
      visit(c.test);
      visit(c.then_value);
      visit(c.else_value);
      break;
    }
  }
}

// ---- statements -------------------------------------------------------------------------

// What jinja2's compiler decides about a frame (a scope: the template, a loop body, a macro,
// a block) before running it: the names assigned in the frame that start out undefined there.
// Reading such a name before its assignment, even from a nested loop or macro, gives undefined
// rather than the value of an outer scope or of the context (see jinja_frames.cpp).
struct FrameInfo {
  std::vector<std::string> undefined_at_start;
  bool starts_undefined(const std::string& name) const {
    for (const auto& n : undefined_at_start) {
      if (n == name) return true;
    }
    return false;
  }
};

enum class StmtKind : uint8_t {
  kOutput,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kScope,
};

struct Stmt {
  Stmt(StmtKind k, size_t off) : kind(k), offset(off) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  size_t offset;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// What an assignment or a for loop binds: a name, a tuple to unpack, or `namespace.attr`.
struct Target {
  enum class Kind { kName, kTuple, kNamespaceAttr };
  Kind kind = Kind::kName;
  size_t offset = 0;
  std::string name;           // kName; kNamespaceAttr: the namespace variable
  std::string attr;           // kNamespaceAttr
  std::vector<Target> items;  // kTuple
};

// Template data and {{ expressions }}, in order.
struct OutputStmt : Stmt {
  explicit OutputStmt(size_t off) : Stmt(StmtKind::kOutput, off) {}
  struct Part {
    std::string text;  // used when expr is null
    ExprPtr expr;
  };
  std::vector<Part> parts;
};

struct IfStmt : Stmt {
  explicit IfStmt(size_t off) : Stmt(StmtKind::kIf, off) {}
  struct Branch {
    ExprPtr test;
    Body body;
  };
  std::vector<Branch> branches;  // if, elif, elif, ...
  Body else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(size_t off) : Stmt(StmtKind::kFor, off) {}
  Target target;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  bool recursive = false;
  Body body;
  Body else_body;
  FrameInfo body_frame;
  FrameInfo else_frame;
};

struct SetStmt : Stmt {
  explicit SetStmt(size_t off) : Stmt(StmtKind::kSet, off) {}
  Target target;
  ExprPtr value;
};

// {% set x | filter %}body{% endset %}
struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(size_t off) : Stmt(StmtKind::kSetBlock, off) {}
  Target target;
  ExprPtr filter;  // may be null
  Body body;
  FrameInfo frame;
};

// A macro, or the body of a {% call %} block (the `caller` macro).
struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  // jinja2 accepts extra positional / keyword arguments and a caller only when the body
  // mentions `varargs`, `kwargs` or `caller`.
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
  FrameInfo frame;
};

struct MacroStmt : Stmt {
  explicit MacroStmt(size_t off) : Stmt(StmtKind::kMacro, off) {}
  MacroDef def;
};

struct CallBlockStmt : Stmt {
  explicit CallBlockStmt(size_t off) : Stmt(StmtKind::kCallBlock, off) {}
  ExprPtr call;  // a CallExpr
  MacroDef caller;
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(size_t off) : Stmt(StmtKind::kFilterBlock, off) {}
  ExprPtr filter;  // a chain of FilterExpr whose innermost operand is null
  Body body;
  FrameInfo frame;
};

struct WithStmt : Stmt {
  explicit WithStmt(size_t off) : Stmt(StmtKind::kWith, off) {}
  std::vector<std::pair<Target, ExprPtr>> assignments;
  Body body;
  FrameInfo frame;
};

// A body rendered in an inner scope: transformers' {% generation %} block.
struct ScopeStmt : Stmt {
  explicit ScopeStmt(size_t off) : Stmt(StmtKind::kScope, off) {}
  Body body;
  FrameInfo frame;
};

// A parsed template.
struct Program {
  std::string name;
  std::string source;  // normalized; error locations index into it
  Body body;
  FrameInfo frame;
};

}  // namespace nnterp::chat::jinja_detail
