// qwen2: llama, except biases on q/k/v (not o), tied embeddings by default, and an optional
// sliding window on layers >= max_window_layers (or as `layer_types` says).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec qwen2(const Config& c) {
  ArchSpec a = llama_like(c, "qwen2", "Qwen2ForCausalLM");
  const bool use_window = c.boolean_or({"use_sliding_window"}, false);
  const int64_t window = use_window ? c.integer_or({"sliding_window"}, 0) : 0;
  const int64_t first_windowed = c.integer_or({"max_window_layers"}, a.num_layers);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [&](int64_t i) { return window > 0 && i >= first_windowed; });
  set_sliding_layers(a, sliding, window);
  return a;
}

NNTERP_ARCH("qwen2", qwen2)

}  // namespace nnterp::model
