// qwen3_moe: qwen3's attention (per-head QK-norm before rotary, no biases) with Qwen-MoE's layer
// plan (use_qwen_moe: MoE layers route over `num_experts` SwiGLU experts of moe_intermediate_size,
// top-k of the softmax, renormalised with norm_topk_prob; mlp_only_layers stay dense); no shared expert.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec qwen3_moe(const Config& c) {
  ArchSpec a = qwen3(c);
  a.name = "qwen3_moe";
  a.hf_class = "Qwen3MoeForCausalLM";
  use_qwen_moe(a, c);
  return a;
}

NNTERP_ARCH("qwen3_moe", qwen3_moe)

}  // namespace nnterp::model
