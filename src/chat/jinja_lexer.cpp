#include "chat/jinja_lexer.hpp"

#include <cstdio>
#include <limits>
#include <optional>

#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

std::string describe(Tok type) {
  switch (type) {
    case Tok::kData:
      return "template data / text";
    case Tok::kVariableBegin:
      return "begin of print statement";
    case Tok::kVariableEnd:
      return "end of print statement";
    case Tok::kBlockBegin:
      return "begin of statement block";
    case Tok::kBlockEnd:
      return "end of statement block";
    case Tok::kName:
      return "name";
    case Tok::kString:
      return "string";
    case Tok::kInteger:
      return "integer";
    case Tok::kFloat:
      return "float";
    case Tok::kAdd:
      return "'+'";
    case Tok::kSub:
      return "'-'";
    case Tok::kDiv:
      return "'/'";
    case Tok::kFloorDiv:
      return "'//'";
    case Tok::kMul:
      return "'*'";
    case Tok::kPow:
      return "'**'";
    case Tok::kMod:
      return "'%'";
    case Tok::kTilde:
      return "'~'";
    case Tok::kLBracket:
      return "'['";
    case Tok::kRBracket:
      return "']'";
    case Tok::kLParen:
      return "'('";
    case Tok::kRParen:
      return "')'";
    case Tok::kLBrace:
      return "'{'";
    case Tok::kRBrace:
      return "'}'";
    case Tok::kEq:
      return "'=='";
    case Tok::kNe:
      return "'!='";
    case Tok::kGt:
      return "'>'";
    case Tok::kGtEq:
      return "'>='";
    case Tok::kLt:
      return "'<'";
    case Tok::kLtEq:
      return "'<='";
    case Tok::kAssign:
      return "'='";
    case Tok::kDot:
      return "'.'";
    case Tok::kColon:
      return "':'";
    case Tok::kPipe:
      return "'|'";
    case Tok::kComma:
      return "','";
    case Tok::kSemicolon:
      return "';'";
    case Tok::kEof:
      return "end of template";
  }
  return "token";
}

std::string describe(const Token& token) {
  if (token.type == Tok::kName) return "'" + token.text + "'";
  return describe(token.type);
}

std::string normalize_newlines(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      out += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      out += raw[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::pair<int, int> locate(const std::string& source, size_t offset) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  const size_t end = offset < source.size() ? offset : source.size();
  const int column = static_cast<int>(count_code_points(std::string_view(source).substr(line_start, end - line_start))) + 1;
  return {line, column};
}

namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char c) {
  if (is_ascii_digit(c)) return c - '0';
  return (c | 0x20) - 'a' + 10;
}

enum class TagKind { kComment, kBlock, kVariable, kRaw };

struct TagStart {
  size_t pos;  // where the opening delimiter starts
  TagKind kind;
  char sign;   // '-', '+' or 0: the whitespace-control mark right after the delimiter
  size_t end;  // where the tag's content starts (for raw: after the whole {% raw %})
};

class Lexer {
 public:
  explicit Lexer(const std::string& source) : s_(source) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) lex_data_and_tag();
    push(Tok::kEof, s_.size());
    return std::move(tokens_);
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;
  // Whether the last thing matched ended with a newline: lstrip_blocks strips the indentation
  // before a tag only at the start of a line.
  bool line_starting_ = true;
  std::vector<Token> tokens_;

  [[noreturn]] void error(size_t offset, std::string message) const {
    throw ParseError{TemplateError::Kind::kSyntax, offset, std::move(message)};
  }

  Token& push(Tok type, size_t offset, std::string text = {}) {
    tokens_.push_back(Token{type, offset, std::move(text)});
    return tokens_.back();
  }

  bool starts_with(size_t at, std::string_view what) const { return s_.compare(at, what.size(), what) == 0; }

  size_t skip_spaces(size_t at) const {
    while (size_t n = space_length_at(s_, at)) at += n;
    return at;
  }

  // ---- root state: template data up to the next tag ----

  std::optional<TagStart> find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1)) {
      if (i + 1 >= s_.size()) return std::nullopt;
      const char c = s_[i + 1];
      if (c != '{' && c != '%' && c != '#') continue;
      size_t after = i + 2;
      char sign = 0;
      if (after < s_.size() && (s_[after] == '-' || s_[after] == '+')) sign = s_[after++];
      if (c == '%') {
        if (auto raw_end = match_raw_begin(after)) return TagStart{i, TagKind::kRaw, sign, *raw_end};
        return TagStart{i, TagKind::kBlock, sign, after};
      }
      return TagStart{i, c == '{' ? TagKind::kVariable : TagKind::kComment, sign, after};
    }
    return std::nullopt;
  }

  // `\s*raw\s*(-%}\s*|%})` after "{%" and its sign; returns the end of the match.
  std::optional<size_t> match_raw_begin(size_t at) const {
    at = skip_spaces(at);
    if (!starts_with(at, "raw")) return std::nullopt;
    at = skip_spaces(at + 3);
    if (starts_with(at, "-%}")) return skip_spaces(at + 3);
    if (starts_with(at, "%}")) return at + 2;
    return std::nullopt;
  }

  // The whitespace control that applies to the text before a tag.
  std::string_view strip_before_tag(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return strip_spaces_right(text);
    if (sign == '+' || !lstrip_applies) return text;
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    if (line_start == 0 && !line_starting_) return text;
    if (line_start == text.size()) return text;
    for (size_t at = line_start; at < text.size();) {
      const size_t n = space_length_at(text, at);
      if (n == 0) return text;
      at += n;
    }
    return text.substr(0, line_start);
  }

  void lex_data_and_tag() {
    const auto tag = find_tag(pos_);
    if (!tag) {
      push(Tok::kData, pos_, s_.substr(pos_));
      pos_ = s_.size();
      return;
    }
    const std::string_view text =
        strip_before_tag(std::string_view(s_).substr(pos_, tag->pos - pos_), tag->sign, tag->kind != TagKind::kVariable);
    if (!text.empty()) push(Tok::kData, pos_, std::string(text));
    line_starting_ = s_[tag->end - 1] == '\n';
    pos_ = tag->end;
    switch (tag->kind) {
      case TagKind::kComment:
        lex_comment(tag->pos);
        break;
      case TagKind::kRaw:
        lex_raw(tag->pos);
        break;
      case TagKind::kBlock:
        push(Tok::kBlockBegin, tag->pos);
        lex_tag(/*block=*/true);
        break;
      case TagKind::kVariable:
        push(Tok::kVariableBegin, tag->pos);
        lex_tag(/*block=*/false);
        break;
    }
  }

  void lex_comment(size_t start) {
    for (size_t q = pos_; q < s_.size(); ++q) {
      size_t end = 0;
      if (starts_with(q, "+#}")) {
        end = q + 3;
      } else if (starts_with(q, "-#}")) {
        end = skip_spaces(q + 3);
      } else if (starts_with(q, "#}")) {
        end = q + 2;
        if (end < s_.size() && s_[end] == '\n') ++end;  // trim_blocks
      } else {
        continue;
      }
      line_starting_ = s_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    error(start, "Missing end of comment tag");
  }

  // After {% raw %}: everything up to {% endraw %} is template data.
  void lex_raw(size_t start) {
    for (size_t q = s_.find("{%", pos_); q != std::string::npos; q = s_.find("{%", q + 1)) {
      size_t at = q + 2;
      char sign = 0;
      if (at < s_.size() && (s_[at] == '-' || s_[at] == '+')) sign = s_[at++];
      at = skip_spaces(at);
      if (!starts_with(at, "endraw")) continue;
      at = skip_spaces(at + 6);
      size_t end;
      if (starts_with(at, "+%}")) {
        end = at + 3;
      } else if (starts_with(at, "-%}")) {
        end = skip_spaces(at + 3);
      } else if (starts_with(at, "%}")) {
        end = at + 2;
        if (end < s_.size() && s_[end] == '\n') ++end;
      } else {
        continue;
      }
      const std::string_view text = strip_before_tag(std::string_view(s_).substr(pos_, q - pos_), sign, true);
      if (!text.empty()) push(Tok::kData, pos_, std::string(text));
      line_starting_ = s_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    error(start, "Missing end of raw directive");
  }

  // ---- inside {{ }} or {% %} ----

  // Matches the end of the tag at pos_; false when it is not there.
  bool lex_tag_end(bool block) {
    size_t end;
    if (block) {
      if (starts_with(pos_, "+%}")) {
        end = pos_ + 3;
      } else if (starts_with(pos_, "-%}")) {
        end = skip_spaces(pos_ + 3);
      } else if (starts_with(pos_, "%}")) {
        end = pos_ + 2;
        if (end < s_.size() && s_[end] == '\n') ++end;  // trim_blocks
      } else {
        return false;
      }
    } else {
      if (starts_with(pos_, "-}}")) {
        end = skip_spaces(pos_ + 3);
      } else if (starts_with(pos_, "}}")) {
        end = pos_ + 2;
      } else {
        return false;
      }
    }
    push(block ? Tok::kBlockEnd : Tok::kVariableEnd, pos_);
    line_starting_ = s_[end - 1] == '\n';
    pos_ = end;
    return true;
  }

  void lex_tag(bool block) {
    std::vector<char> balance;  // closing brackets expected; tag ends only match when empty
    while (pos_ < s_.size()) {
      if (balance.empty() && lex_tag_end(block)) return;
      if (const size_t n = space_length_at(s_, pos_)) {
        pos_ += n;
        continue;
      }
      if (lex_number() || lex_name() || lex_string()) continue;
      lex_operator(balance);
    }
    // End of template inside a tag: the parser reports what it expected.
  }

  // `(\d+_)*\d+` at `at`: digit runs joined by single underscores; returns the end or `at`.
  size_t match_digits(size_t at) const {
    size_t p = at;
    if (p >= s_.size() || !is_ascii_digit(s_[p])) return at;
    while (p < s_.size() && is_ascii_digit(s_[p])) ++p;
    while (p + 1 < s_.size() && s_[p] == '_' && is_ascii_digit(s_[p + 1])) {
      ++p;
      while (p < s_.size() && is_ascii_digit(s_[p])) ++p;
    }
    return p;
  }

  size_t match_exponent(size_t at) const {
    if (at >= s_.size() || (s_[at] | 0x20) != 'e') return at;
    size_t p = at + 1;
    if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
    const size_t end = match_digits(p);
    return end == p ? at : end;
  }

  std::string without_underscores(size_t from, size_t to) const {
    std::string out;
    for (size_t i = from; i < to; ++i) {
      if (s_[i] != '_') out += s_[i];
    }
    return out;
  }

  bool lex_number() {
    if (!is_ascii_digit(s_[pos_])) return false;
    if (lex_float()) return true;
    lex_integer();
    return true;
  }

  bool lex_float() {
    if (pos_ > 0 && s_[pos_ - 1] == '.') return false;  // (?<!\.)
    const size_t int_end = match_digits(pos_);
    size_t end = int_end;
    size_t frac_end = int_end;
    if (int_end < s_.size() && s_[int_end] == '.') {
      const size_t f = match_digits(int_end + 1);
      if (f != int_end + 1) frac_end = f;
    }
    const size_t exp_end = match_exponent(frac_end);
    if (exp_end != frac_end) {
      end = exp_end;
    } else if (frac_end != int_end) {
      end = frac_end;
    } else {
      const size_t bare_exp = match_exponent(int_end);
      if (bare_exp == int_end) return false;
      end = bare_exp;
    }
    Token& t = push(Tok::kFloat, pos_);
    t.float_value = std::strtod(without_underscores(pos_, end).c_str(), nullptr);
    pos_ = end;
    return true;
  }

  void lex_integer() {
    int base = 10;
    size_t digits_start = pos_;
    size_t end = pos_;
    const char prefix = pos_ + 1 < s_.size() ? static_cast<char>(s_[pos_ + 1] | 0x20) : 0;
    const auto digit_ok = [&](char c, int b) {
      if (b == 2) return c == '0' || c == '1';
      if (b == 8) return c >= '0' && c <= '7';
      return is_hex_digit(c);
    };
    // 0b / 0o / 0x literals: `0x(_?[\da-f])+`
    if (s_[pos_] == '0' && (prefix == 'b' || prefix == 'o' || prefix == 'x')) {
      const int b = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      size_t p = pos_ + 2;
      while (true) {
        const size_t q = p < s_.size() && s_[p] == '_' ? p + 1 : p;
        if (q < s_.size() && digit_ok(s_[q], b)) {
          p = q + 1;
        } else {
          break;
        }
      }
      if (p > pos_ + 2) {
        base = b;
        digits_start = pos_ + 2;
        end = p;
      }
    }
    if (end == pos_) {
      // `[1-9](_?\d)*` or `0(_?0)*`
      const bool zero = s_[pos_] == '0';
      size_t p = pos_ + 1;
      while (true) {
        const size_t q = p < s_.size() && s_[p] == '_' ? p + 1 : p;
        if (q < s_.size() && (zero ? s_[q] == '0' : is_ascii_digit(s_[q]))) {
          p = q + 1;
        } else {
          break;
        }
      }
      end = p;
    }
    const std::string digits = without_underscores(digits_start, end);
    uint64_t value = 0;
    for (char c : digits) {
      const uint64_t d = static_cast<uint64_t>(hex_value(c));
      if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / static_cast<uint64_t>(base)) {
        throw ParseError{TemplateError::Kind::kUnsupported, pos_,
                         "integer literal too large (Python ints are unbounded; this interpreter uses 64 bits)"};
      }
      value = value * static_cast<uint64_t>(base) + d;
    }
    Token& t = push(Tok::kInteger, pos_);
    t.int_value = static_cast<int64_t>(value);
    pos_ = end;
  }

  bool is_name_char_at(size_t at, size_t* length) const {
    const unsigned char b = static_cast<unsigned char>(s_[at]);
    if (b < 0x80) {
      *length = 1;
      return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
    }
    size_t next = at;
    const char32_t c = decode_utf8(s_, next);
    *length = next - at;
    return is_word_char(c) || c == 0xB7;
  }

  bool lex_name() {
    size_t n = 0;
    if (!is_name_char_at(pos_, &n) || is_ascii_digit(s_[pos_])) return false;
    const size_t start = pos_;
    size_t p = pos_;
    while (p < s_.size() && is_name_char_at(p, &n)) p += n;
    push(Tok::kName, start, s_.substr(start, p - start));
    pos_ = p;
    return true;
  }

  bool lex_string() {
    const char quote = s_[pos_];
    if (quote != '\'' && quote != '"') return false;
    size_t p = pos_ + 1;
    while (p < s_.size() && s_[p] != quote) p += s_[p] == '\\' ? 2 : 1;
    if (p >= s_.size()) return false;  // unterminated: not a string token
    Token& t = push(Tok::kString, pos_);
    t.text = decode_string_literal(pos_ + 1, p);
    pos_ = p + 1;
    return true;
  }

  // Python's unicode-escape decoding, as jinja2 applies it to string literals (after escaping
  // non-ASCII characters with backslashreplace, which this reproduces for `\` + non-ASCII).
  std::string decode_string_literal(size_t from, size_t to) const {
    std::string out;
    const std::string_view body = std::string_view(s_).substr(0, to);
    size_t p = from;
    const auto read_hex = [&](size_t count, size_t escape_at) -> char32_t {
      char32_t v = 0;
      for (size_t i = 0; i < count; ++i) {
        if (p >= to || !is_hex_digit(body[p])) {
          error(escape_at, count == 2 ? "truncated \\xXX escape" : count == 4 ? "truncated \\uXXXX escape"
                                                                                : "truncated \\UXXXXXXXX escape");
        }
        v = v * 16 + static_cast<char32_t>(hex_value(body[p++]));
      }
      return v;
    };
    while (p < to) {
      if (body[p] != '\\') {
        const size_t start = p;
        decode_utf8(body, p);
        out.append(body.substr(start, p - start));
        continue;
      }
      const size_t escape_at = p;
      ++p;
      const unsigned char c = static_cast<unsigned char>(body[p]);
      if (c >= 0x80) {
        // "\é" reads as "\\xe9" once backslashreplace has run: a backslash and the hex text.
        const char32_t cp = decode_utf8(body, p);
        char buf[16];
        if (cp <= 0xFF) {
          std::snprintf(buf, sizeof buf, "x%02x", static_cast<unsigned>(cp));
        } else if (cp <= 0xFFFF) {
          std::snprintf(buf, sizeof buf, "u%04x", static_cast<unsigned>(cp));
        } else {
          std::snprintf(buf, sizeof buf, "U%08x", static_cast<unsigned>(cp));
        }
        out += '\\';
        out += buf;
        continue;
      }
      ++p;
      switch (c) {
        case '\n':
          break;  // line continuation
        case '\\':
        case '\'':
        case '"':
          out += static_cast<char>(c);
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
          append_utf8(out, read_hex(2, escape_at));
          break;
        case 'u':
          append_utf8(out, read_hex(4, escape_at));
          break;
        case 'U': {
          const char32_t cp = read_hex(8, escape_at);
          if (cp > 0x10FFFF) error(escape_at, "illegal Unicode character");
          append_utf8(out, cp);
          break;
        }
        case 'N':
          throw ParseError{TemplateError::Kind::kUnsupported, escape_at,
                           "\\N{...} escapes in string literals are not supported"};
        default:
          if (c >= '0' && c <= '7') {
            char32_t v = c - '0';
            for (int i = 0; i < 2 && p < to && body[p] >= '0' && body[p] <= '7'; ++i) v = v * 8 + (body[p++] - '0');
            append_utf8(out, v);
          } else {
            out += '\\';  // unknown escapes stay as written
            out += static_cast<char>(c);
          }
      }
    }
    return out;
  }

  void lex_operator(std::vector<char>& balance) {
    struct Op {
      std::string_view text;
      Tok type;
    };
    static constexpr Op kOps[] = {
        {"//", Tok::kFloorDiv}, {"**", Tok::kPow},    {"==", Tok::kEq},     {"!=", Tok::kNe},
        {">=", Tok::kGtEq},     {"<=", Tok::kLtEq},   {"+", Tok::kAdd},     {"-", Tok::kSub},
        {"/", Tok::kDiv},       {"*", Tok::kMul},     {"%", Tok::kMod},     {"~", Tok::kTilde},
        {"[", Tok::kLBracket},  {"]", Tok::kRBracket}, {"(", Tok::kLParen},  {")", Tok::kRParen},
        {"{", Tok::kLBrace},    {"}", Tok::kRBrace},  {">", Tok::kGt},      {"<", Tok::kLt},
        {"=", Tok::kAssign},    {".", Tok::kDot},     {":", Tok::kColon},   {"|", Tok::kPipe},
        {",", Tok::kComma},     {";", Tok::kSemicolon},
    };
    for (const Op& op : kOps) {
      if (!starts_with(pos_, op.text)) continue;
      const char c = op.text[0];
      if (op.text.size() == 1 && (c == '(' || c == '[' || c == '{')) {
        balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (op.text.size() == 1 && (c == ')' || c == ']' || c == '}')) {
        if (balance.empty()) error(pos_, std::string("unexpected '") + c + "'");
        if (balance.back() != c) error(pos_, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
        balance.pop_back();
      }
      push(op.type, pos_);
      pos_ += op.text.size();
      return;
    }
    size_t next = pos_;
    const char32_t c = decode_utf8(s_, next);
    std::string shown;
    append_utf8(shown, c);
    error(pos_, "unexpected char " + repr_char(shown));
  }

  static std::string repr_char(const std::string& c) { return c == "'" ? "\"'\"" : "'" + c + "'"; }
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace nnterp::chat::jinja_detail
