// What a sparse dictionary's features say about prompts, built on the trace and Trace::sae (sae.hpp):
// the most active features of every token, the features that drive a target logit (gradient
// attribution and direct logit attribution), and how well the dictionary stands in for the model.
//
//   auto sae = nnterp::Sae::load("models/default/sae/layers.2.output");
//   auto top = nnterp::sae_top_features(model, {"The capital of France is"}, sae, 5);  // [1, T, 5]
//   auto att = nnterp::sae_feature_attribution(model, {"The capital of France is"}, sae, {paris});
//   auto ev  = nnterp::sae_evaluate(model, prompts, sae);  // FVE, L0, loss recovered
//
// The conventions of methods.hpp hold (left padding, `idx` per prompt, batch sizes that do not
// change results, CPU results, errors naming the argument). Every method first checks that the SAE
// fits the model (Sae::check_fits) and names its point.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "nnterp/methods.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {

// ---- the most active features of each token ---------------------------------------------------

struct SaeTopFeatures {
  // [N, T, k]: each token's k most active features, most active first, T the longest prompt's
  // length (left padding, as a batch of all the prompts). Where fewer than k features fire, and
  // at padding, the index is -1 and the activation 0.
  torch::Tensor indices;         // int64
  torch::Tensor activations;     // float32
  torch::Tensor input_ids;       // int64 [N, T]
  torch::Tensor attention_mask;  // int64 [N, T]: 1 on the prompt's tokens
  std::vector<std::vector<std::string>> tokens;  // per prompt, its tokens as text ("#id" without a tokenizer)
};

// The features of `sae` at its point for every token of every prompt, read through Trace::sae
// (so they equal sae.encode of the point's activation), reduced to each token's top `k`.
SaeTopFeatures sae_top_features(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                int64_t k = 10, int64_t batch_size = 32);

// The activations of `features` (every feature when empty) at every token: float32 [N, T, F],
// laid out as SaeTopFeatures (left padding, 0 at padding). Memory: N × T × F floats.
torch::Tensor sae_feature_activations(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                      const std::vector<int64_t>& features = {}, int64_t batch_size = 32);

// ---- the features behind a logit --------------------------------------------------------------

struct SaeAttributionOptions {
  int64_t idx = -1;         // the token whose next-token logit is attributed
  int64_t batch_size = 32;  // prompts per forward
  int64_t top = 10;         // how many features top_features lists
};

struct SaeAttribution {
  std::vector<int64_t> targets;  // the target token of each prompt
  torch::Tensor logits;          // float64 [N]: the target's logit at `idx` (after any final soft-cap)
  torch::Tensor activations;     // float32 [N, d_sae]: the features at token `idx`
  // float64 [N, d_sae]: Σ over the prompt's tokens of f · ∂logit/∂f, the gradient taken through the
  // splice (the logit's derivative when the feature is scaled by (1 + ε) at every token: removing
  // the feature changes the logit by about −attribution, to first order).
  torch::Tensor attribution;
  torch::Tensor attribution_at_idx;  // float64 [N, d_sae]: the same, at token `idx` only
  // float64 [N, d_sae]: direct logit attribution at `idx`: the feature's write into the residual
  // stream (its share of the decoded output) through the final norm frozen at the stream's scale
  // and the target's unembedding (× logit_scale), as direct_logit_attribution does for layers;
  // before any final soft-cap. Undefined when the SAE does not write the residual stream itself
  // (layers.{i}.input, layers.{i}.resid_mid, layers.{i}.output): a write into attn_output,
  // mlp_output or z reaches the stream only through the block's own maps (o_proj, post-norms).
  torch::Tensor dla;
  torch::Tensor top_features;    // int64 [N, top]: the features with the largest |attribution|, largest first
};

// `targets`: one token id for every prompt, or one per prompt.
SaeAttribution sae_feature_attribution(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                                       const std::vector<int64_t>& targets, const SaeAttributionOptions& options = {});

// ---- how well the dictionary stands in for the model -------------------------------------------

struct SaeEvalOptions {
  int64_t batch_size = 32;
  // As SAELens's evals do by default: the tokenizer's special tokens (BOS, ...) are left out of
  // every statistic, keep their own activation in the spliced run, and the loss of predicting the
  // token after them is not counted.
  bool exclude_special_tokens = true;
  std::function<void(int64_t done)> on_batch;  // after each batch, with the prompts done so far (progress bars)
};

// SAELens's definitions (sae_lens/evals.py, see docs/sae.md), over the prompts' real tokens:
struct SaeEvaluation {
  int64_t tokens = 0;          // tokens the reconstruction statistics cover
  int64_t predictions = 0;     // next-token predictions the losses average over
  // 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²), x the SAE's output point (its input point but for a
  // transcoder), x̂ the reconstruction; sums pooled over every token in float64.
  double fve = 0;
  double mse = 0;              // E‖x − x̂‖² (summed over the width, averaged over tokens)
  double l0 = 0;               // mean number of features ≠ 0 per token
  double dead_fraction = 0;    // features that never fired on these tokens / d_sae
  torch::Tensor feature_density;  // float64 [d_sae]: the fraction of tokens each feature fires on
  // Mean next-token cross-entropy: the model as it is; with the output point replaced by the
  // reconstruction; with it zero-ablated (every position).
  double ce_clean = 0, ce_sae = 0, ce_zero = 0;
  double loss_recovered = 0;   // (ce_zero − ce_sae) / (ce_zero − ce_clean): 1 perfect, 0 no better than zeros
};

SaeEvaluation sae_evaluate(const StandardizedTransformer& model, const TraceInput& prompts, const Sae& sae,
                           const SaeEvalOptions& options = {});

// The point an SAE reads (its config's input point); an Error naming the SAE when the config names
// none, and the checks of Sae::check_fits against the model.
PointId sae_point(const StandardizedTransformer& model, const Sae& sae);

}  // namespace nnterp
