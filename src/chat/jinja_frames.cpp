// Frame analysis: which names start out undefined in each scope.  This mirrors jinja2's
// idtracking.py (Symbols, FrameSymbolVisitor, RootVisitor), which decides how each frame of the
// compiled Python code initializes the variables it assigns:
//   * a name loaded before it is stored, or found in an enclosing frame, starts with the outer
//     value (an alias or a context lookup), which is what a plain scope chain gives;
//   * a name stored without being loaded first, and unknown to the enclosing frames, starts as
//     `missing`: until the frame assigns it, reads (from nested loops and macros too) give
//     undefined instead of the context's value.
// A name assigned in only some branches of an {% if %} keeps the outer value (branch_update).
#include <map>
#include <set>

#include "chat/jinja_parser.hpp"

namespace nnterp::chat::jinja_detail {

namespace {

enum class Load { kParameter, kResolve, kAlias, kUndefined };

class Symbols {
 public:
  explicit Symbols(const Symbols* parent) : parent_(parent) {}

  bool find_ref(const std::string& name) const {
    for (const Symbols* s = this; s; s = s->parent_) {
      if (s->refs_.count(name)) return true;
    }
    return false;
  }

  void load(const std::string& name) {
    if (!find_ref(name)) refs_[name] = Load::kResolve;
  }

  void store(const std::string& name) {
    stores_.insert(name);
    if (refs_.count(name)) return;
    refs_[name] = parent_ && parent_->find_ref(name) ? Load::kAlias : Load::kUndefined;
  }

  void declare_parameter(const std::string& name) {
    stores_.insert(name);
    refs_[name] = Load::kParameter;
  }

  // After an {% if %}: merge what the branches (if, elifs, else) did; a name stored in only
  // some of them keeps its outer value.
  void branch_update(const std::vector<Symbols>& branches) {
    std::map<std::string, size_t> counts;
    for (const auto& branch : branches) {
      for (const auto& name : branch.stores_) {
        if (!stores_.count(name)) ++counts[name];
      }
    }
    for (const auto& branch : branches) {
      for (const auto& [name, load] : branch.refs_) refs_[name] = load;
      stores_.insert(branch.stores_.begin(), branch.stores_.end());
    }
    for (const auto& [name, count] : counts) {
      if (count == branches.size()) continue;
      refs_[name] = parent_ && parent_->find_ref(name) ? Load::kAlias : Load::kResolve;
    }
  }

  void write_to(FrameInfo& frame) const {
    frame.undefined_at_start.clear();
    for (const auto& [name, load] : refs_) {
      if (load == Load::kUndefined) frame.undefined_at_start.push_back(name);
    }
  }

 private:
  const Symbols* parent_;
  std::map<std::string, Load> refs_;
  std::set<std::string> stores_;
};

// Records the loads and stores of one frame's own statements (FrameSymbolVisitor): it does not
// enter the bodies of loops, macros and blocks, which are frames of their own.
class FrameVisitor {
 public:
  explicit FrameVisitor(Symbols& symbols) : symbols_(&symbols) {}

  void visit_expr(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::kName) symbols_->load(static_cast<const NameExpr*>(e)->name);
    for_each_child(*e, [&](const Expr& child) { visit_expr(&child); });
  }

  void visit_target(const Target& target) {
    switch (target.kind) {
      case Target::Kind::kName:
        symbols_->store(target.name);
        break;
      case Target::Kind::kNamespaceAttr:
        symbols_->load(target.name);
        break;
      case Target::Kind::kTuple:
        for (const auto& item : target.items) visit_target(item);
        break;
    }
  }

  void visit_body(const Body& body) {
    for (const auto& stmt : body) visit(*stmt);
  }

  void visit(const Stmt& stmt) {
    switch (stmt.kind) {
      case StmtKind::kOutput:
        for (const auto& part : static_cast<const OutputStmt&>(stmt).parts) visit_expr(part.expr.get());
        break;
      case StmtKind::kIf:
        visit_if(static_cast<const IfStmt&>(stmt));
        break;
      case StmtKind::kFor:
        visit_expr(static_cast<const ForStmt&>(stmt).iterable.get());
        break;
      case StmtKind::kSet: {
        const auto& s = static_cast<const SetStmt&>(stmt);
        visit_expr(s.value.get());  // the value first: {% set x = x + 1 %} loads x
        visit_target(s.target);
        break;
      }
      case StmtKind::kSetBlock:
        visit_target(static_cast<const SetBlockStmt&>(stmt).target);
        break;
      case StmtKind::kMacro:
        symbols_->store(static_cast<const MacroStmt&>(stmt).def.name);
        break;
      case StmtKind::kCallBlock:
        visit_expr(static_cast<const CallBlockStmt&>(stmt).call.get());
        break;
      case StmtKind::kFilterBlock:
        visit_expr(static_cast<const FilterBlockStmt&>(stmt).filter.get());
        break;
      case StmtKind::kWith:
        for (const auto& a : static_cast<const WithStmt&>(stmt).assignments) visit_expr(a.second.get());
        break;
      case StmtKind::kBreak:
      case StmtKind::kContinue:
      case StmtKind::kScope:
        break;
    }
  }

 private:
  Symbols* symbols_;

  // jinja2 models `if a / elif b / else` as If(a, body, elif_=[If(b, ...)], else_): three
  // branches (body, all elifs together, else), each visited on a copy of the symbols.
  void visit_if(const IfStmt& stmt) {
    visit_branches(stmt.branches, 0, &stmt.else_body);
  }

  void visit_branches(const std::vector<IfStmt::Branch>& branches, size_t first, const Body* else_body) {
    visit_expr(branches[first].test.get());
    Symbols* original = symbols_;
    std::vector<Symbols> results;
    const auto branch = [&](auto&& visit_fn) {
      Symbols copy = *original;
      symbols_ = &copy;
      visit_fn();
      symbols_ = original;
      results.push_back(std::move(copy));
    };
    branch([&] { visit_body(branches[first].body); });
    branch([&] {
      if (first == 0) {
        for (size_t i = 1; i < branches.size(); ++i) visit_branches(branches, i, nullptr);
      }
    });
    branch([&] {
      if (else_body) visit_body(*else_body);
    });
    original->branch_update(results);
  }
};

void analyze_frame(const Symbols* parent, FrameInfo& info, const std::vector<std::string>& params,
                   const std::vector<const Expr*>& leading_exprs, const Body& body,
                   const std::vector<const Expr*>& trailing_exprs);

// Analyzes the frames nested in a frame's statements, once the frame's own symbols are complete.
void analyze_children(const Symbols& symbols, const Body& body) {
  for (const auto& stmt_ptr : body) {
    Stmt& stmt = *stmt_ptr;
    switch (stmt.kind) {
      case StmtKind::kIf: {
        auto& s = static_cast<IfStmt&>(stmt);
        for (auto& branch : s.branches) analyze_children(symbols, branch.body);
        analyze_children(symbols, s.else_body);
        break;
      }
      case StmtKind::kFor: {
        auto& s = static_cast<ForStmt&>(stmt);
        std::vector<std::string> targets;
        std::vector<const Target*> pending = {&s.target};
        while (!pending.empty()) {
          const Target* t = pending.back();
          pending.pop_back();
          if (t->kind == Target::Kind::kName) targets.push_back(t->name);
          for (const auto& item : t->items) pending.push_back(&item);
        }
        targets.push_back("loop");
        analyze_frame(&symbols, s.body_frame, targets, {}, s.body, {});
        analyze_frame(&symbols, s.else_frame, {}, {}, s.else_body, {});
        break;
      }
      case StmtKind::kSetBlock: {
        auto& s = static_cast<SetBlockStmt&>(stmt);
        analyze_frame(&symbols, s.frame, {}, {}, s.body, {});
        break;
      }
      case StmtKind::kMacro:
      case StmtKind::kCallBlock: {
        MacroDef& def = stmt.kind == StmtKind::kMacro ? static_cast<MacroStmt&>(stmt).def : static_cast<CallBlockStmt&>(stmt).caller;
        std::vector<const Expr*> defaults;
        for (const auto& d : def.defaults) defaults.push_back(d.get());
        std::vector<std::string> params = def.params;
        for (const char* special : {"varargs", "kwargs", "caller"}) params.push_back(special);
        analyze_frame(&symbols, def.frame, params, defaults, def.body, {});
        break;
      }
      case StmtKind::kFilterBlock: {
        auto& s = static_cast<FilterBlockStmt&>(stmt);
        analyze_frame(&symbols, s.frame, {}, {}, s.body, {s.filter.get()});
        break;
      }
      case StmtKind::kWith: {
        auto& s = static_cast<WithStmt&>(stmt);
        std::vector<std::string> targets;
        for (const auto& a : s.assignments) {
          std::vector<const Target*> pending = {&a.first};
          while (!pending.empty()) {
            const Target* t = pending.back();
            pending.pop_back();
            if (t->kind == Target::Kind::kName) targets.push_back(t->name);
            for (const auto& item : t->items) pending.push_back(&item);
          }
        }
        analyze_frame(&symbols, s.frame, targets, {}, s.body, {});
        break;
      }
      case StmtKind::kScope: {
        auto& s = static_cast<ScopeStmt&>(stmt);
        analyze_frame(&symbols, s.frame, {}, {}, s.body, {});
        break;
      }
      default:
        break;
    }
  }
}

void analyze_frame(const Symbols* parent, FrameInfo& info, const std::vector<std::string>& params,
                   const std::vector<const Expr*>& leading_exprs, const Body& body,
                   const std::vector<const Expr*>& trailing_exprs) {
  Symbols symbols(parent);
  for (const auto& p : params) symbols.declare_parameter(p);
  FrameVisitor visitor(symbols);
  for (const Expr* e : leading_exprs) visitor.visit_expr(e);
  visitor.visit_body(body);
  for (const Expr* e : trailing_exprs) visitor.visit_expr(e);
  symbols.write_to(info);
  analyze_children(symbols, body);
}

}  // namespace

void analyze_frames(Program& program) { analyze_frame(nullptr, program.frame, {}, {}, program.body, {}); }

}  // namespace nnterp::chat::jinja_detail
