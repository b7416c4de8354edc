// ernie4_5 (ERNIE 4.5 dense): llama's layout with `use_bias` (biases on q/k/v/o and gate/up/down;
// false in released checkpoints) and interleaved full-dim rotary (pairs (0,1), (2,3)...) computed in
// float32. Tied by default.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec ernie4_5(const Config& c) {
  ArchSpec a = llama_like(c, "ernie4_5", "Ernie4_5ForCausalLM");
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  for (auto& layer : a.layers) layer.rotary.layout = RotaryLayout::Interleaved;
  a.attn.rotary_precision = RotaryPrecision::Float32;
  const std::string L = "model.layers.{i}.mlp.";
  a.weights[Weight::GateUpBias] = cat({L + "gate_proj.bias", L + "up_proj.bias"}, true);
  a.weights[Weight::DownBias] = src(L + "down_proj.bias", true);
  return a;
}

NNTERP_ARCH("ernie4_5", ernie4_5)

}  // namespace nnterp::model
