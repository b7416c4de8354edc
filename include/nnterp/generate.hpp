// Generation with a KV cache, and interventions at chosen steps.
//
// Step 0 is the prompt pass (all prompt positions); step s > 0 processes the one token chosen at
// step s-1. The step body runs as a trace body over that step's forward, so it sees the same
// points: at step 0 they have T positions, later steps 1 position (attention_probabilities then
// have S = all cached positions as keys).
//
// KV semantics: with the cache (default), an edit at step s changes the keys/values cached for
// that step's positions, and every later step attends to those edited keys/values. So steering
// only the prompt (`at_prompt`) still influences later tokens through the cache, but later
// positions themselves are not steered; steering at every step (`at_all_steps`) also edits each
// new position. With `recompute = true` every step re-runs the whole sequence without a cache:
// an edit at step s then applies to that step's forward only (all positions), and nothing of it
// persists into later steps except through the tokens chosen.
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/trace.hpp"

namespace nnterp {

class LanguageModel;

// Checked before anything runs (Error(InvalidArgument) naming the option): max_new_tokens >= 1,
// temperature >= 0, top_k >= 0, top_p in (0, 1], repetition_penalty > 0, the pad id inside the
// vocabulary; prompts must be left-padded (every row ends with a real token); with learned
// absolute positions, the longest prompt + max_new_tokens - 1 must fit the model's positions.
struct GenerateOptions {
  int max_new_tokens = 20;          // >= 1
  double temperature = 0.0;         // 0: greedy (argmax)
  int top_k = 0;                    // 0: off; sampling only
  double top_p = 1.0;               // 1: off; sampling only
  double repetition_penalty = 1.0;  // 1: off (HF semantics: divide positive logits, multiply negative)
  std::optional<uint64_t> seed;     // sampling seed; unset: nondeterministic
  bool stop_at_eos = true;          // each row stops at its EOS (later positions are padded)
  std::vector<int64_t> eos_token_ids;   // default: generation_config.json, config.json, tokenizer
  std::optional<int64_t> pad_token_id;  // default: likewise, else EOS, else 0
  bool recompute = false;           // no KV cache: re-run the full sequence each step
  bool keep_logits = false;         // return every step's next-token logits
  // Called after each step with the chosen token ids [B] (for streaming output).
  std::function<void(int step, const torch::Tensor& tokens)> on_step;
};

struct GenerateResult {
  torch::Tensor ids;             // int64 [B, T + N]: prompt (left-padded) + new tokens
  torch::Tensor attention_mask;  // int64 [B, T + N]
  int64_t prompt_length = 0;     // T
  torch::Tensor step_logits;     // float [B, N, V] when keep_logits
  std::vector<std::string> texts;  // decoded new tokens per row (when the model has a tokenizer)
};

using StepBody = std::function<void(Trace& t, int step)>;

// Helpers that turn a trace body into a step body.
StepBody at_all_steps(TraceBody body);
StepBody at_steps(int first, int last, TraceBody body);  // inclusive
StepBody at_prompt(TraceBody body);                      // step 0 only

// A generation run one step at a time, for callers whose step body is not a C++ callable (the
// Python module's `for step in gen.iter[...]`). generate() is exactly this loop:
//   while (!g.done()) g.accept(run_trace(model, g.next_input(), body_of(g.step())));
class Generation {
 public:
  Generation(const LanguageModel& model, const TraceInput& inputs, const GenerateOptions& options = {});
  ~Generation();
  Generation(Generation&&) noexcept;

  bool done() const;  // max_new_tokens generated, or every row at its EOS (stop_at_eos)
  int step() const;   // the step whose forward runs next (0: the prompt)
  // The forward of step(): the prompt at step 0 (every step with `recompute`), else the last
  // tokens, with the KV cache; logits for the last position only.
  ForwardInput next_input();
  // That forward's logits: chooses the next tokens (greedy or sampled), appends them, moves on.
  // Throws when they are undefined (the step's body stopped the forward).
  void accept(torch::Tensor logits);
  GenerateResult result() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

GenerateResult generate(const LanguageModel& model, const TraceInput& inputs,
                        const GenerateOptions& options = {}, const StepBody& body = {});

}  // namespace nnterp
