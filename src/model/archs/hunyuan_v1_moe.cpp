// hunyuan_v1_moe: hunyuan_v1_dense's attention (QK-norm after rotary, NTK-alpha) with a mixture of
// SwiGLU experts on every layer: router `mlp.gate.wg` (softmax, top `moe_topk`, renormalised) plus
// an ungated shared SwiGLU (`mlp.shared_mlp`). Per-layer expert counts (lists) are not supported.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec hunyuan_v1_moe(const Config& c) {
  ArchSpec a = hunyuan_v1_dense(c);
  a.name = "hunyuan_v1_moe";
  a.hf_class = "HunYuanMoEV1ForCausalLM";
  const std::string M = "model.layers.{i}.mlp.";
  use_moe(a, c.integer({"num_experts"}), c.integer({"moe_topk"}), true, M + "gate.wg.weight",
          M + "experts.{e}.gate_proj.weight", M + "experts.{e}.up_proj.weight", M + "experts.{e}.down_proj.weight");
  use_shared_expert(a, M + "shared_mlp.");
  return a;
}

NNTERP_ARCH("hunyuan_v1_moe", hunyuan_v1_moe)

}  // namespace nnterp::model
