// ernie4_5_moe (ERNIE 4.5 MoE): ernie4_5's attention with a mixture of SwiGLU experts in layers
// moe_layer_start_index..moe_layer_end_index (-1: the last) where (i+1) % moe_layer_interval == 0:
// a float32 router (`mlp.gate`), experts chosen on softmax + `moe_statics.e_score_correction_bias`
// and weighted by the unbiased softmax / max(sum, moe_norm_min); plus moe_num_shared_experts
// experts' width of ungated shared SwiGLU. Tied by default.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec ernie4_5_moe(const Config& c) {
  ArchSpec a = ernie4_5(c);
  a.name = "ernie4_5_moe";
  a.hf_class = "Ernie4_5_MoeForCausalLM";
  const int64_t start = c.integer_or({"moe_layer_start_index"}, 0), interval = c.integer_or({"moe_layer_interval"}, 1);
  int64_t end = c.integer_or({"moe_layer_end_index"}, -1);
  if (end < 0) end = a.num_layers - 1;
  if (!set_moe_layers(a, [&](int64_t i) { return interval > 0 && (i + 1) % interval == 0 && i >= start && i <= end; }))
    return a;
  const std::string M = "model.layers.{i}.mlp.";
  use_moe(a, c.integer({"moe_num_experts"}), c.integer({"moe_k"}), true, M + "gate.weight",
          M + "experts.{e}.gate_proj.weight", M + "experts.{e}.up_proj.weight", M + "experts.{e}.down_proj.weight");
  a.mlp.moe.router_in_float32 = true;
  a.mlp.moe.normalize_floor = c.number_or({"moe_norm_min"}, 1e-12);
  a.weights[Weight::RouterScoreBias] = src(M + "moe_statics.e_score_correction_bias");
  if (c.integer_or({"moe_num_shared_experts"}, 0) > 0) use_shared_expert(a, M + "shared_experts.");
  return a;
}

NNTERP_ARCH("ernie4_5_moe", ernie4_5_moe)

}  // namespace nnterp::model
