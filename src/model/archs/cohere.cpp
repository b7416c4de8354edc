// cohere: like llama, except a parallel block with the single input_layernorm
// (x + attn(ln(x)) + mlp(ln(x))), mean-centred LayerNorms with weight and no bias, interleaved
// rotary (pairs (x0,x1), (x2,x3), ...), logits × logit_scale, tied embeddings by default, and
// optional use_qk_norm (Command R+: a LayerNorm over head_dim with a weight row per head).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec cohere_like(const Config& c, const std::string& name, const std::string& hf_class) {
  ArchSpec a = llama_like(c, name, hf_class);
  a.norm = {NormKind::LayerNorm, c.number_or({"layer_norm_eps"}, 1e-5)};
  a.norm.weight_in_float32 = true;                           // CohereLayerNorm: weight.float() * x, one cast
  a.attn.rotary_precision = RotaryPrecision::Float32Math;  // q.float(), k.float() rotated, then cast
  a.residual = Residual::Parallel;
  a.pre_mlp_norm = false;
  a.logit_scale = c.number_or({"logit_scale"}, 0.0625);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  for (auto& layer : a.layers) layer.rotary = rotary_from_config(c, a.attn.head_dim, RotaryLayout::Interleaved);
  a.weights.erase(Weight::MlpNorm);
  return a;
}

static ArchSpec cohere(const Config& c) {
  ArchSpec a = cohere_like(c, "cohere", "CohereForCausalLM");
  if (c.boolean_or({"use_qk_norm"}, false))
    use_qk_norm(a, QkNorm::PerHeadSeparate, "model.layers.{i}.self_attn.q_norm", "model.layers.{i}.self_attn.k_norm");
  return a;
}

NNTERP_ARCH("cohere", cohere)

}  // namespace nnterp::model
