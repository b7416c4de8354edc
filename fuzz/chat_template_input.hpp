// How fuzz_chat_template turns its input bytes into a template, a context and render options (see
// fuzz_chat_template.cpp, docs/fuzzing.md). Shared with the test that replays the seed corpus and
// the findings in the normal test suite (tests/chat/chat_template_test.cpp), so that an input
// renders there exactly as it did in the fuzzer. Header-only, public API only.
//
// Input: the template's source, optionally followed by a NUL byte and a JSON context. Without a
// context the template renders kDefaultContext. The sandbox (transformers'
// ImmutableSandboxedEnvironment) is on for inputs of even size and off (list.append, dict.update
// allowed) for odd sizes.
#pragma once

#include <cstddef>
#include <string_view>

#include "nnterp/chat_template.hpp"

namespace nnterp::fuzz {

// What real chat templates read: system, user, an assistant turn with a tool call (its id nine
// alphanumerics, as Mistral's templates require), a tool result, reasoning, a tools list, special
// tokens, add_generation_prompt. (List contents and contexts templates refuse are seeds of their own.)
inline constexpr const char* kChatDefaultContext = R"({
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hé, what's 2+2? 東京"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"id": "call12345", "type": "function",
                     "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "tool_call_id": "call12345", "name": "add", "content": "4"},
    {"role": "assistant", "content": "4", "reasoning_content": "2+2=4"},
    {"role": "user", "content": "thanks"}
  ],
  "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two integers.",
             "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                            "required": ["a", "b"]}}}],
  "documents": null,
  "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
  "add_generation_prompt": true
})";

struct ChatFuzzInput {
  std::string_view source;
  std::string_view context;
  ChatRenderOptions options;
};

inline ChatFuzzInput decode_chat_input(std::string_view all) {
  ChatFuzzInput in;
  in.source = all;
  in.context = kChatDefaultContext;
  if (size_t nul = all.find('\0'); nul != std::string_view::npos) {
    in.source = all.substr(0, nul);
    in.context = all.substr(nul + 1);
  }
  // Small limits: no input may hang or exhaust memory; reaching one is an Error(Template).
  in.options.max_output_bytes = size_t{1} << 20;
  in.options.max_loop_iterations = 100'000;
  in.options.max_recursion_depth = 200;
  in.options.fixed_time = "2026-01-15 12:34:56";
  in.options.allow_container_mutation = all.size() % 2 == 1;
  return in;
}

}  // namespace nnterp::fuzz
