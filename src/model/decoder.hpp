// The one generic decoder: runs any ArchSpec over its standardized weights, calling the hooks
// at every standardized point.
#pragma once

#include <torch/types.h>

#include <mutex>

#include "model/arch.hpp"
#include "model/blocks/blocks.hpp"
#include "model/weights.hpp"
#include "nnterp/forward.hpp"

namespace nnterp::model {

class Decoder {
 public:
  Decoder(ArchSpec spec, Weights weights);

  // Logits [B, T, V] (or [B, 1, V] with logits_last_only); undefined if a hook stopped the pass.
  torch::Tensor forward(const ForwardInput& input, PointHooks* hooks = nullptr) const;
  // Final norm + lm_head + logit scaling + final soft-cap: on the last layer's output this is
  // exactly the logits.
  torch::Tensor project_on_vocab(const torch::Tensor& hidden) const;
  // The final norm alone, and lm_head + scaling + soft-cap alone.
  torch::Tensor final_norm(const torch::Tensor& hidden) const { return final_norm_(hidden); }
  const Norm& final_norm_module() const { return final_norm_; }
  torch::Tensor unembed(const torch::Tensor& normed) const;

  const ArchSpec& spec() const { return spec_; }
  const Weights& weights() const { return weights_; }
  // Replaces standardized weights (params.cpp's edits), each by blocks laid out as its own (one
  // tensor, or its row blocks), so that the forward computes as before; the shapes are checked again.
  void replace_weights(const std::vector<std::pair<WeightId, RowBlocks>>& replacements);

 private:
  struct Layer {
    Norm attn_norm, mlp_norm, post_attn_norm, post_mlp_norm;
    AttentionWeights attn;
    ShortConvWeights conv;
    DeltaNetWeights deltanet;
    MlpWeights mlp;
    MoeWeights moe;
  };
  struct PassState;  // per-forward tables (masks, rotary, ALiBi)

  void bind();
  void check_weights() const;
  void check_attention_weights(int layer) const;
  void check_short_conv_weights(int layer) const;
  void check_deltanet_weights(int layer) const;
  void check_latent_weights(int layer) const;
  // ArchSpec's embedding multipliers as applied: rounded to the model's dtype where HF rounds them
  // (embed_multiplier_rounded); computed once at construction.
  double embed_multiplier_inside_ = 1.0, embed_multiplier_ = 1.0;
  torch::Tensor block(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const;
  torch::Tensor mlp_branch(int i, const torch::Tensor& x, const Tap& tap) const;
  // The layer's token mixer (attention, or a short convolution) on its normed input.
  torch::Tensor mixer(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const;
  torch::Tensor recurrent_mixer(int i, const torch::Tensor& x, PassState& state, const Tap& tap) const;

  ArchSpec spec_;
  Weights weights_;
  std::vector<Layer> layers_;
  Norm embed_norm_, final_norm_;
  torch::Tensor embed_w_, pos_w_, head_w_, head_b_;

  torch::Tensor output_layer(const torch::Tensor& normed) const;  // lm_head alone
  // The logits buffer of the last forward, reused by the next when nobody holds it any more: a
  // fresh logits tensor over glibc's 32 MiB mmap threshold is mapped, page-faulted and zeroed anew
  // on every forward (GPT-2-small at 8×128: 206 MB; the whole forward went from 76-77% to 85% of
  // the sgemm rate with the buffer reused, docs/performance.md "Issue 15").
  mutable std::mutex logits_mutex_;
  mutable torch::Tensor logits_buffer_;
};

}  // namespace nnterp::model
