// phi: like llama, except a parallel block with one LayerNorm (with bias):
// x + attn(ln(x)) + mlp(ln(x)); partial rotary (partial_rotary_factor, default 0.5); biases on
// q/k/v/dense, on fc1/fc2 (plain gelu_new MLP) and on lm_head; optional per-head LayerNorm QK-norm
// (qk_layernorm, before rotary); `final_layernorm`; untied.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec phi(const Config& c) {
  ArchSpec a = llama_like(c, "phi", "PhiForCausalLM");
  a.norm = {NormKind::LayerNorm, c.number_or({"layer_norm_eps"}, 1e-5)};
  a.residual = Residual::Parallel;
  a.quirks.parallel_branches_summed_first = true;  // attn_outputs + feed_forward_hidden_states + residual
  a.pre_mlp_norm = false;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "gelu_new"), c.source());
  const double partial = c.number_or({"partial_rotary_factor"}, 0.5);
  for (auto& layer : a.layers)
    layer.rotary = rotary_from_config(c, static_cast<int64_t>(a.attn.head_dim * partial), RotaryLayout::Half);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  w.erase(Weight::MlpNorm);
  w.erase(Weight::GateUp);
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
  map_linear(w, Weight::O, L + "self_attn.dense", true);
  map_linear(w, Weight::Up, L + "mlp.fc1", true);
  map_linear(w, Weight::Down, L + "mlp.fc2", true);
  w.erase(Weight::FinalNorm);
  map_norm(w, Weight::FinalNorm, "model.final_layernorm", true);
  w[Weight::LmHeadBias] = src("lm_head.bias", true);
  if (c.boolean_or({"qk_layernorm"}, false))
    use_qk_norm(a, QkNorm::PerHead, L + "self_attn.q_layernorm", L + "self_attn.k_layernorm", true);
  return a;
}

NNTERP_ARCH("phi", phi)

}  // namespace nnterp::model
