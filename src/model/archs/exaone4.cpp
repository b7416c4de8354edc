// exaone4 (EXAONE 4.0): norms on the branch outputs as OLMo2 (`post_attention_layernorm`,
// `post_feedforward_layernorm`, no pre-norms), a per-head QK-norm before rotary, and hybrid
// attention: layer i slides iff (i+1) % sliding_window_pattern != 0 (or as `layer_types` says);
// sliding layers use rotary (llama3 scaling), full layers none (NoPE). Without a sliding window
// every layer is full and rotary.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec exaone4(const Config& c) {
  ArchSpec a = llama_like(c, "exaone4", "Exaone4ForCausalLM");
  const std::string L = "model.layers.{i}.";
  use_qk_norm(a, QkNorm::PerHead, L + "self_attn.q_norm", L + "self_attn.k_norm");
  a.pre_attn_norm = a.pre_mlp_norm = false;
  a.post_attn_norm = a.post_mlp_norm = true;
  a.weights.erase(Weight::AttnNorm);
  a.weights.erase(Weight::MlpNorm);
  map_norm(a.weights, Weight::PostAttnNorm, L + "post_attention_layernorm", false);
  map_norm(a.weights, Weight::PostMlpNorm, L + "post_feedforward_layernorm", false);
  if (!c.has("sliding_window")) return a;
  const int64_t window = c.integer({"sliding_window"}), pattern = c.integer_or({"sliding_window_pattern"}, 4);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [&](int64_t i) { return pattern <= 0 || (i + 1) % pattern != 0; });
  set_sliding_layers(a, sliding, window, /*full_layers_nope=*/true);
  return a;
}

NNTERP_ARCH("exaone4", exaone4)

}  // namespace nnterp::model
