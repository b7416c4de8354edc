// glm4_moe (GLM-4.5): a llama pre-norm block (not glm4's four norms) with q/k/v biases, partial
// rotate_half rotary (partial_rotary_factor), optional per-head QK-norm before rotary
// (use_qk_norm), and DeepSeek-V3's mixture of experts (use_deepseek_moe).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec glm4_moe(const Config& c) {
  ArchSpec a = llama_like(c, "glm4_moe", "Glm4MoeForCausalLM");
  if (c.boolean_or({"use_qk_norm"}, false))
    use_qk_norm(a, QkNorm::PerHead, "model.layers.{i}.self_attn.q_norm", "model.layers.{i}.self_attn.k_norm");
  use_deepseek_moe(a, c, RouterScoring::Sigmoid);
  return a;
}

NNTERP_ARCH("glm4_moe", glm4_moe)

}  // namespace nnterp::model
