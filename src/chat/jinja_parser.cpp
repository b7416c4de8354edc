#include "chat/jinja_parser.hpp"

#include <algorithm>
#include <initializer_list>
#include <set>

#include "chat/jinja_builtins.hpp"
#include "chat/jinja_lexer.hpp"

namespace nnterp::chat::jinja_detail {

namespace {

// Nesting the parser recurses on (parentheses, `not not`, blocks in blocks).  jinja2 itself
// runs out of Python stack at roughly this depth.
constexpr int kMaxParseDepth = 100;
// Height of an expression tree; left-associative chains (a + b + c ...) grow it without
// recursing in the parser, but the evaluator recurses on it.
constexpr int kMaxExprHeight = 256;

// Statement tags jinja2 knows but this interpreter does not implement.
bool is_unsupported_tag(const std::string& name) {
  static const std::set<std::string> kTags = {"extends", "include", "import", "from", "block", "autoescape", "do"};
  return kTags.count(name) != 0;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != Tok::kEof) fail(cur().offset, "unexpected " + describe(cur()));
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // for loops enclosing the current statement within one macro body
  // For error messages: the end tags each open block waits for, innermost last.
  std::vector<std::vector<std::string>> end_token_stack_;
  std::vector<std::string> tag_stack_;

  // Counts parser recursion and stops it before the stack does.
  class DepthGuard {
   public:
    DepthGuard(Parser& p, size_t offset) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth) {
        throw ParseError{TemplateError::Kind::kLimit, offset, "template nesting is too deep (limit " + std::to_string(kMaxParseDepth) + ")"};
      }
    }
    ~DepthGuard() { --p_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& p_;
  };

  // ---- token stream ----

  const Token& cur() const { return t_[i_]; }
  const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool at(Tok type) const { return cur().type == type; }
  bool at_name(std::string_view name) const { return cur().type == Tok::kName && cur().text == name; }
  bool skip_if(Tok type) {
    if (!at(type)) return false;
    next();
    return true;
  }
  bool skip_if_name(std::string_view name) {
    if (!at_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(size_t offset, std::string message) const {
    throw ParseError{TemplateError::Kind::kSyntax, offset, std::move(message)};
  }

  // `end_tags`: those of the block whose body just ran into the end (subparse has already popped
  // them off end_token_stack_), as jinja2's fail_eof(end_tokens) passes them.
  [[noreturn]] void fail_unexpected_end(size_t offset, const std::vector<std::string>* end_tags = nullptr) const {
    std::string message = "unexpected end of template";
    if (!tag_stack_.empty()) {
      message += "; the innermost block that needs to be closed is '" + tag_stack_.back() + "'";
    }
    if (end_tags && !end_tags->empty()) message += "; expected " + describe_end_tokens(*end_tags);
    else if (!end_token_stack_.empty()) message += "; expected " + describe_end_tokens(end_token_stack_.back());
    fail(offset, message);
  }

  static std::string describe_end_tokens(const std::vector<std::string>& names) {
    std::string out;
    for (size_t k = 0; k < names.size(); ++k) {
      if (k) out += k + 1 == names.size() ? " or " : ", ";
      out += "'" + names[k] + "'";
    }
    return out;
  }

  const Token& expect(Tok type) {
    if (!at(type)) {
      if (at(Tok::kEof)) fail_unexpected_end(cur().offset);
      fail(cur().offset, "expected " + describe(type) + ", got " + describe(cur()));
    }
    return next();
  }

  const Token& expect_name(std::string_view name) {
    if (!at_name(name)) {
      if (at(Tok::kEof)) fail_unexpected_end(cur().offset);
      fail(cur().offset, "expected '" + std::string(name) + "', got " + describe(cur()));
    }
    return next();
  }

  // ---- template structure ----

  // Template data, {{ }} and statements up to one of `end_tags` (left as the current token).
  Body subparse(const std::vector<std::string>& end_tags) {
    Body body;
    std::unique_ptr<OutputStmt> output;
    const auto flush = [&] {
      if (output) body.push_back(std::move(output));
      output.reset();
    };
    const auto output_part = [&](size_t offset) -> OutputStmt::Part& {
      if (!output) output = std::make_unique<OutputStmt>(offset);
      output->parts.emplace_back();
      return output->parts.back();
    };
    if (!end_tags.empty()) end_token_stack_.push_back(end_tags);
    while (!at(Tok::kEof)) {
      const Token& token = cur();
      if (token.type == Tok::kData) {
        output_part(token.offset).text = token.text;
        next();
      } else if (token.type == Tok::kVariableBegin) {
        next();
        output_part(token.offset).expr = parse_tuple(/*simplified=*/false, /*with_condexpr=*/true, {}, false);
        expect(Tok::kVariableEnd);
      } else if (token.type == Tok::kBlockBegin) {
        flush();
        next();
        if (!end_tags.empty() && at(Tok::kName) &&
            std::find(end_tags.begin(), end_tags.end(), cur().text) != end_tags.end()) {
          end_token_stack_.pop_back();
          return body;
        }
        body.push_back(parse_statement());
        expect(Tok::kBlockEnd);
      } else {
        fail(token.offset, "unexpected " + describe(token));
      }
    }
    flush();
    if (!end_tags.empty()) end_token_stack_.pop_back();
    return body;
  }

  // `:`? `%}` body {% end_tag %}; leaves the end tag's name current unless drop_needle.
  Body parse_statements(const std::vector<std::string>& end_tags, bool drop_needle) {
    skip_if(Tok::kColon);
    expect(Tok::kBlockEnd);
    Body body = subparse(end_tags);
    if (at(Tok::kEof)) fail_unexpected_end(cur().offset, &end_tags);
    if (drop_needle) next();
    return body;
  }

  // A body where break/continue do not reach an enclosing loop (macros, call blocks).
  Body parse_function_body(const std::vector<std::string>& end_tags) {
    const int saved = loop_depth_;
    loop_depth_ = 0;
    Body body = parse_statements(end_tags, true);
    loop_depth_ = saved;
    return body;
  }

  StmtPtr parse_statement() {
    const Token& token = cur();
    DepthGuard guard(*this, token.offset);
    if (token.type != Tok::kName) fail(token.offset, "tag name expected");
    const std::string tag = token.text;
    tag_stack_.push_back(tag);
    StmtPtr stmt = parse_statement_named(tag, token.offset);
    tag_stack_.pop_back();
    return stmt;
  }

  StmtPtr parse_statement_named(const std::string& tag, size_t offset) {
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") return parse_print();
    if (tag == "generation") return parse_generation();
    if (tag == "break" || tag == "continue") return parse_loop_control(tag == "break");
    if (is_unsupported_tag(tag)) {
      throw ParseError{TemplateError::Kind::kUnsupported, offset, "the '" + tag + "' tag is not supported"};
    }
    tag_stack_.pop_back();
    std::string message = "encountered unknown tag '" + tag + "'";
    if (!end_token_stack_.empty()) {
      message += "; Jinja was looking for " + describe_end_tokens(end_token_stack_.back());
      if (!tag_stack_.empty()) message += " (the innermost block that needs to be closed is '" + tag_stack_.back() + "')";
    }
    fail(offset, message);
  }

  StmtPtr parse_for() {
    auto stmt = std::make_unique<ForStmt>(next().offset);
    stmt->target = parse_assign_target(/*with_tuple=*/true, /*name_only=*/false, {"in"}, /*with_namespace=*/false);
    reject_loop_target(stmt->target);
    expect_name("in");
    stmt->iterable = parse_tuple(false, /*with_condexpr=*/false, {"recursive"}, false);
    if (skip_if_name("if")) stmt->filter = parse_expression(true);
    stmt->recursive = skip_if_name("recursive");
    ++loop_depth_;
    stmt->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text != "endfor") stmt->else_body = parse_statements({"endfor"}, true);
    return stmt;
  }

  void reject_loop_target(const Target& target) const {
    if (target.kind == Target::Kind::kName && target.name == "loop") {
      fail(target.offset, "Can't assign to special loop variable in for-loop target");
    }
    for (const auto& item : target.items) reject_loop_target(item);
  }

  StmtPtr parse_if() {
    auto stmt = std::make_unique<IfStmt>(next().offset);
    while (true) {
      IfStmt::Branch branch;
      branch.test = parse_tuple(false, /*with_condexpr=*/false, {}, false);
      branch.body = parse_statements({"elif", "else", "endif"}, false);
      stmt->branches.push_back(std::move(branch));
      const Token& token = next();
      if (token.text == "elif") continue;
      if (token.text == "else") stmt->else_body = parse_statements({"endif"}, true);
      break;
    }
    return stmt;
  }

  StmtPtr parse_set() {
    const size_t offset = next().offset;
    Target target = parse_assign_target(true, false, {}, /*with_namespace=*/true);
    if (skip_if(Tok::kAssign)) {
      auto stmt = std::make_unique<SetStmt>(offset);
      stmt->target = std::move(target);
      stmt->value = parse_tuple(false, true, {}, false);
      return stmt;
    }
    auto stmt = std::make_unique<SetBlockStmt>(offset);
    stmt->target = std::move(target);
    stmt->filter = parse_filter(nullptr, /*start_inline=*/false);
    stmt->body = parse_statements({"endset"}, true);
    return stmt;
  }

  StmtPtr parse_macro() {
    auto stmt = std::make_unique<MacroStmt>(next().offset);
    stmt->def.name = expect(Tok::kName).text;
    parse_signature(stmt->def);
    stmt->def.body = parse_function_body({"endmacro"});
    note_special_names(stmt->def);
    return stmt;
  }

  StmtPtr parse_call_block() {
    auto stmt = std::make_unique<CallBlockStmt>(next().offset);
    stmt->caller.name = "caller";
    if (at(Tok::kLParen)) parse_signature(stmt->caller);
    const size_t call_offset = cur().offset;
    stmt->call = parse_expression(true);
    if (stmt->call->kind != ExprKind::kCall) fail(call_offset, "expected call");
    stmt->caller.body = parse_function_body({"endcall"});
    note_special_names(stmt->caller);
    return stmt;
  }

  StmtPtr parse_filter_block() {
    auto stmt = std::make_unique<FilterBlockStmt>(next().offset);
    stmt->filter = parse_filter(nullptr, /*start_inline=*/true);
    stmt->body = parse_statements({"endfilter"}, true);
    return stmt;
  }

  StmtPtr parse_with() {
    auto stmt = std::make_unique<WithStmt>(next().offset);
    while (!at(Tok::kBlockEnd)) {
      if (!stmt->assignments.empty()) expect(Tok::kComma);
      Target target = parse_assign_target(true, false, {}, false);
      expect(Tok::kAssign);
      stmt->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    stmt->body = parse_statements({"endwith"}, true);
    return stmt;
  }

  StmtPtr parse_print() {
    auto stmt = std::make_unique<OutputStmt>(next().offset);
    while (!at(Tok::kBlockEnd)) {
      if (!stmt->parts.empty()) expect(Tok::kComma);
      stmt->parts.emplace_back();
      stmt->parts.back().expr = parse_expression(true);
    }
    return stmt;
  }

  // transformers' AssistantTracker: {% generation %}body{% endgeneration %} renders the body
  // through a caller macro, so it gets its own scope and break/continue stay inside.
  StmtPtr parse_generation() {
    auto stmt = std::make_unique<ScopeStmt>(next().offset);
    stmt->body = parse_function_body({"endgeneration"});
    return stmt;
  }

  StmtPtr parse_loop_control(bool is_break) {
    const size_t offset = next().offset;
    // jinja2 compiles these to Python break/continue, which fail to compile outside a loop.
    if (loop_depth_ == 0) fail(offset, std::string("'") + (is_break ? "break" : "continue") + "' outside loop");
    return std::make_unique<Stmt>(is_break ? StmtKind::kBreak : StmtKind::kContinue, offset);
  }

  void parse_signature(MacroDef& def) {
    expect(Tok::kLParen);
    while (!at(Tok::kRParen)) {
      if (!def.params.empty()) expect(Tok::kComma);
      def.params.push_back(expect(Tok::kName).text);
      if (skip_if(Tok::kAssign)) {
        def.defaults.push_back(parse_expression(true));
      } else if (!def.defaults.empty()) {
        fail(cur().offset, "non-default argument follows default argument");
      }
    }
    expect(Tok::kRParen);
  }

  // ---- assignment targets ----

  Target parse_assign_target(bool with_tuple, bool name_only, const std::vector<std::string>& extra_end,
                             bool with_namespace) {
    if (with_namespace && at(Tok::kName) && peek().type == Tok::kDot) {
      Target target;
      target.kind = Target::Kind::kNamespaceAttr;
      target.offset = cur().offset;
      target.name = next().text;
      next();  // the dot
      target.attr = expect(Tok::kName).text;
      return target;
    }
    if (name_only) {
      Target target;
      target.offset = cur().offset;
      target.name = expect(Tok::kName).text;
      return target;
    }
    ExprPtr expr = with_tuple ? parse_tuple(/*simplified=*/true, true, extra_end, false) : parse_primary();
    return to_target(*expr);
  }

  Target to_target(const Expr& expr) const {
    Target target;
    target.offset = expr.offset;
    if (expr.kind == ExprKind::kName) {
      target.name = static_cast<const NameExpr&>(expr).name;
      return target;
    }
    if (expr.kind == ExprKind::kTuple) {
      target.kind = Target::Kind::kTuple;
      for (const auto& item : static_cast<const SequenceExpr&>(expr).items) target.items.push_back(to_target(*item));
      return target;
    }
    fail(expr.offset, "can't assign to '" + node_name(expr) + "'");
  }

  static std::string node_name(const Expr& expr) {
    switch (expr.kind) {
      case ExprKind::kConst:
        return "const";
      case ExprKind::kList:
        return "list";
      case ExprKind::kDict:
        return "dict";
      case ExprKind::kGetattr:
        return "getattr";
      case ExprKind::kGetitem:
        return "getitem";
      case ExprKind::kCall:
        return "call";
      default:
        return "expression";
    }
  }

  // ---- expressions ----

  // Sets the node's height from its children; rejects trees taller than the evaluator allows.
  template <class T>
  std::unique_ptr<T> seal(std::unique_ptr<T> node) {
    int tallest = 0;
    for_each_child(*node, [&](const Expr& child) { tallest = std::max(tallest, child.height); });
    node->height = tallest + 1;
    if (node->height > kMaxExprHeight) {
      throw ParseError{TemplateError::Kind::kLimit, node->offset,
                       "expression is nested too deeply (limit " + std::to_string(kMaxExprHeight) + ")"};
    }
    return node;
  }

  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    if (at(Tok::kVariableEnd) || at(Tok::kBlockEnd) || at(Tok::kRParen)) return true;
    if (!at(Tok::kName)) return false;
    return std::find(extra_end.begin(), extra_end.end(), cur().text) != extra_end.end();
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parentheses) {
    const size_t offset = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect(Tok::kComma);
      if (is_tuple_end(extra_end)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (at(Tok::kComma)) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) {
        if (at(Tok::kEof)) fail_unexpected_end(cur().offset);
        fail(cur().offset, "expected an expression, got " + describe(cur()));
      }
    }
    auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, offset);
    tuple->items = std::move(items);
    return seal(std::move(tuple));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this, cur().offset);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    size_t offset = cur().offset;
    ExprPtr expr = parse_or();
    while (skip_if_name("if")) {
      ExprPtr test = parse_or();
      ExprPtr otherwise;
      if (skip_if_name("else")) {
        DepthGuard guard(*this, cur().offset);
        otherwise = parse_condexpr();
      }
      expr = seal(std::make_unique<CondExpr>(offset, std::move(test), std::move(expr), std::move(otherwise)));
      offset = cur().offset;
    }
    return expr;
  }

  ExprPtr parse_or() {
    const size_t offset = cur().offset;
    ExprPtr left = parse_and();
    while (skip_if_name("or")) {
      left = seal(std::make_unique<BinaryExpr>(ExprKind::kOr, offset, BinaryOp::kAdd, std::move(left), parse_and()));
    }
    return left;
  }

  ExprPtr parse_and() {
    const size_t offset = cur().offset;
    ExprPtr left = parse_not();
    while (skip_if_name("and")) {
      left = seal(std::make_unique<BinaryExpr>(ExprKind::kAnd, offset, BinaryOp::kAdd, std::move(left), parse_not()));
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      const size_t offset = next().offset;
      DepthGuard guard(*this, offset);
      return seal(std::make_unique<UnaryExpr>(ExprKind::kNot, offset, parse_not()));
    }
    return parse_compare();
  }

  std::optional<CompareOp> compare_operator() const {
    switch (cur().type) {
      case Tok::kEq:
        return CompareOp::kEq;
      case Tok::kNe:
        return CompareOp::kNe;
      case Tok::kLt:
        return CompareOp::kLt;
      case Tok::kLtEq:
        return CompareOp::kLtEq;
      case Tok::kGt:
        return CompareOp::kGt;
      case Tok::kGtEq:
        return CompareOp::kGtEq;
      default:
        return std::nullopt;
    }
  }

  ExprPtr parse_compare() {
    const size_t offset = cur().offset;
    ExprPtr first = parse_math1();
    std::vector<std::pair<CompareOp, ExprPtr>> rest;
    while (true) {
      if (const auto op = compare_operator()) {
        next();
        rest.emplace_back(*op, parse_math1());
      } else if (skip_if_name("in")) {
        rest.emplace_back(CompareOp::kIn, parse_math1());
      } else if (at_name("not") && peek().type == Tok::kName && peek().text == "in") {
        next();
        next();
        rest.emplace_back(CompareOp::kNotIn, parse_math1());
      } else {
        break;
      }
    }
    if (rest.empty()) return first;
    auto compare = std::make_unique<CompareExpr>(offset, std::move(first));
    compare->rest = std::move(rest);
    return seal(std::move(compare));
  }

  ExprPtr binary(size_t offset, BinaryOp op, ExprPtr left, ExprPtr right) {
    return seal(std::make_unique<BinaryExpr>(ExprKind::kBinary, offset, op, std::move(left), std::move(right)));
  }

  ExprPtr parse_math1() {
    const size_t offset = cur().offset;
    ExprPtr left = parse_concat();
    while (at(Tok::kAdd) || at(Tok::kSub)) {
      const BinaryOp op = next().type == Tok::kAdd ? BinaryOp::kAdd : BinaryOp::kSub;
      left = binary(offset, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const size_t offset = cur().offset;
    ExprPtr first = parse_math2();
    if (!at(Tok::kTilde)) return first;
    auto concat = std::make_unique<ConcatExpr>(offset);
    concat->items.push_back(std::move(first));
    while (skip_if(Tok::kTilde)) concat->items.push_back(parse_math2());
    return seal(std::move(concat));
  }

  ExprPtr parse_math2() {
    const size_t offset = cur().offset;
    ExprPtr left = parse_pow();
    while (true) {
      BinaryOp op;
      switch (cur().type) {
        case Tok::kMul:
          op = BinaryOp::kMul;
          break;
        case Tok::kDiv:
          op = BinaryOp::kDiv;
          break;
        case Tok::kFloorDiv:
          op = BinaryOp::kFloorDiv;
          break;
        case Tok::kMod:
          op = BinaryOp::kMod;
          break;
        default:
          return left;
      }
      next();
      left = binary(offset, op, std::move(left), parse_pow());
    }
  }

  ExprPtr parse_pow() {
    const size_t offset = cur().offset;
    ExprPtr left = parse_unary(true);
    while (skip_if(Tok::kPow)) left = binary(offset, BinaryOp::kPow, std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const size_t offset = cur().offset;
    ExprPtr node;
    if (at(Tok::kSub) || at(Tok::kAdd)) {
      const ExprKind kind = next().type == Tok::kSub ? ExprKind::kNeg : ExprKind::kPos;
      DepthGuard guard(*this, offset);
      node = seal(std::make_unique<UnaryExpr>(kind, offset, parse_unary(false)));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& token = cur();
    switch (token.type) {
      case Tok::kName: {
        next();
        const std::string& n = token.text;
        if (n == "true" || n == "True") return std::make_unique<ConstExpr>(token.offset, Value::boolean(true));
        if (n == "false" || n == "False") return std::make_unique<ConstExpr>(token.offset, Value::boolean(false));
        if (n == "none" || n == "None") return std::make_unique<ConstExpr>(token.offset, Value::none());
        return std::make_unique<NameExpr>(token.offset, n);
      }
      case Tok::kString: {
        std::string text = next().text;
        while (at(Tok::kString)) text += next().text;  // adjacent literals concatenate
        return std::make_unique<ConstExpr>(token.offset, Value::string(std::move(text)));
      }
      case Tok::kInteger:
        next();
        return std::make_unique<ConstExpr>(token.offset, Value::integer(token.int_value));
      case Tok::kFloat:
        next();
        return std::make_unique<ConstExpr>(token.offset, Value::number(token.float_value));
      case Tok::kLParen: {
        next();
        DepthGuard guard(*this, token.offset);
        ExprPtr inner = parse_tuple(false, true, {}, /*explicit_parentheses=*/true);
        expect(Tok::kRParen);
        return inner;
      }
      case Tok::kLBracket:
        return parse_list();
      case Tok::kLBrace:
        return parse_dict();
      case Tok::kEof:
        fail_unexpected_end(token.offset);
      default:
        fail(token.offset, "unexpected " + describe(token));
    }
  }

  ExprPtr parse_list() {
    auto list = std::make_unique<SequenceExpr>(ExprKind::kList, expect(Tok::kLBracket).offset);
    while (!at(Tok::kRBracket)) {
      if (!list->items.empty()) expect(Tok::kComma);
      if (at(Tok::kRBracket)) break;
      list->items.push_back(parse_expression(true));
    }
    expect(Tok::kRBracket);
    return seal(std::move(list));
  }

  ExprPtr parse_dict() {
    auto dict = std::make_unique<DictExpr>(expect(Tok::kLBrace).offset);
    while (!at(Tok::kRBrace)) {
      if (!dict->items.empty()) expect(Tok::kComma);
      if (at(Tok::kRBrace)) break;
      ExprPtr key = parse_expression(true);
      expect(Tok::kColon);
      dict->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect(Tok::kRBrace);
    return seal(std::move(dict));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (at(Tok::kDot) || at(Tok::kLBracket)) {
        node = parse_subscript(std::move(node));
      } else if (at(Tok::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at(Tok::kPipe)) {
        node = parse_filter(std::move(node), false);
      } else if (at_name("is")) {
        node = parse_test(std::move(node));
      } else if (at(Tok::kLParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& token = next();
    if (token.type == Tok::kDot) {
      const Token& attr = next();
      if (attr.type == Tok::kName) return seal(std::make_unique<GetattrExpr>(token.offset, std::move(node), attr.text));
      if (attr.type != Tok::kInteger) fail(attr.offset, "expected name or number");
      auto key = std::make_unique<ConstExpr>(attr.offset, Value::integer(attr.int_value));
      return seal(std::make_unique<GetitemExpr>(token.offset, std::move(node), std::move(key)));
    }
    // '['
    DepthGuard guard(*this, token.offset);
    std::vector<ExprPtr> keys;
    while (!at(Tok::kRBracket)) {
      if (!keys.empty()) expect(Tok::kComma);
      keys.push_back(parse_subscribed());
    }
    expect(Tok::kRBracket);
    ExprPtr key;
    if (keys.size() == 1) {
      key = std::move(keys[0]);
    } else {
      auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, token.offset);
      tuple->items = std::move(keys);
      key = seal(std::move(tuple));
    }
    return seal(std::make_unique<GetitemExpr>(token.offset, std::move(node), std::move(key)));
  }

  ExprPtr parse_subscribed() {
    const size_t offset = cur().offset;
    auto slice = std::make_unique<SliceExpr>(offset);
    if (!skip_if(Tok::kColon)) {
      ExprPtr start = parse_expression(true);
      if (!skip_if(Tok::kColon)) return start;
      slice->start = std::move(start);
    }
    if (!at(Tok::kColon) && !at(Tok::kRBracket) && !at(Tok::kComma)) slice->stop = parse_expression(true);
    if (skip_if(Tok::kColon)) {
      if (!at(Tok::kRBracket) && !at(Tok::kComma)) slice->step = parse_expression(true);
    }
    return seal(std::move(slice));
  }

  Arguments parse_call_args() {
    const Token& open = expect(Tok::kLParen);
    DepthGuard guard(*this, open.offset);
    Arguments args;
    const auto ensure = [&](bool ok) {
      if (!ok) fail(open.offset, "invalid syntax for function call expression");
    };
    bool require_comma = false;
    while (!at(Tok::kRParen)) {
      if (require_comma) {
        expect(Tok::kComma);
        if (at(Tok::kRParen)) break;  // trailing comma
      }
      if (skip_if(Tok::kMul)) {
        ensure(!args.star_args && !args.star_kwargs);
        args.star_args = parse_expression(true);
      } else if (skip_if(Tok::kPow)) {
        ensure(!args.star_kwargs);
        args.star_kwargs = parse_expression(true);
      } else if (at(Tok::kName) && peek().type == Tok::kAssign) {
        ensure(!args.star_kwargs);
        std::string key = next().text;
        next();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!args.star_args && !args.star_kwargs && args.keyword.empty());
        args.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect(Tok::kRParen);
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    const size_t offset = cur().offset;
    auto call = std::make_unique<CallExpr>(offset, std::move(callee));
    call->args = parse_call_args();
    return seal(std::move(call));
  }

  // Dotted names (`|a.b`) are how jinja2 spells filters from extensions; none exist here.
  std::string parse_dotted_name() {
    std::string name = expect(Tok::kName).text;
    while (skip_if(Tok::kDot)) name += "." + expect(Tok::kName).text;
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (at(Tok::kPipe) || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const size_t offset = cur().offset;
      std::string name = parse_dotted_name();
      check_builtin(offset, name, filter_status(name), "filter");
      auto filter = std::make_unique<FilterExpr>(offset, std::move(node), std::move(name));
      if (at(Tok::kLParen)) filter->args = parse_call_args();
      node = seal(std::move(filter));
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const size_t is_offset = next().offset;
    const bool negated = skip_if_name("not");
    const size_t offset = cur().offset;
    std::string name = parse_dotted_name();
    check_builtin(offset, name, test_status(name), "test");
    auto test = std::make_unique<TestExpr>(is_offset, std::move(node), std::move(name));
    if (at(Tok::kLParen)) {
      test->args = parse_call_args();
    } else if ((at(Tok::kName) || at(Tok::kString) || at(Tok::kInteger) || at(Tok::kFloat) || at(Tok::kLBracket) ||
                at(Tok::kLBrace)) &&
               !at_name("else") && !at_name("or") && !at_name("and")) {
      // `x is divisibleby 3`: one argument without parentheses.
      if (at_name("is")) fail(cur().offset, "You cannot chain multiple tests with is");
      test->args.positional.push_back(parse_postfix(parse_primary()));
    }
    ExprPtr result = seal(std::move(test));
    if (negated) result = seal(std::make_unique<UnaryExpr>(ExprKind::kNot, is_offset, std::move(result)));
    return result;
  }

  void check_builtin(size_t offset, const std::string& name, BuiltinStatus status, const char* what) const {
    if (status == BuiltinStatus::kSupported) return;
    if (status == BuiltinStatus::kUnsupported) {
      throw ParseError{TemplateError::Kind::kUnsupported, offset,
                       std::string("the '") + name + "' " + what + " is not supported"};
    }
    fail(offset, std::string("no ") + what + " named '" + name + "'");
  }

  // ---- macro signatures ----

  // jinja2 lets a macro take extra arguments only if its body mentions varargs / kwargs /
  // caller anywhere (nested blocks included).
  static void collect_names(const Expr& e, std::set<std::string>& names) {
    if (e.kind == ExprKind::kName) names.insert(static_cast<const NameExpr&>(e).name);
    for_each_child(e, [&](const Expr& child) { collect_names(child, names); });
  }

  static void collect_names(const Body& body, std::set<std::string>& names) {
    for (const auto& stmt : body) collect_names(*stmt, names);
  }

  static void collect_names(const MacroDef& def, std::set<std::string>& names) {
    for (const auto& d : def.defaults) collect_names(*d, names);
    collect_names(def.body, names);
  }

  static void collect_names(const Stmt& stmt, std::set<std::string>& names) {
    const auto expr = [&](const ExprPtr& e) {
      if (e) collect_names(*e, names);
    };
    switch (stmt.kind) {
      case StmtKind::kOutput:
        for (const auto& part : static_cast<const OutputStmt&>(stmt).parts) expr(part.expr);
        break;
      case StmtKind::kIf: {
        const auto& s = static_cast<const IfStmt&>(stmt);
        for (const auto& branch : s.branches) {
          expr(branch.test);
          collect_names(branch.body, names);
        }
        collect_names(s.else_body, names);
        break;
      }
      case StmtKind::kFor: {
        const auto& s = static_cast<const ForStmt&>(stmt);
        expr(s.iterable);
        expr(s.filter);
        collect_names(s.body, names);
        collect_names(s.else_body, names);
        break;
      }
      case StmtKind::kSet:
        expr(static_cast<const SetStmt&>(stmt).value);
        break;
      case StmtKind::kSetBlock:
        expr(static_cast<const SetBlockStmt&>(stmt).filter);
        collect_names(static_cast<const SetBlockStmt&>(stmt).body, names);
        break;
      case StmtKind::kMacro:
        collect_names(static_cast<const MacroStmt&>(stmt).def, names);
        break;
      case StmtKind::kCallBlock:
        expr(static_cast<const CallBlockStmt&>(stmt).call);
        collect_names(static_cast<const CallBlockStmt&>(stmt).caller, names);
        break;
      case StmtKind::kFilterBlock:
        expr(static_cast<const FilterBlockStmt&>(stmt).filter);
        collect_names(static_cast<const FilterBlockStmt&>(stmt).body, names);
        break;
      case StmtKind::kWith: {
        const auto& s = static_cast<const WithStmt&>(stmt);
        for (const auto& a : s.assignments) expr(a.second);
        collect_names(s.body, names);
        break;
      }
      case StmtKind::kScope:
        collect_names(static_cast<const ScopeStmt&>(stmt).body, names);
        break;
      case StmtKind::kBreak:
      case StmtKind::kContinue:
        break;
    }
  }

  static void note_special_names(MacroDef& def) {
    std::set<std::string> names;
    collect_names(def.body, names);
    def.uses_varargs = names.count("varargs") != 0;
    def.uses_kwargs = names.count("kwargs") != 0;
    def.uses_caller = names.count("caller") != 0;
  }
};

}  // namespace

Body parse_template(const std::string& source) { return Parser(tokenize(source)).parse_template(); }

}  // namespace nnterp::chat::jinja_detail
