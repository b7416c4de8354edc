// What the library's other layers (the tokenizer) use of the chat-template code beyond the
// public nnterp/chat_template.hpp: JSON contexts and errors as nnterp::Error.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/jinja.hpp"
#include "nnterp/chat_template.hpp"
#include "nnterp/error.hpp"

namespace nnterp::chat_internal {

// A TemplateError as Error(Template), subject "NAME:LINE:COLUMN", with a hint for its kind.
Error to_error(const chat::TemplateError& e);
chat::RenderOptions to_render_options(const ChatRenderOptions& options);
// Parses caller-given JSON (messages, tools, a context); Error(InvalidArgument) naming `subject`.
nlohmann::ordered_json parse_json(std::string_view text, const std::string& subject);
// Renders; every failure is an Error(Template).
std::string render(const chat::Template& parsed, const nlohmann::ordered_json& context,
                   const ChatRenderOptions& options);

}  // namespace nnterp::chat_internal
