// gpt_oss: llama's layout with q/k/v/o biases, attention sinks (`self_attn.sinks`, one logit per
// head that joins every softmax), sliding and full layers alternating (`layer_types`), yarn
// rotary, and a mixture of experts on every layer: router `mlp.router` with a bias (top-k of the
// logits, softmax over those k) and experts fused across experts and stored for x @ W —
// `gate_up_proj` [E, H, 2I] with gate and up interleaved in its columns, `down_proj` [E, I, H],
// each with a bias — computing gpt-oss's clamped SwiGLU (swiglu_limit).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec gpt_oss(const Config& c) {
  ArchSpec a = llama_like(c, "gpt_oss", "GptOssForCausalLM");
  const std::string L = "model.layers.{i}.", M = L + "mlp.";
  a.weights[Weight::AttnSinks] = src(L + "self_attn.sinks");
  auto sliding = sliding_layers_from_config(c, a.num_layers, [](int64_t i) { return (i + 1) % 2 != 0; });
  set_sliding_layers(a, sliding, c.integer_or({"sliding_window"}, 128));
  use_fused_moe(a, c.integer({"num_local_experts"}), c.integer({"num_experts_per_tok"}), true, M + "router.weight",
                M + "experts.gate_up_proj", M + "experts.down_proj", WeightTransform::SelectExpertTransposed);
  a.weights[Weight::RouterBias] = src(M + "router.bias");
  a.weights[Weight::ExpertGateUpBias] = {{M + "experts.gate_up_proj_bias"}, WeightTransform::SelectExpert, false};
  a.weights[Weight::ExpertDownBias] = {{M + "experts.down_proj_bias"}, WeightTransform::SelectExpert, false};
  a.mlp.gate_up_interleaved = true;
  a.mlp.swiglu_limit = c.number_or({"swiglu_limit"}, 7.0);
  return a;
}

NNTERP_ARCH("gpt_oss", gpt_oss)

}  // namespace nnterp::model
