// olmo: like llama, except every norm is a non-parametric LayerNorm (no weight, no bias,
// eps 1e-5; nothing in the checkpoint) and q, k, v are clamped to [-clip_qkv, clip_qkv] right
// after their projections.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec olmo(const Config& c) {
  ArchSpec a = llama_like(c, "olmo", "OlmoForCausalLM");
  a.norm = {NormKind::NonParametricLayerNorm, 1e-5};
  a.attn.clip_qkv = c.number_or({"clip_qkv"}, 0.0);
  for (const char* name : {"layers.{i}.attn_norm.weight", "layers.{i}.mlp_norm.weight", "final_norm.weight"})
    a.weights.erase(name);
  return a;
}

NNTERP_ARCH("olmo", olmo)

}  // namespace nnterp::model
