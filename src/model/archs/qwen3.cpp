// qwen3: like qwen2, except no q/k/v biases by default (`attention_bias`, on o_proj too) and a
// QK-norm: an RMSNorm over head_dim (one weight shared by all heads) applied per head before
// rotary; explicit head_dim.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec qwen3(const Config& c) {
  ArchSpec a = qwen2(c);
  a.name = "qwen3";
  a.hf_class = "Qwen3ForCausalLM";
  use_qk_norm(a, QkNorm::PerHead, "model.layers.{i}.self_attn.q_norm", "model.layers.{i}.self_attn.k_norm");
  return a;
}

NNTERP_ARCH("qwen3", qwen3)

}  // namespace nnterp::model
