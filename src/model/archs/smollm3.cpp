// smollm3: llama with NoPE layers. `no_rope_layers[i]` is 1 when layer i uses rotary and 0 when it
// has no positional encoding at all (default: every `no_rope_layer_interval`-th layer, 4, is NoPE);
// an optional sliding window as `layer_types` / use_sliding_window say. Tied by default.
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec smollm3(const Config& c) {
  ArchSpec a = llama_like(c, "smollm3", "SmolLM3ForCausalLM");
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  const int64_t interval = c.integer_or({"no_rope_layer_interval"}, 4);
  std::vector<int64_t> uses_rope;
  for (int64_t i = 0; i < a.num_layers; ++i) uses_rope.push_back(interval > 0 && (i + 1) % interval == 0 ? 0 : 1);
  uses_rope = c.integers_or({"no_rope_layers"}, uses_rope);
  if (static_cast<int64_t>(uses_rope.size()) != a.num_layers)
    throw Error(ErrorKind::Config, c.source(),
                "no_rope_layers has " + std::to_string(uses_rope.size()) + " entries for " +
                    std::to_string(a.num_layers) + " layers");
  const int64_t window = c.boolean_or({"use_sliding_window"}, false) ? c.integer_or({"sliding_window"}, 0) : 0;
  auto sliding = sliding_layers_from_config(c, a.num_layers, [&](int64_t) { return window > 0; });
  for (int64_t i = 0; i < a.num_layers; ++i) {
    if (!uses_rope[i]) a.layers[i].positions = PositionKind::None;
    a.layers[i].sliding_window = sliding[i] ? window : 0;
  }
  return a;
}

NNTERP_ARCH("smollm3", smollm3)

}  // namespace nnterp::model
