// hunyuan_v1_dense: llama with a per-head QK-norm (`query_layernorm` / `key_layernorm`) applied
// after rotary, not before; NTK-alpha rope (`rope_scaling` {type: dynamic, alpha}: a fixed base
// θ·α^(d/(d−2)), rotary_from_config). Tied by default.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec hunyuan_v1_dense(const Config& c) {
  ArchSpec a = llama_like(c, "hunyuan_v1_dense", "HunYuanDenseV1ForCausalLM");
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  const std::string L = "model.layers.{i}.self_attn.";
  use_qk_norm(a, QkNorm::PerHead, L + "query_layernorm", L + "key_layernorm");
  a.attn.qk_norm_after_rotary = true;
  return a;
}

NNTERP_ARCH("hunyuan_v1_dense", hunyuan_v1_dense)

}  // namespace nnterp::model
