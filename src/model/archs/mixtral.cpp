// mixtral: like mistral (sliding window on every layer when set), except the MLP is a mixture
// of SwiGLU experts in `block_sparse_moe`: router `gate`, softmax over all experts, top-k, the
// k weights always renormalised to sum to 1; experts w2(silu(w1 x) * w3 x).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

namespace {

void use_router(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router) {
  a.mlp.kind = MlpKind::MoE;
  a.mlp.moe.num_experts = num_experts;
  a.mlp.moe.top_k = top_k;
  a.mlp.moe.normalize_top_k = normalize_top_k;
  a.weights[Weight::Router] = src(router);
}

}  // namespace

void use_moe(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router,
             const std::string& gate, const std::string& up, const std::string& down) {
  use_router(a, num_experts, top_k, normalize_top_k, router);
  a.weights[Weight::ExpertGateUp] = cat({gate, up});
  a.weights[Weight::ExpertDown] = src(down);
}

void use_fused_moe(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router,
                   const std::string& gate_up, const std::string& down, WeightTransform layout) {
  use_router(a, num_experts, top_k, normalize_top_k, router);
  a.weights[Weight::ExpertGateUp] = {{gate_up}, layout, false};
  a.weights[Weight::ExpertDown] = {{down}, layout, false};
}

bool set_moe_layers(ArchSpec& a, const std::function<bool(int64_t)>& is_moe) {
  bool any = false;
  for (int64_t i = 0; i < a.num_layers; ++i) {
    a.layers[i].dense_mlp = !is_moe(i);
    any = any || !a.layers[i].dense_mlp;
  }
  return any;
}

void use_shared_expert(ArchSpec& a, const std::string& prefix) {
  a.mlp.moe.shared_expert = true;
  a.weights[Weight::SharedGateUp] = cat({prefix + "gate_proj.weight", prefix + "up_proj.weight"});
  a.weights[Weight::SharedDown] = src(prefix + "down_proj.weight");
}

static ArchSpec mixtral(const Config& c) {
  ArchSpec a = llama_like(c, "mixtral", "MixtralForCausalLM");
  for (auto& layer : a.layers) layer.sliding_window = c.integer_or({"sliding_window"}, 0);
  const std::string M = "model.layers.{i}.block_sparse_moe.";
  use_moe(a, c.integer({"num_local_experts"}), c.integer({"num_experts_per_tok"}), true, M + "gate.weight",
          M + "experts.{e}.w1.weight", M + "experts.{e}.w3.weight", M + "experts.{e}.w2.weight");
  return a;
}

NNTERP_ARCH("mixtral", mixtral)

}  // namespace nnterp::model
