// nnterp's interpretability methods, with nnterp's (Python) names and semantics, built on the trace.
//
//   nnterp::StandardizedTransformer model("gpt2");
//   auto acts  = nnterp::get_token_activations(model, {"The cat", "A dog sat"});  // [layers, 2, hidden]
//   auto probs = nnterp::logit_lens(model, {"The capital of France is"});        // [1, layers, vocab]
//   auto lens  = nnterp::patchscope_lens(model, {"Paris"});                      // [1, layers, vocab]
//
// Conventions shared by every method:
//  - Inputs are a TraceInput: a prompt, a vector of prompts (tokenized with the model's tokenizer,
//    left-padded) or a TokenBatch of token ids (which must be left-padded: every row ends with a
//    real token). Models without a tokenizer work with TokenBatch inputs.
//  - Token indices (`idx`, `index_to_patch`) count per prompt: negative from its last token
//    (-1, the default, is the last token), non-negative from its first real token. They never
//    point into padding, so results do not depend on how prompts are batched.
//  - Layer lists: empty means every layer; negative numbers count from the end (-1 is the last).
//  - Every method takes a batch size and iterates; the result is the same for any batch size.
//  - Results are CPU tensors; probabilities are float32.
//  - Bad arguments throw nnterp::Error naming the argument and what was expected.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "nnterp/collect.hpp"
#include "nnterp/model.hpp"
#include "nnterp/patching.hpp"
#include "nnterp/points.hpp"
#include "nnterp/tokenizer.hpp"
#include "nnterp/trace.hpp"

namespace nnterp {

class Tokenizer;

// ---- activations ----------------------------------------------------------------------------

// The activations of one token of each prompt at `layers`: [layers.size(), batch, hidden], in the
// model's dtype. The forward pass stops right after the last requested layer. `point` is any
// per-layer [B, T, H] point (layer input/output, attention or MLP input/output).
torch::Tensor get_token_activations(const StandardizedTransformer& model, const TraceInput& prompts, int64_t idx = -1,
                                    const std::vector<int>& layers = {}, Point point = Point::LayerOutput);

// get_token_activations over batches of `batch_size` prompts, concatenated: [layers, N, hidden].
// (collect.hpp has the variant that streams to disk.)
torch::Tensor collect_token_activations_batched(const StandardizedTransformer& model, const TraceInput& prompts,
                                                int64_t batch_size, const std::vector<int>& layers = {},
                                                int64_t idx = -1, Point point = Point::LayerOutput);

// ---- lenses ----------------------------------------------------------------------------------

struct LensOptions {
  std::vector<int> layers;   // empty: every layer
  int64_t idx = -1;          // the token read in each prompt
  int64_t batch_size = 32;
};

// The logit lens: softmax(project_on_vocab(layers_output[l][:, idx])) for each layer:
// [batch, layers, vocab] probabilities. At the last layer this is the model's next-token distribution.
torch::Tensor logit_lens(const StandardizedTransformer& model, const TraceInput& prompts, const LensOptions& options = {});

struct LogitLensResult {
  torch::Tensor probs;          // [batch, layers, vocab]
  torch::Tensor inverse_probs;  // [batch, layers, vocab]: softmax(unembed(-final_norm(hidden))), what each layer suppresses
  std::vector<int> layers;      // the layers, resolved
};
// The logit lens and, with `inverse`, the inverse lens (nnterp's return_inv_logits).
LogitLensResult logit_lens_with_inverse(const StandardizedTransformer& model, const TraceInput& prompts,
                                        const LensOptions& options = {}, bool inverse = true);

// The model's next-token distribution (softmax of the last position's logits): [batch, vocab].
torch::Tensor next_token_probs(const StandardizedTransformer& model, const TraceInput& prompts, int64_t batch_size = 32);

// ---- prompts with target tokens --------------------------------------------------------------

// For each word, the first token of `word` and of `" " + word` (a bare space token is dropped),
// de-duplicated in order. When the tokenizer adds a prefix space (both forms give the same first
// token), the token after a "🍐" prefix is used instead, as nnterp does.
std::vector<int64_t> get_first_tokens(const std::vector<std::string>& words, const Tokenizer& tokenizer);

// A token claimed by several target categories.
struct TokenCollision {
  int64_t token;
  std::vector<std::string> categories;
};

struct Prompt {
  std::string prompt;
  std::map<std::string, std::vector<int64_t>> target_tokens;       // category → token ids
  std::map<std::string, std::vector<std::string>> target_strings;  // category → the words they came from
  std::vector<int64_t> token_ids;  // the prompt pre-tokenized (used instead of `prompt` when not empty)

  // Target tokens from words (see get_first_tokens). Throws Error(InvalidArgument) naming the token
  // and both categories when two categories share a token, unless `allow_collisions`.
  static Prompt from_strings(const std::string& prompt, const std::map<std::string, std::vector<std::string>>& targets,
                             const Tokenizer& tokenizer, bool allow_collisions = false);
  static Prompt from_strings(const std::string& prompt, const std::map<std::string, std::vector<std::string>>& targets,
                             const StandardizedTransformer& model, bool allow_collisions = false);

  std::vector<TokenCollision> collisions(const std::vector<std::string>& ignore = {}) const;
  bool has_no_collisions(const std::vector<std::string>& ignore = {}) const { return collisions(ignore).empty(); }
  // Each category's summed probability: probs [..., vocab] → {category: [...]}.
  std::map<std::string, torch::Tensor> get_target_probs(const torch::Tensor& probs) const;
};

// What run_prompts computes per batch: [batch, layers, vocab] probabilities.
using ProbsFunction = std::function<torch::Tensor(const StandardizedTransformer&, const TraceInput&)>;
ProbsFunction next_token_probs_fn();                         // [batch, 1, vocab] (the default)
ProbsFunction logit_lens_fn(const LensOptions& options = {});  // [batch, layers, vocab]

struct RunPromptsOptions {
  int64_t batch_size = 32;
  ProbsFunction probs;   // default next_token_probs_fn()
  bool progress = true;  // a progress bar on stderr when it is a terminal
};

// Prompts with target categories from a JSONL file, one record per line:
//   {"prompt": "Le chat", "targets": {"fr": ["chat", "chien"], "en": ["cat", 1234]}}
// Target values are words (their first tokens, see get_first_tokens; needs `tokenizer`) and/or
// token ids. With `prompt_optional`, a record may omit "prompt" (its tokens then come from
// elsewhere, e.g. an --inputs file, through Prompt::token_ids). Errors name the file and line.
std::vector<Prompt> read_target_prompts(const std::string& path, const Tokenizer* tokenizer, bool prompt_optional = false);

// Runs every prompt (in batches) and returns each category's probability mass:
// {category: [N, layers]} (layers = 1 for next-token probabilities). All prompts must have the same
// categories, and either all be text or all be token ids.
std::map<std::string, torch::Tensor> run_prompts(const StandardizedTransformer& model, const std::vector<Prompt>& prompts,
                                                 const RunPromptsOptions& options = {});

// ---- patchscopes -----------------------------------------------------------------------------

struct TargetPrompt {
  std::string prompt;
  int64_t index_to_patch = -1;
  std::vector<int64_t> token_ids;  // the target pre-tokenized (used instead of `prompt` when not empty)
};

// The patchscopes paper's target: sep.join(w + rel + w) + sep + placeholder, patched at the
// placeholder. Default: "king king\n1135 1135\nhello hello\n?".
TargetPrompt repeat_prompt(const std::vector<std::string>& words = {"king", "1135", "hello"},
                           const std::string& rel = " ", const std::string& sep = "\n",
                           const std::string& placeholder = "?", int64_t index_to_patch = -1);

struct PatchscopeOptions {
  std::vector<int> layers;   // empty: every layer
  int64_t source_idx = -1;   // the source token whose hidden state is patched in
  int64_t batch_size = 32;
};

// For each layer l: the target prompt(s) run with layers_output[l] at index_to_patch replaced by
// the source's hidden state at layer l; returns the targets' next-token probabilities,
// [N sources, layers, vocab]. `targets`: empty → repeat_prompt(); one → used for every source;
// else one per source.
torch::Tensor patchscope_lens(const StandardizedTransformer& model, const TraceInput& sources,
                              const std::vector<TargetPrompt>& targets = {}, const PatchscopeOptions& options = {});
// The same from given latents [layers, N, hidden] (options.layers says which layer each row patches).
torch::Tensor patchscope_lens(const StandardizedTransformer& model, const torch::Tensor& latents,
                              const std::vector<TargetPrompt>& targets = {}, const PatchscopeOptions& options = {});

// Generation from a patchscope: the target prompt is generated from once per source, with the
// source's hidden state (layer `layer`, token `options.source_idx`) written into the target's
// `index_to_patch` position at the output of layer `layer` during the prompt pass (step 0). The
// patched keys/values stay in the KV cache, so every generated token sees the patch.
// Returns one row per source ([N, T + max_new_tokens] ids, decoded texts when there is a tokenizer).
GenerateResult patchscope_generate(const StandardizedTransformer& model, const TraceInput& sources, int layer,
                                   const TargetPrompt& target = repeat_prompt(), int max_new_tokens = 10,
                                   int64_t source_idx = -1);
// The same from latents [N, hidden] patched at `layer`.
GenerateResult patchscope_generate(const StandardizedTransformer& model, const torch::Tensor& latents, int layer,
                                   const TargetPrompt& target = repeat_prompt(), int max_new_tokens = 10);

// ---- instruct models ------------------------------------------------------------------------------

// repeat_prompt inside the tokenizer's chat template, for instruction-tuned models (nnterp's
// it_repeat_prompt): with `add_user_instr`, a user turn asks the model to guess the next word and
// the assistant agrees ("Ok.") before the repeat prompt's user turn; otherwise the instruction is
// the system turn (or, without `use_system_prompt`, part of the user turn). With
// `complete_prompt` the assistant's answer starts with the repeat prompt, left open
// (continue_final_message) so the model continues it; otherwise the answer is empty. Patched at
// the last token. `token_ids` holds the rendering encoded without added special tokens: the
// template writes BOS itself (nnterp's Python re-tokenizes the text and so doubles it).
TargetPrompt it_repeat_prompt(const Tokenizer& tokenizer,
                              const std::vector<std::string>& words = {"king", "1135", "hello"},
                              const std::string& rel = " ", const std::string& sep = "\n",
                              const std::string& placeholder = "?", bool complete_prompt = true,
                              bool add_user_instr = true, bool use_system_prompt = true,
                              const ChatTemplateOptions& chat = {});

// How text prompts become instruct-model inputs: each prompt a user turn (after an optional system
// turn), then the template's generation prompt, encoded without added special tokens.
struct ChatPromptOptions {
  std::string system;         // a system turn before each prompt; empty: none
  ChatTemplateOptions chat;   // template choice, extra variables (add_generation_prompt is set here)
};
// The token ids of each prompt wrapped as a chat (see ChatPromptOptions). Throws Error(Template)
// when the tokenizer has no chat template.
std::vector<std::vector<int64_t>> chat_prompt_ids(const Tokenizer& tokenizer, const std::vector<std::string>& prompts,
                                                  const ChatPromptOptions& options = {});
// The same, left-padded into a batch every method takes as its TraceInput: the `chat` option of
// logit_lens, patchscope_lens, run_prompts (Prompt::token_ids) and generate.
TokenBatch chat_inputs(const StandardizedTransformer& model, const std::vector<std::string>& prompts,
                       const ChatPromptOptions& options = {});

// ---- steering vectors from data --------------------------------------------------------------

struct SteeringVectorOptions {
  int64_t idx = -1;
  int64_t batch_size = 32;
  Point point = Point::LayerOutput;
};
// mean(activations of `positive`) − mean(activations of `negative`) at token `idx`: [layers, hidden].
// Use a row with Trace::steer.
torch::Tensor steering_vectors(const StandardizedTransformer& model, const TraceInput& positive, const TraceInput& negative,
                               const std::vector<int>& layers, const SteeringVectorOptions& options = {});
// One layer: [hidden].
torch::Tensor steering_vector(const StandardizedTransformer& model, const TraceInput& positive, const TraceInput& negative,
                              int layer, const SteeringVectorOptions& options = {});

// ---- direct logit attribution ----------------------------------------------------------------

// A target token's logit at one position, decomposed into what each part of the residual stream
// writes there: the embedding (with positions), each layer's attention and MLP, and the biases
// after the stream (the final norm's and lm_head's). The final norm is frozen at the real stream's
// scale (TransformerLens's convention), which makes it linear: the components sum exactly (up to
// float rounding) to the target's logit before any final soft-cap. Components come from the
// stream's own increments (resid_mid − input, output − resid_mid), so post-norms and residual
// multipliers are included as the model applies them; in a parallel block, attention is attn_output
// and the MLP the rest of the block's increment.
struct DlaOptions {
  int64_t idx = -1;          // the token (negative from the last, non-negative from the first)
  int64_t batch_size = 32;   // prompts per forward
};
struct DlaResult {
  std::vector<std::string> components;  // "embed", "layers.0.attn", "layers.0.mlp", ..., "bias"
  torch::Tensor values;        // float64 [prompts, components]
  torch::Tensor logits;        // float64 [prompts]: Σ values = the target's logit before a final soft-cap
  torch::Tensor model_logits;  // float64 [prompts]: the model's logit for the target (after any soft-cap)
  std::vector<int64_t> targets;  // per prompt
};
// `targets`: one token id for every prompt, or one per prompt.
DlaResult direct_logit_attribution(const StandardizedTransformer& model, const TraceInput& prompts,
                                   const std::vector<int64_t>& targets, const DlaOptions& options = {});

// Each head's write into layer `layer`'s attention output (TransformerLens's hook_result), from
// that layer's z [B, T, heads, d_v] (read in a trace): [B, T, heads, hidden] = z_h @ W_O[h], in z's
// dtype; summed over heads, plus b_O, it is attn_output (Bloom's module adds the residual too).
torch::Tensor head_results(const StandardizedTransformer& model, int layer, const torch::Tensor& z);

// ---- tables ----------------------------------------------------------------------------------

// A table cell: empty, a text, a number, or a list of texts or of token ids.
using TableCell = std::variant<std::monostate, std::string, double, std::vector<std::string>, std::vector<int64_t>>;

// A table printable as CSV or JSON.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<TableCell>> rows;
  std::string to_csv() const;                 // RFC 4180 quoting; lists are written space-separated
  std::string to_json(int indent = -1) const;  // [{column: value, ...}, ...]; indent < 0: one line
};

// One row per prompt: prompt, then per category (sorted) <cat>_words, <cat>_tokens (token
// strings, with a tokenizer), <cat>_ids, and, given run_prompts results, <cat>_prob ([N, 1]) or
// <cat>_prob.<layer> columns ([N, layers]; `layers` names them, default 0..L-1).
Table prompts_to_table(const std::vector<Prompt>& prompts, const std::map<std::string, torch::Tensor>& results = {},
                       const Tokenizer* tokenizer = nullptr, const std::vector<int>& layers = {});

// ---- helpers shared by the methods (and useful to callers) ------------------------------------

// The layer list resolved against the model: empty → all, negatives from the end; throws on out of range.
std::vector<int> resolve_layers(const StandardizedTransformer& model, const std::vector<int>& layers);
// Rows of token ids left-padded into a batch (pad: the tokenizer's padding id, else 0).
TokenBatch left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id = 0);
// The number of prompts of an input, and rows [begin, end) of it (padding columns that became
// empty are dropped).
int64_t input_size(const TraceInput& input);
TraceInput input_slice(const TraceInput& input, int64_t begin, int64_t end);
// Tokenizes (model.tokenize) and checks left padding.
TokenBatch tokenize_left_padded(const StandardizedTransformer& model, const TraceInput& input);
// The column of token `idx` of each row of a left-padded mask [B, T]: [B] int64.
torch::Tensor token_positions(const torch::Tensor& attention_mask, int64_t idx, const std::string& what = "idx");

}  // namespace nnterp
