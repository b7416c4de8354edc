// glm4 (GLM-4-0414): four norms per block — h = x + post_self_attn_layernorm(attn(input_layernorm(x))),
// out = h + post_mlp_layernorm(mlp(post_attention_layernorm(h))) — partial interleaved rotary
// (partial_rotary_factor 0.5: pairs (0,1), (2,3)... on the first half of each head), q/k/v biases
// (not o), and a fused gate_up_proj ([gate | up] rows).
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec glm4(const Config& c) {
  ArchSpec a = llama_like(c, "glm4", "Glm4ForCausalLM");
  for (auto& layer : a.layers) layer.rotary.layout = RotaryLayout::Interleaved;
  const std::string L = "model.layers.{i}.";
  a.post_attn_norm = a.post_mlp_norm = true;
  map_norm(a.weights, Weight::PostAttnNorm, L + "post_self_attn_layernorm", false);
  map_norm(a.weights, Weight::PostMlpNorm, L + "post_mlp_layernorm", false);
  a.weights[Weight::GateUp] = src(L + "mlp.gate_up_proj.weight");
  return a;
}

NNTERP_ARCH("glm4", glm4)

}  // namespace nnterp::model
