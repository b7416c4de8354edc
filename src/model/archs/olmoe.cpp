// olmoe: like llama (pre-norm blocks), except olmo2's QK-norm over the whole q / k projections
// and a mixture of SwiGLU experts (`mlp.gate` router, softmax over all experts, top-k, renormalised
// only if norm_topk_prob).
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec olmoe(const Config& c) {
  ArchSpec a = llama_like(c, "olmoe", "OlmoeForCausalLM");
  use_whole_projection_qk_norm(a, c);
  // OLMoE clamps q and k after their norms; nnterp's clip_qkv clamps before (OLMo-1 order).
  if (c.has("clip_qkv"))
    throw Error(ErrorKind::Unsupported, c.source(), "olmoe with clip_qkv is not supported",
                "OLMoE clamps after the QK-norm; only clip_qkv: null (as in OLMoE-1B-7B) is implemented");
  const std::string M = "model.layers.{i}.mlp.";
  use_moe(a, c.integer({"num_experts"}), c.integer({"num_experts_per_tok"}), c.boolean_or({"norm_topk_prob"}, false),
          M + "gate.weight", M + "experts.{e}.gate_proj.weight", M + "experts.{e}.up_proj.weight",
          M + "experts.{e}.down_proj.weight");
  return a;
}

NNTERP_ARCH("olmoe", olmoe)

}  // namespace nnterp::model
