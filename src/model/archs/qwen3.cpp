// qwen3: like qwen2, except no q/k/v biases by default (`attention_bias`, on o_proj too) and a
// QK-norm: an RMSNorm over head_dim (one weight shared by all heads) applied per head before
// rotary; explicit head_dim.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec qwen3(const Config& c) {
  ArchSpec a = llama_like(c, "qwen3", "Qwen3ForCausalLM");
  const bool use_window = c.boolean_or({"use_sliding_window"}, false);
  const int64_t window = use_window ? c.integer_or({"sliding_window"}, 0) : 0;
  const int64_t first_windowed = c.integer_or({"max_window_layers"}, a.num_layers);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [&](int64_t i) { return window > 0 && i >= first_windowed; });
  for (int64_t i = 0; i < a.num_layers; ++i) a.layers[i].sliding_window = sliding[i] ? window : 0;

  a.attn.qk_norm = QkNorm::PerHead;
  a.attn.qk_norm_spec = a.norm;
  map_norm(a.weights, "layers.{i}.attn.q_norm", "model.layers.{i}.self_attn.q_norm", false);
  map_norm(a.weights, "layers.{i}.attn.k_norm", "model.layers.{i}.self_attn.k_norm", false);
  return a;
}

NNTERP_ARCH("qwen3", qwen3)

}  // namespace nnterp::model
