// olmo3: olmo2's block (norms on the branch outputs, QK-norm over the whole projections) with
// `layer_types`: sliding layers (window `sliding_window`) use plain rotary (rope_theta, no
// scaling), full layers the `rope_scaling` one (yarn): two rotary tables, as HF's rotary_embs.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec olmo3(const Config& c) {
  ArchSpec a = olmo2(c);
  a.name = "olmo3";
  a.hf_class = "Olmo3ForCausalLM";
  const int64_t window = c.integer_or({"sliding_window"}, 4096);
  auto sliding = sliding_layers_from_config(c, a.num_layers, [](int64_t i) { return (i + 1) % 4 != 0; });
  RotarySpec plain = a.layers[0].rotary;
  plain.scaling = RopeScaling::None, plain.factor = 1.0, plain.attention_factor = 1.0;
  for (int64_t i = 0; i < a.num_layers; ++i) {
    a.layers[i].sliding_window = sliding[i] ? window : 0;
    if (sliding[i]) a.layers[i].rotary = plain;
  }
  return a;
}

NNTERP_ARCH("olmo3", olmo3)

}  // namespace nnterp::model
