// olmo: like llama, except every norm is a non-parametric LayerNorm (no weight, no bias,
// eps 1e-5; nothing in the checkpoint) and q, k, v are clamped to [-clip_qkv, clip_qkv] right
// after their projections.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec olmo(const Config& c) {
  ArchSpec a = llama_like(c, "olmo", "OlmoForCausalLM");
  a.norm = {NormKind::NonParametricLayerNorm, 1e-5};
  a.attn.rotary_precision = RotaryPrecision::Float32;  // float32 cos/sin and rotation, one cast
  a.attn.clip_qkv = c.number_or({"clip_qkv"}, 0.0);
  for (Weight weight : {Weight::AttnNorm, Weight::MlpNorm, Weight::FinalNorm}) a.weights.erase(weight);
  return a;
}

NNTERP_ARCH("olmo", olmo)

}  // namespace nnterp::model
