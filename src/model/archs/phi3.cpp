// phi3: like mistral (llama with an optional sliding window on every layer), except fused
// `qkv_proj` (rows [q | k | v], already canonical) and `gate_up_proj` (rows [gate | up]).
// longrope / su rope scaling (Phi-3 128k) is not supported (rotary_from_config refuses it).
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec phi3(const Config& c) {
  ArchSpec a = llama_like(c, "phi3", "Phi3ForCausalLM");
  a.norm.eps = c.number_or({"rms_norm_eps"}, 1e-5);
  for (auto& layer : a.layers) layer.sliding_window = c.integer_or({"sliding_window"}, 0);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  map_linear(w, Weight::Qkv, L + "self_attn.qkv_proj", true);
  w[Weight::GateUp] = src(L + "mlp.gate_up_proj.weight");
  return a;
}

NNTERP_ARCH("phi3", phi3)

}  // namespace nnterp::model
