// Chat templates: HuggingFace's `tokenizer.apply_chat_template`, rendered exactly as transformers
// renders it (Python jinja2 3.1 in an ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, `{% generation %}`, transformers' `tojson`, `raise_exception` and
// `strftime_now`), by nnterp's own Jinja2 interpreter (src/chat/, docs/chat_templates.md).
//
//   nnterp::ChatTemplate t(source);
//   std::string text = t.render(R"({"messages": [{"role": "user", "content": "Hi"}],
//                                   "add_generation_prompt": true})");
//
// Most callers want Tokenizer::apply_chat_template (nnterp/tokenizer.hpp), which picks the
// model's template and passes its special tokens the way transformers does.
//
// Errors are nnterp::Error of kind ErrorKind::Template whose subject is "NAME:LINE:COLUMN" (the
// template's name, 1-based line and column of the construct at fault); see ChatTemplate.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace nnterp {

// Bounds that keep a hostile or buggy template from exhausting time or memory: reaching one is
// an Error (ErrorKind::Template) that names the limit, never a hang or a crash.
struct ChatRenderOptions {
  // Upper bound on the rendered text and on any string or list the template builds.
  size_t max_output_bytes = size_t{64} << 20;
  // Upper bound on loop iterations, recursive loop calls and macro calls, over the whole render.
  size_t max_loop_iterations = 1'000'000;
  // Upper bound on nesting (statements, expressions, macro calls, and the context's values).
  int max_recursion_depth = 1000;
  // strftime_now()'s clock, "YYYY-MM-DD HH:MM:SS" (reproducible prompts and tests); empty: the
  // local time now, as transformers uses.
  std::string fixed_time;
  // transformers' sandbox refuses list.append, dict.update and the like; true allows them
  // (plain jinja2.Environment behaviour).
  bool allow_container_mutation = false;
};

// One parsed template: immutable, cheap to copy, safe to render from several threads at once.
class ChatTemplate {
 public:
  // Parses `source`. Throws Error(Template) for a syntax error or for a construct the
  // interpreter does not implement ({% extends %}, {% include %}, ...), naming line and column.
  explicit ChatTemplate(std::string source, std::string name = "chat_template");
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&);
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(const ChatTemplate&);
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders with the top-level keys of `context_json` (a JSON object) as the template's
  // variables. Throws Error(Template) for what jinja2 raises while rendering (the message of
  // raise_exception() included) or a limit reached, and Error(InvalidArgument) when the context
  // is not a JSON object.
  std::string render(std::string_view context_json, const ChatRenderOptions& options = {}) const;

  const std::string& name() const;
  const std::string& source() const;

  struct Impl;  // opaque

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace nnterp
