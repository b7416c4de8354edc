// olmo2: like llama, except no pre-norms: the RMSNorms sit on the branch outputs before the
// residual adds (`post_attention_layernorm`, `post_feedforward_layernorm`), and a QK-norm
// (RMSNorm) over the whole q / k projections, before the head split and rotary.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

void use_whole_projection_qk_norm(ArchSpec& a, const Config& c) {
  a.attn.qk_norm = QkNorm::WholeProjection;
  a.attn.qk_norm_spec = {NormKind::RMSNorm, c.number_or({"rms_norm_eps"}, 1e-6), /*weight_in_float32=*/true};
  map_norm(a.weights, Weight::QNorm, "model.layers.{i}.self_attn.q_norm", false);
  map_norm(a.weights, Weight::KNorm, "model.layers.{i}.self_attn.k_norm", false);
}

ArchSpec olmo2(const Config& c) {
  ArchSpec a = llama_like(c, "olmo2", "Olmo2ForCausalLM");
  use_whole_projection_qk_norm(a, c);
  a.norm.weight_in_float32 = true;                     // Olmo2RMSNorm: (weight * x).to(dtype) in float32
  a.attn.rotary_precision = RotaryPrecision::Float32;  // as OLMo
  a.pre_attn_norm = a.pre_mlp_norm = false;
  a.post_attn_norm = a.post_mlp_norm = true;
  a.weights.erase(Weight::AttnNorm);
  a.weights.erase(Weight::MlpNorm);
  map_norm(a.weights, Weight::PostAttnNorm, "model.layers.{i}.post_attention_layernorm", false);
  map_norm(a.weights, Weight::PostMlpNorm, "model.layers.{i}.post_feedforward_layernorm", false);
  return a;
}

NNTERP_ARCH("olmo2", olmo2)

}  // namespace nnterp::model
