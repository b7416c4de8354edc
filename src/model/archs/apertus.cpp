// apertus (Swiss AI Apertus): llama attention with per-head QK-norm before rotary, norms named
// attention_layernorm / feedforward_layernorm, and an MLP without gate, down(xIELU(up(x))), whose
// xIELU has its own parameters in each layer (`mlp.act_fn.{alpha_p, alpha_n, beta, eps}`).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec apertus(const Config& c) {
  ArchSpec a = llama_like(c, "apertus", "ApertusForCausalLM");
  const std::string L = "model.layers.{i}.";
  map_norm(a.weights, Weight::AttnNorm, L + "attention_layernorm", false);
  map_norm(a.weights, Weight::MlpNorm, L + "feedforward_layernorm", false);
  use_qk_norm(a, QkNorm::PerHead, L + "self_attn.q_norm", L + "self_attn.k_norm");
  use_ungated_mlp(a);
  if (a.mlp.activation == Activation::Xielu) {
    a.weights[Weight::XieluAlphaP] = src(L + "mlp.act_fn.alpha_p");
    a.weights[Weight::XieluAlphaN] = src(L + "mlp.act_fn.alpha_n");
    a.weights[Weight::XieluBeta] = src(L + "mlp.act_fn.beta");
    a.weights[Weight::XieluEps] = src(L + "mlp.act_fn.eps");
  }
  return a;
}

NNTERP_ARCH("apertus", apertus)

}  // namespace nnterp::model
