// Activation patching, as TransformerLens' patching tools do it: run a corrupted prompt, replace
// one activation (a point at one layer, one position, optionally one head) by its value in the
// clean run, and measure a metric on the patched logits; repeat over a grid of layers × positions
// (× heads).
//
//   nnterp::PatchingOptions options;
//   options.metric = nnterp::logit_diff_metric(paris, rome);
//   auto grid = nnterp::activation_patching(model, clean, corrupted, options);  // grid.values [layers, positions]
//
// Residual stream: Point::LayerOutput (resid_post) or LayerInput (resid_pre); block outputs:
// AttnOutput, MlpOutput; per head: Query, Key, Value (heads are the KV heads for Key/Value) and
// AttnProbs (the pattern, patched at query positions).
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "nnterp/points.hpp"
#include "nnterp/trace.hpp"

namespace nnterp {

class StandardizedTransformer;

// A metric of the last position's logits [B, vocab] → a scalar tensor (mean over the batch).
using PatchMetric = std::function<torch::Tensor(const torch::Tensor& last_logits)>;

// logits[correct] − logits[incorrect], averaged over the batch.
PatchMetric logit_diff_metric(int64_t correct, int64_t incorrect);
// Per-row answer tokens: correct [B], incorrect [B] (int64).
PatchMetric logit_diff_metric(const torch::Tensor& correct, const torch::Tensor& incorrect);

// Activation: each patch is run (one forward per patch, several per pass). Attribution (AtP): the
// first-order estimate of every patch from one clean forward and one corrupted forward + backward,
// (a_clean − a_corrupted) · ∂metric/∂a at the corrupted run (Nanda; Kramár et al. 2024): cheap at any
// grid size, exact for a metric linear in the activation, an approximation otherwise.
enum class PatchMethod { Activation, Attribution };

struct PatchingOptions {
  PatchMethod method = PatchMethod::Activation;
  Point point = Point::LayerOutput;
  std::vector<int> layers;         // empty: every layer
  bool per_position = true;        // a grid axis over positions; false: patch every position at once
  std::vector<int64_t> positions;  // the columns (negative from the end); empty: all of them
  bool per_head = true;            // for Query/Key/Value/AttnProbs: a grid axis over heads
  PatchMetric metric;              // required (e.g. logit_diff_metric)
  int64_t batch_size = 32;         // rows per forward pass: several patches run in one pass
};

struct PatchingResult {
  torch::Tensor values;              // float64 [layers (, heads) (, positions)]
  std::vector<std::string> dims;     // "layer", "head", "position" in order
  std::vector<int> layers;
  std::vector<int64_t> positions;    // columns patched (per_position)
  double clean_metric = 0, corrupted_metric = 0;
  // (value − corrupted) / (clean − corrupted): 1 where the patch restores the clean behaviour.
  torch::Tensor normalized() const;
};

// Clean and corrupted inputs must tokenize to the same shape and mask (positions correspond).
// With options.method = Attribution this is attribution_patching.
PatchingResult activation_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                                   const PatchingOptions& options);
// Attribution patching (AtP) over the same grid: values estimate activation_patching's.
PatchingResult attribution_patching(const StandardizedTransformer& model, const TraceInput& clean, const TraceInput& corrupted,
                                    const PatchingOptions& options);

}  // namespace nnterp
