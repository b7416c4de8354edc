// The Jinja lexer: splits a template into template data and the tokens inside {{ }} and {% %},
// dropping comments and unwrapping {% raw %} blocks.  It reproduces jinja2's lexer rules with
// trim_blocks=True and lstrip_blocks=True, which decide every whitespace byte of the output:
//   * `{%- ` / `{{- ` / `{#- ` strip all whitespace before the tag; ` -%}` / ` -}}` / ` -#}` after it;
//   * trim_blocks drops the first newline after a block or comment tag (not after `}}`, not
//     after `+%}`);
//   * lstrip_blocks drops spaces and tabs from the start of a line up to a block or comment tag
//     (not before `{{`, not before `{%+`).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja.hpp"

namespace nnterp::chat::jinja_detail {

enum class Tok : uint8_t {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kAdd,
  kSub,
  kDiv,
  kFloorDiv,
  kMul,
  kPow,
  kMod,
  kTilde,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kLBrace,
  kRBrace,
  kEq,
  kNe,
  kGt,
  kGtEq,
  kLt,
  kLtEq,
  kAssign,
  kDot,
  kColon,
  kPipe,
  kComma,
  kSemicolon,
  kEof,
};

struct Token {
  Tok type;
  size_t offset;     // where the token starts in the normalized source
  std::string text;  // template data, a name, or a string literal's decoded value
  int64_t int_value = 0;
  double float_value = 0;
};

// How a token reads in an error message: "'endfor'", "end of statement block", ...
std::string describe(const Token& token);
std::string describe(Tok type);

// A syntax error (or unsupported construct) at a position of the normalized source.
struct ParseError {
  TemplateError::Kind kind;
  size_t offset;
  std::string message;
};

// jinja2 reads templates with universal newlines ("\r\n" and "\r" become "\n") and, as
// keep_trailing_newline=False, drops a single newline at the very end.
std::string normalize_newlines(const std::string& raw);

// 1-based line and column (in code points) of a position in the normalized source.
std::pair<int, int> locate(const std::string& source, size_t offset);

// Tokenizes a normalized source; the last token is kEof.  Throws ParseError.
std::vector<Token> tokenize(const std::string& source);

}  // namespace nnterp::chat::jinja_detail
