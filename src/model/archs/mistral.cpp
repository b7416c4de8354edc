// mistral: llama, except a sliding window on every layer.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec mistral(const Config& c) {
  ArchSpec a = llama_like(c, "mistral", "MistralForCausalLM");
  for (auto& layer : a.layers) layer.sliding_window = c.integer_or({"sliding_window"}, 0);
  return a;
}

NNTERP_ARCH("mistral", mistral)

}  // namespace nnterp::model
