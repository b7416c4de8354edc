// gemma: like llama, except RMSNorm with (1 + w), embeddings × sqrt(hidden) after the embedding
// (embed.output is unscaled), GeGLU (gelu_pytorch_tanh) MLP, explicit head_dim, tied lm_head.
#include <cmath>

#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

ArchSpec gemma(const Config& c) {
  ArchSpec a = llama_like(c, "gemma", "GemmaForCausalLM");
  if (c.boolean_or({"use_bidirectional_attention"}, false))
    throw Error(ErrorKind::Unsupported, c.source(), "use_bidirectional_attention=true is not supported",
                "nnterp implements causal language models only");
  a.norm.kind = NormKind::RMSNormPlusOne;
  a.embed_multiplier = std::sqrt(static_cast<double>(a.hidden));
  a.embed_multiplier_rounded = true;  // torch.tensor(hidden**0.5, dtype=hidden_states.dtype)
  // As transformers 4.57's GemmaMLP: `hidden_act` wins (hub gemma-2b/7b configs also carry
  // `hidden_activation`, which only older transformers read); then `hidden_activation`.
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act", "hidden_activation"}, "gelu_pytorch_tanh"), c.source());
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  return a;
}

NNTERP_ARCH("gemma", gemma)

}  // namespace nnterp::model
