// phimoe (Phi-3.5-MoE): llama's layout with LayerNorms with bias (eps rms_norm_eps) everywhere,
// q/k/v/o biases, an lm_head bias, PhiMoE's longrope (short or long factors by the padded sequence
// length, with short_mscale / long_mscale), and a mixture of SwiGLU experts on every layer
// (`block_sparse_moe`: router `gate`, experts w1 / w3 / w2) routed by the sparsemixer.
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec phimoe(const Config& c) {
  ArchSpec a = llama_like(c, "phimoe", "PhimoeForCausalLM");
  a.norm = {NormKind::LayerNorm, c.number_or({"rms_norm_eps"}, 1e-5)};
  for (auto& layer : a.layers) layer.sliding_window = c.integer_or({"sliding_window"}, 0);
  const std::string L = "model.layers.{i}.", M = L + "block_sparse_moe.";
  map_norm(a.weights, Weight::AttnNorm, L + "input_layernorm", true);
  map_norm(a.weights, Weight::MlpNorm, L + "post_attention_layernorm", true);
  map_norm(a.weights, Weight::FinalNorm, "model.norm", true);
  a.weights[Weight::LmHeadBias] = src("lm_head.bias", true);
  const int64_t top_k = c.integer_or({"num_experts_per_tok"}, 2);
  if (top_k != 2)
    throw Error(ErrorKind::Unsupported, c.source(), "phimoe with num_experts_per_tok " + std::to_string(top_k) + " is not supported",
                "the sparsemixer router chooses exactly 2 experts, as HF's PhiMoE does");
  use_moe(a, c.integer({"num_local_experts"}), top_k, false, M + "gate.weight", M + "experts.{e}.w1.weight",
          M + "experts.{e}.w3.weight", M + "experts.{e}.w2.weight");
  a.mlp.moe.scoring = RouterScoring::Sparsemixer;
  a.mlp.moe.jitter = c.number_or({"router_jitter_noise"}, 0.01);
  if (a.layers[0].rotary.scaling == RopeScaling::LongRope)
    a.padding_dependence = "longrope picks its short or long factors by the sequence length with the pads counted "
                           "(HF's PhiMoE: cache_position[-1] + 1), so a left-padded row can cross original_max_position_embeddings";
  return a;
}

NNTERP_ARCH("phimoe", phimoe)

}  // namespace nnterp::model
