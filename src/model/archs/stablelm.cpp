// stablelm: like llama, except LayerNorms with bias, partial rotary (partial_rotary_factor,
// default 0.25), optional q/k/v biases (use_qkv_bias); StableLM-2-12B style options:
// qk_layernorm (a separate bias-free LayerNorm over head_dim per head, before rotary) and
// use_parallel_residual (x + attn(ln(x)) + mlp(ln(x)) with the single input_layernorm).
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec stablelm(const Config& c) {
  ArchSpec a = llama_like(c, "stablelm", "StableLmForCausalLM");
  a.attn.head_dim = a.hidden / a.attn.num_heads;  // HF ignores any head_dim key
  a.norm = {NormKind::LayerNorm, c.number_or({"layer_norm_eps"}, 1e-5)};
  const auto rotary_dim = static_cast<int64_t>(a.attn.head_dim * c.number_or({"partial_rotary_factor"}, 0.25));
  for (auto& layer : a.layers) layer.rotary = rotary_from_config(c, rotary_dim, RotaryLayout::Half);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
  map_norm(w, Weight::FinalNorm, "model.norm", true);
  if (c.boolean_or({"use_parallel_residual"}, false)) {
    a.residual = Residual::Parallel;
    a.pre_mlp_norm = false;
    w.erase(Weight::MlpNorm);
  } else {
    map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", true);
  }
  if (c.boolean_or({"qk_layernorm"}, false)) {
    a.attn.qk_norm = QkNorm::PerHeadSeparate;
    a.attn.qk_norm_spec = a.norm;
    // One nn.LayerNorm per head (`norms.{h}`): concatenated into the [heads·hd] per-head weight.
    auto per_head = [&](const std::string& which, int64_t heads) {
      std::vector<std::string> parts;
      for (int64_t h = 0; h < heads; ++h) parts.push_back(L + "self_attn." + which + ".norms." + std::to_string(h) + ".weight");
      return cat(parts);
    };
    w[Weight::QNorm] = per_head("q_layernorm", a.attn.num_heads);
    w[Weight::KNorm] = per_head("k_layernorm", a.attn.num_kv_heads);
  }
  return a;
}

NNTERP_ARCH("stablelm", stablelm)

}  // namespace nnterp::model
