// A Jinja2 template interpreter for HuggingFace chat templates.
//
// It renders a chat template exactly as Python's jinja2 (3.1) does inside transformers'
// `apply_chat_template`: an ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True, the `loopcontrols` extension (break/continue), transformers'
// `{% generation %}` tag (renders its body unchanged), transformers' `tojson` filter
// (json.dumps with ensure_ascii=False) and the globals `raise_exception` and `strftime_now`.
//
// Values follow Python semantics: `{{ 1.0 }}` prints `1.0`, `{{ none }}` prints `None`, lists and
// dicts print as Python reprs, undefined variables print as nothing, and so on.
//
//   nnterp::chat::Template tmpl(source);                 // parse once (throws TemplateError)
//   std::string text = tmpl.render({{"messages", msgs}, {"add_generation_prompt", true}});
//
// The context is passed as-is: transformers also passes `tools`, `documents` (None when absent)
// and the tokenizer's special tokens (`bos_token`, `eos_token`, ...); callers add those.
//
// Not supported (a TemplateError naming the construct, never a silent difference):
// {% extends / include / import / from / block / autoescape %}, the filters filesizeformat,
// random, striptags, urlencode, urlize, wordwrap, xmlattr, `lipsum()`, `\N{...}` escapes.
// Known differences: ints are 64-bit (Python's are unbounded: overflow is an error here, and
// JSON integers above 2^63 arrive as floats); case mapping and Unicode character classes cover
// Latin, Greek, Cyrillic, Armenian and full-width letters, not all of Unicode; `range()` gives a
// list, and generators, bound methods and the like print without Python's memory address;
// iterating over a `loop` object is an error (jinja2 yields (item, loop) pairs).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace nnterp::chat {

// Every failure: a syntax error or unsupported construct (thrown by the Template constructor),
// or an error while rendering (what jinja2 would raise), `raise_exception(msg)` called by the
// template, or a RenderOptions limit.  what() reads "name:line:column: message".
struct TemplateError : std::runtime_error {
  enum class Kind {
    kSyntax,       // the template does not parse
    kUnsupported,  // valid Jinja2 that this interpreter does not implement (extends, include, ...)
    kRuntime,      // an error jinja2 raises while rendering (undefined attribute, type error, ...)
    kRaised,       // the template called raise_exception(message)
    kLimit,        // a RenderOptions limit was reached
  };
  TemplateError(Kind kind, std::string message, std::string template_name, int line, int column);

  Kind kind;
  std::string message;        // without the location prefix (for kRaised: the template's own text)
  std::string template_name;
  int line;                   // 1-based; 0 when unknown
  int column;                 // 1-based, in code points; 0 when unknown
};

// A local date and time, as datetime.now() gives it to strftime_now.
struct LocalTime {
  int year = 1970, month = 1, day = 1;
  int hour = 0, minute = 0, second = 0, microsecond = 0;
};

struct RenderOptions {
  // Upper bound on the rendered text, and on any single string (or list, in elements) that the
  // template builds while rendering, so that doubling loops cannot exhaust memory.
  size_t max_output_bytes = size_t{64} << 20;
  // Upper bound on loop iterations (for-loop bodies, recursive loop calls and macro calls),
  // counted over the whole render.
  size_t max_loop_iterations = 1'000'000;
  // Upper bound on evaluation nesting (nested statements, expressions and macro calls) and on
  // the nesting depth of the context's values; keeps deep recursion off the C++ stack.
  int max_recursion_depth = 1000;
  // The clock behind strftime_now(); empty means the system clock in local time.
  std::function<LocalTime()> now;
  // transformers renders in jinja2's ImmutableSandboxedEnvironment, where list.append,
  // dict.update and the like raise a SecurityError.  Set this to let templates call them.
  bool allow_container_mutation = false;
};

namespace jinja_detail {
struct Program;
}

// A parsed template: immutable and safe to render from several threads at once.
class Template {
 public:
  // Parses `source`; throws TemplateError (kSyntax, kUnsupported, or kLimit for nesting deeper
  // than the parser allows) naming line:column.
  explicit Template(std::string source, std::string name = "chat_template");
  ~Template();
  Template(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(const Template&);
  Template& operator=(Template&&) noexcept;

  // Renders with the context's top-level keys as template variables.  `context` must be a JSON
  // object (or null, for no variables).  Throws TemplateError.
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  const std::string& name() const;

 private:
  std::shared_ptr<const jinja_detail::Program> program_;
};

}  // namespace nnterp::chat
