#include "chat/jinja.hpp"

#include "chat/jinja_eval.hpp"
#include "chat/jinja_lexer.hpp"
#include "chat/jinja_parser.hpp"

namespace nnterp::chat {

namespace {

std::string describe_location(const std::string& name, int line, int column) {
  if (line <= 0) return name;
  return name + ":" + std::to_string(line) + ":" + std::to_string(column);
}

}  // namespace

TemplateError::TemplateError(Kind k, std::string msg, std::string name, int l, int c)
    : std::runtime_error(describe_location(name, l, c) + ": " + msg),
      kind(k),
      message(std::move(msg)),
      template_name(std::move(name)),
      line(l),
      column(c) {}

Template::Template(std::string source, std::string name) {
  auto program = std::make_shared<jinja_detail::Program>();
  program->name = std::move(name);
  program->source = jinja_detail::normalize_newlines(source);
  try {
    program->body = jinja_detail::parse_template(program->source);
    jinja_detail::analyze_frames(*program);
  } catch (const jinja_detail::ParseError& error) {
    const auto [line, column] = jinja_detail::locate(program->source, error.offset);
    throw TemplateError(error.kind, error.message, program->name, line, column);
  } catch (const jinja_detail::EvalError& error) {  // not expected from the parser; kept total
    throw TemplateError(error.kind, error.message, program->name, 0, 0);
  }
  program_ = std::move(program);
}

Template::~Template() = default;
Template::Template(const Template&) = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(const Template&) = default;
Template& Template::operator=(Template&&) noexcept = default;

const std::string& Template::name() const { return program_->name; }

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  jinja_detail::Interpreter interpreter(*program_, options);
  try {
    return interpreter.render(context);
  } catch (const jinja_detail::EvalError& error) {  // raised outside any node; no location
    throw TemplateError(error.kind, error.message, program_->name, 0, 0);
  }
}

}  // namespace nnterp::chat
