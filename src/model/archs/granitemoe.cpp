// granitemoe: granite's four multipliers with a mixture of SwiGLU experts on every layer
// (`block_sparse_moe`): router `router.layer` (top-k of the logits, softmax over those k), and the
// experts stored fused across experts: input_linear [E, 2·I, H] (rows [gate | up]) and
// output_linear [E, H, I], each expert a view of its slice.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec granitemoe(const Config& c) {
  ArchSpec a = granite(c);
  a.name = "granitemoe";
  a.hf_class = "GraniteMoeForCausalLM";
  const std::string M = "model.layers.{i}.block_sparse_moe.";
  // softmax over all experts, top-k, renormalised = softmax over the top-k logits.
  use_fused_moe(a, c.integer({"num_local_experts"}), c.integer({"num_experts_per_tok"}), true, M + "router.layer.weight",
                M + "input_linear.weight", M + "output_linear.weight", WeightTransform::SelectExpert);
  return a;
}

NNTERP_ARCH("granitemoe", granitemoe)

}  // namespace nnterp::model
