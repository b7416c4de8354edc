// qwen2_moe: like qwen2 (q/k/v biases, `qkv_bias`), except the MLP is a mixture of SwiGLU
// experts (`mlp.gate` router, softmax over all experts, top-k, renormalised only if
// norm_topk_prob) plus a shared SwiGLU expert scaled by sigmoid(shared_expert_gate(x)). Layers
// in mlp_only_layers (or off the decoder_sparse_step) keep qwen2's dense SwiGLU. No sliding window.
#include <algorithm>

#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

bool use_qwen_moe(ArchSpec& a, const Config& c) {
  // HF: layer i is MoE iff i is not in mlp_only_layers and num_experts > 0 and (i+1) % step == 0.
  const int64_t experts = c.integer_or({"num_experts"}, 60), step = c.integer_or({"decoder_sparse_step"}, 1);
  const std::vector<int64_t> dense_only = c.integers_or({"mlp_only_layers"}, {});
  const bool any = set_moe_layers(a, [&](int64_t i) {
    return experts > 0 && step > 0 && (i + 1) % step == 0 &&
           std::find(dense_only.begin(), dense_only.end(), i) == dense_only.end();
  });
  if (!any) return false;  // every layer dense: exactly the dense model's block
  const std::string M = "model.layers.{i}.mlp.";
  use_moe(a, experts, c.integer_or({"num_experts_per_tok"}, 4), c.boolean_or({"norm_topk_prob"}, false),
          M + "gate.weight", M + "experts.{e}.gate_proj.weight", M + "experts.{e}.up_proj.weight",
          M + "experts.{e}.down_proj.weight");
  return true;
}

void use_qwen_moe_with_gated_shared_expert(ArchSpec& a, const Config& c) {
  if (!use_qwen_moe(a, c)) return;
  const std::string M = "model.layers.{i}.mlp.";
  use_shared_expert(a, M + "shared_expert.");
  a.weights[Weight::SharedGate] = src(M + "shared_expert_gate.weight");
}

static ArchSpec qwen2_moe(const Config& c) {
  ArchSpec a = llama_like(c, "qwen2_moe", "Qwen2MoeForCausalLM");
  if (c.boolean_or({"use_sliding_window"}, false))
    throw Error(ErrorKind::Unsupported, c.source(), "qwen2_moe with use_sliding_window=true is not supported",
                "released Qwen1.5-MoE / Qwen2-MoE checkpoints use use_sliding_window: false");
  use_qwen_moe_with_gated_shared_expert(a, c);
  return a;
}

NNTERP_ARCH("qwen2_moe", qwen2_moe)

}  // namespace nnterp::model
