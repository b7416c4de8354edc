// cohere2: like cohere, except per-layer attention from `layer_types` (or the legacy
// sliding_window_pattern, default 4): sliding layers use the window and interleaved rotary,
// full layers use no positional encoding at all (NoPE). No QK-norm.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec cohere2(const Config& c) {
  ArchSpec a = cohere_like(c, "cohere2", "Cohere2ForCausalLM");
  const int64_t window = c.integer_or({"sliding_window"}, 4096);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [](int64_t i) { return (i + 1) % 4 != 0; });
  set_sliding_layers(a, sliding, window, /*full_layers_nope=*/true);
  return a;
}

NNTERP_ARCH("cohere2", cohere2)

}  // namespace nnterp::model
