// Fuzz target: nnterp's Jinja2 chat-template interpreter (src/chat/), through nnterp::ChatTemplate.
//
// Input (chat_template_input.hpp): the template's source, optionally followed by a NUL byte and a
// JSON context (the variables the template sees). Without a context the template renders a fixed
// conversation (system, user, an assistant turn with a tool call, a tool result, a tools list,
// bos/eos tokens, add_generation_prompt), which is what real chat templates read, so mutated
// templates keep reaching the filters, tests, methods and loops that work on messages.
//
// The render runs under small limits (1 MiB of output, 100,000 loop iterations, 200 levels of
// nesting) so that no template can hang or exhaust memory: reaching a limit is an Error(Template),
// an accepted outcome like any other nnterp::Error. Anything else escaping is a finding.
//
// Properties beyond "no crash": every Error(Template) names the template ("fuzz" or
// "fuzz:LINE:COLUMN"), the output respects max_output_bytes, and rendering the same parsed
// template a second time gives the same text (a parsed template is immutable).
#include <optional>
#include <string>
#include <string_view>

#include "chat_template_input.hpp"
#include "fuzz_common.hpp"
#include "nnterp/chat_template.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;

namespace {

// fuzz::accepts, and a Template error must name the template (and its line:column, if any).
template <typename F>
bool accepts_template(F&& body) {
  return accepts([&] {
    try {
      body();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Template)
        require(e.subject() == "fuzz" || e.subject().rfind("fuzz:", 0) == 0, "a template error names the template");
      throw;
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ChatFuzzInput in = decode_chat_input({reinterpret_cast<const char*>(data), size});

  std::optional<ChatTemplate> tmpl;
  if (!accepts_template([&] { tmpl.emplace(std::string(in.source), "fuzz"); })) return 0;

  std::string first;
  if (!accepts_template([&] { first = tmpl->render(in.context, in.options); })) return 0;
  require(first.size() <= in.options.max_output_bytes, "the output respects max_output_bytes");
  std::string second;
  require(accepts_template([&] { second = tmpl->render(in.context, in.options); }), "a second render succeeds too");
  require(first == second, "the same template and context render the same text twice");
  return 0;
}
