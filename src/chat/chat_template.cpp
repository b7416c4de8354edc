// nnterp::ChatTemplate: the public face of the Jinja interpreter (chat/jinja.hpp), with its
// errors as nnterp::Error.
#include "nnterp/chat_template.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "chat/chat_template_internal.hpp"
#include "io/json_limits.hpp"
#include "nnterp/error.hpp"

namespace nnterp {

namespace {

std::string location_of(const chat::TemplateError& e) {
  if (e.line <= 0) return e.template_name;
  return e.template_name + ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
}

std::string hint_for(chat::TemplateError::Kind kind) {
  switch (kind) {
    case chat::TemplateError::Kind::kSyntax:
      return "the template is not valid Jinja2; transformers' jinja2 would refuse it too";
    case chat::TemplateError::Kind::kUnsupported:
      return "nnterp's interpreter covers what chat templates use (docs/chat_templates.md); "
             "pass a template without this construct";
    case chat::TemplateError::Kind::kRaised:
      return "the template itself refused this conversation (its raise_exception)";
    case chat::TemplateError::Kind::kLimit:
      return "raise the limit in ChatRenderOptions if the template really needs more";
    case chat::TemplateError::Kind::kRuntime:
      break;
  }
  return "";
}

// "YYYY-MM-DD HH:MM:SS" → the clock strftime_now reads.
chat::LocalTime parse_fixed_time(const std::string& text) {
  chat::LocalTime t;
  char tail = 0;
  const int n = std::sscanf(text.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%c", &t.year, &t.month, &t.day, &t.hour,
                            &t.minute, &t.second, &tail);
  if (n != 6 || t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.second > 60 || t.hour < 0 || t.minute < 0 || t.second < 0) {
    throw Error(ErrorKind::InvalidArgument, "ChatRenderOptions::fixed_time", "'" + text + "' is not a date and time",
                "write it as YYYY-MM-DD HH:MM:SS, e.g. 2026-01-15 12:34:56");
  }
  return t;
}

}  // namespace

namespace chat_internal {

Error to_error(const chat::TemplateError& e) {
  // An Error always says what went wrong: raise_exception('') (or of an undefined variable) has no
  // text of its own (found by fuzz_chat_template).
  std::string message = e.message;
  if (message.empty()) message = "the template called raise_exception() with an empty message";
  return Error(ErrorKind::Template, location_of(e), std::move(message), hint_for(e.kind));
}

chat::RenderOptions to_render_options(const ChatRenderOptions& options) {
  chat::RenderOptions out;
  out.max_output_bytes = options.max_output_bytes;
  out.max_loop_iterations = options.max_loop_iterations;
  out.max_recursion_depth = options.max_recursion_depth;
  out.allow_container_mutation = options.allow_container_mutation;
  if (!options.fixed_time.empty()) {
    const chat::LocalTime fixed = parse_fixed_time(options.fixed_time);
    out.now = [fixed] { return fixed; };
  }
  return out;
}

nlohmann::ordered_json parse_json(std::string_view text, const std::string& subject) {
  io::check_json_depth(io::json_text_depth(text), subject);
  try {
    return nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::InvalidArgument, subject, std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace chat_internal

struct ChatTemplate::Impl {
  std::string source;
  chat::Template parsed;
};

ChatTemplate::ChatTemplate(std::string source, std::string name) {
  try {
    chat::Template parsed(source, std::move(name));
    impl_ = std::make_shared<const Impl>(Impl{std::move(source), std::move(parsed)});
  } catch (const chat::TemplateError& e) {
    throw chat_internal::to_error(e);
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(const ChatTemplate&) = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(const ChatTemplate&) = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

const std::string& ChatTemplate::name() const { return impl_->parsed.name(); }
const std::string& ChatTemplate::source() const { return impl_->source; }

std::string ChatTemplate::render(std::string_view context_json, const ChatRenderOptions& options) const {
  const nlohmann::ordered_json context = chat_internal::parse_json(context_json, "the chat template's context");
  if (!context.is_object()) {
    throw Error(ErrorKind::InvalidArgument, "the chat template's context", "expected a JSON object of variables",
                R"(e.g. {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  }
  return chat_internal::render(impl_->parsed, context, options);
}

namespace chat_internal {

std::string render(const chat::Template& parsed, const nlohmann::ordered_json& context,
                   const ChatRenderOptions& options) {
  try {
    return parsed.render(context, to_render_options(options));
  } catch (const chat::TemplateError& e) {
    throw to_error(e);
  }
}

}  // namespace chat_internal

}  // namespace nnterp
