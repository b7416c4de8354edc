// gemma2: like gemma, except four norms per block (post-attention and post-feedforward norms on
// the branch outputs before the residual add), scores scaled by query_pre_attn_scalar^-0.5 and
// soft-capped (attn_logit_softcapping), final logit soft-cap, activation from
// `hidden_activation`, and sliding-window attention on even layers (or as `layer_types` says).
#include <cmath>

#include "io/config_json.hpp"
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec gemma2(const Config& c) {
  ArchSpec a = gemma(c);
  a.name = "gemma2";
  a.hf_class = "Gemma2ForCausalLM";
  a.mlp.activation = activation_from_name(c.string_or({"hidden_activation"}, "gelu_pytorch_tanh"), c.source());
  a.post_attn_norm = a.post_mlp_norm = true;
  a.attn.scale = 1.0 / std::sqrt(c.number_or({"query_pre_attn_scalar"}, 256.0));
  // Gemma2Config defaults (absent key) are 50 / 30; an explicit null turns the cap off.
  auto cap = [&](const char* key, double fallback) { return config_root(c).contains(key) ? c.number_or({key}, 0.0) : fallback; };
  a.attn.softcap = cap("attn_logit_softcapping", 50.0);
  a.final_softcap = cap("final_logit_softcapping", 30.0);
  const int64_t window = c.integer_or({"sliding_window"}, 4096);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [](int64_t i) { return i % 2 == 0; });
  set_sliding_layers(a, sliding, window);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  map_norm(w, Weight::PostAttnNorm, L + "post_attention_layernorm", false);
  map_norm(w, Weight::MlpNorm, L + "pre_feedforward_layernorm", false);
  map_norm(w, Weight::PostMlpNorm, L + "post_feedforward_layernorm", false);
  return a;
}

NNTERP_ARCH("gemma2", gemma2)

}  // namespace nnterp::model
