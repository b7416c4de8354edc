// gemma3 (text, model_type gemma3_text): like gemma2, except the sqrt(hidden) embedding scale is
// inside the embedding module (embed.output is scaled), QK-norm ((1 + w) RMSNorm over head_dim,
// before rotary), sliding layers from `layer_types` / `sliding_window_pattern` (default 6) and two
// rotary tables: sliding layers use rope_local_base_freq without scaling, full layers rope_theta
// with rope_scaling.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec gemma3_text(const Config& c) {
  ArchSpec a = gemma2(c);
  a.name = "gemma3_text";
  a.hf_class = "Gemma3ForCausalLM";
  a.embed_multiplier_inside = a.embed_multiplier;
  a.embed_multiplier = 1.0;
  use_qk_norm(a, QkNorm::PerHead, "model.layers.{i}.self_attn.q_norm", "model.layers.{i}.self_attn.k_norm");
  // Gemma3TextConfig defaults: no soft-caps, rope_theta 1e6 (full layers).
  a.attn.softcap = c.number_or({"attn_logit_softcapping"}, 0.0);
  a.final_softcap = c.number_or({"final_logit_softcapping"}, 0.0);
  const int64_t rotary_dim = a.attn.head_dim;

  const int64_t pattern = c.integer_or({"_sliding_window_pattern", "sliding_window_pattern"}, 6);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [&](int64_t i) { return pattern > 0 && (i + 1) % pattern != 0; });
  const int64_t window = c.integer_or({"sliding_window"}, 4096);
  const RotarySpec global = rotary_from_config(c, rotary_dim, RotaryLayout::Half, 1000000.0);
  RotarySpec local;
  local.dim = rotary_dim;
  local.theta = c.number_or({"rope_local_base_freq"}, 10000.0);
  for (int64_t i = 0; i < a.num_layers; ++i) {
    a.layers[i].sliding_window = sliding[i] ? window : 0;
    a.layers[i].rotary = sliding[i] ? local : global;
  }
  return a;
}

NNTERP_ARCH("gemma3_text", gemma3_text)

}  // namespace nnterp::model
