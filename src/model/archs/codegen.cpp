// codegen: like gptj, except a fused `qkv_proj` in the mp_num = 4 layout (4 chunks of heads/4
// heads, each [q | v | k]; re-ordered at load time), so num_attention_heads must be divisible by 4.
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec codegen(const Config& c) {
  ArchSpec a = gptj(c);
  a.name = "codegen";
  a.hf_class = "CodeGenForCausalLM";
  if (a.attn.num_heads % 4 != 0)
    throw Error(ErrorKind::Config, c.source(), "CodeGen needs n_head divisible by 4 (its qkv_proj is split in 4 chunks), got " +
                                                   std::to_string(a.attn.num_heads));
  const std::string A = "transformer.h.{i}.attn.";
  a.weights[Weight::Qkv] = {{A + "qkv_proj.weight"}, WeightTransform::QkvCodegenMp4};
  a.ignored_weights = {A + "causal_mask", A + "masked_bias", A + "bias"};
  return a;
}

NNTERP_ARCH("codegen", codegen)

}  // namespace nnterp::model
