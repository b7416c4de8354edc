// The Jinja parser: tokens to a syntax tree, following jinja2's grammar (jinja2/parser.py),
// with the `loopcontrols` extension (break, continue) and transformers' {% generation %} tag.
#pragma once

#include <memory>
#include <string>

#include "chat/jinja_ast.hpp"

namespace nnterp::chat::jinja_detail {

// Parses a template (its newlines already normalized).  Throws ParseError: a syntax error,
// an unsupported construct (extends, include, import, ...) or nesting past the parser's limit.
Body parse_template(const std::string& source);

// Fills in every FrameInfo of a parsed template, as jinja2's idtracking.py analyzes frames.
void analyze_frames(Program& program);

}  // namespace nnterp::chat::jinja_detail
