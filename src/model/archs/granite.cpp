// granite: like llama, except four multipliers: embeddings × embedding_multiplier (after the
// embedding module), residual adds x + residual_multiplier·branch, attention scores ×
// attention_multiplier instead of 1/sqrt(head_dim), logits ÷ logits_scaling; optional MLP
// biases (mlp_bias).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec granite(const Config& c) {
  ArchSpec a = llama_like(c, "granite", "GraniteForCausalLM");
  a.embed_multiplier = c.number_or({"embedding_multiplier"}, 1.0);
  a.residual_multiplier = c.number_or({"residual_multiplier"}, 1.0);
  a.attn.scale = c.number_or({"attention_multiplier"}, 1.0);
  a.logit_scale = 1.0 / c.number_or({"logits_scaling"}, 1.0);
  const std::string L = "model.layers.{i}.";
  a.weights[Weight::GateUpBias] = cat({L + "mlp.gate_proj.bias", L + "mlp.up_proj.bias"}, true);
  a.weights[Weight::DownBias] = src(L + "mlp.down_proj.bias", true);
  return a;
}

NNTERP_ARCH("granite", granite)

}  // namespace nnterp::model
