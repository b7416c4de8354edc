// Shared input/output helpers for the CLI commands: prompts from --prompt / --prompts / --inputs
// (read by the library's readers, nnterp/inputs.hpp); layer lists; token display; result tensors (--out).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "nnterp/inputs.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"

namespace nnterp::cli {

// Where a command's prompts come from: exactly one of --prompt (repeatable), --prompts FILE or
// --inputs IN.safetensors.
struct PromptSource {
  std::vector<std::string> prompts;  // --prompt
  std::string prompts_file;          // --prompts
  std::string inputs;                // --inputs
  std::string prefix;                // set by add_prompt_options: "corrupted" for --corrupted-prompt, ...
  bool given() const { return !prompts.empty() || !prompts_file.empty() || !inputs.empty(); }
};

// Adds --prompt, --prompts and --inputs (`prefix` makes e.g. --clean-prompt, --clean-inputs).
void add_prompt_options(CLI::App& cmd, PromptSource& source, const std::string& prefix = "", const std::string& what = "prompts");
// The prompts (text) or token ids; `what` names them in errors.
TraceInput resolve_prompts(const PromptSource& source, const std::string& what = "prompts");

// --chat, --system, --chat-template: text prompts wrapped as a user turn of the model's chat
// template with its generation prompt (instruct models).
struct ChatFlags {
  bool chat = false;
  std::string system;         // a system turn before each prompt
  std::string template_name;  // one of the model's named templates, or a .jinja file
  ChatPromptOptions options(const StandardizedTransformer& model) const;
};
void add_chat_options(CLI::App& cmd, ChatFlags& flags, const std::string& what = "prompts");
// --chat-template's value as ChatTemplateOptions::chat_template: a name of the model's templates
// as it is, a file as its content; anything else is an error listing the names.
std::string chat_template_choice(const std::string& name_or_file, const Tokenizer& tokenizer,
                                 const std::string& flag = "--chat-template");
// `input` itself, or with --chat its prompts wrapped (token ids); token inputs cannot be wrapped.
TraceInput apply_chat(const TraceInput& input, const ChatFlags& flags, const StandardizedTransformer& model,
                      const std::string& what = "prompts");

// A steering vector file given by `flag`: safetensors (the tensor "vector", else its only tensor)
// or whitespace-separated numbers; checked to be [hidden] and finite. Float32.
torch::Tensor read_steering_vector(const std::string& path, const StandardizedTransformer& model, const std::string& flag);

// --html of the commands that compare two next-token distributions per prompt (steer apply, skip):
// per prompt, a heatmap of two rows (`rows`: what each distribution is) × the top `top` tokens.
void save_comparison_html(const std::string& path, const torch::Tensor& first, const torch::Tensor& second,
                          const std::vector<std::string>& rows, const std::string& title,
                          const StandardizedTransformer& model, const TraceInput& prompts, int64_t top, int width,
                          int height);

// --layers against the model (io::parse_layers).
std::vector<int> parse_layers(const std::string& spec, const StandardizedTransformer& model);

// A token for display: the tokenizer's decoded text (JSON-escaped when shown), or "#id" without a tokenizer.
std::string token_display(const StandardizedTransformer& model, int64_t id);

// The top-k (id, probability) of a probability vector [V].
std::vector<std::pair<int64_t, double>> top_k(const torch::Tensor& probs, int64_t k);

// Writes result tensors (float32 unless integer) with metadata naming the command and model.
void write_results(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const StandardizedTransformer& model, const std::string& command);

// A token given as a word (its first token; a note on stderr when it has several) or as an id, by
// the flag `flag` (and `flag`-id): exactly one of them.
int64_t answer_token(const StandardizedTransformer& model, const std::string& word, int64_t id, const char* flag);

// A per-layer point kind: "layers.{i}.attn_output", "attn_output" or the trace name "attentions_output".
// `residual_only`: only the points of shape [batch, tokens, hidden] (what collect reads); the error
// lists exactly the points accepted.
Point parse_point_kind(const std::string& name, bool residual_only = false);

// Loads the model for a command (tokenizer included when the folder has one).

}  // namespace nnterp::cli
