// gpt_bigcode (StarCoder, SantaCoder): GPT-2's block, names and learned positions, but nn.Linear
// weights ([out, in], used as they are) and multi-query attention: c_attn's rows are
// [q (hidden) | k (head_dim) | v (head_dim)], one k/v head shared by every query head.
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec gpt_bigcode(const Config& c) {
  ArchSpec a = gpt2(c);
  a.name = "gpt_bigcode";
  a.hf_class = "GPTBigCodeForCausalLM";
  if (!c.boolean_or({"multi_query"}, true))
    throw Error(ErrorKind::Unsupported, c.source(), "gpt_bigcode with multi_query=false is not supported",
                "its c_attn packs q, k, v per head; released StarCoder/SantaCoder checkpoints use multi_query: true");
  a.attn.num_kv_heads = 1;
  a.mlp.activation = activation_from_name(c.string_or({"activation_function"}, "gelu_pytorch_tanh"), c.source());
  for (Weight linear : {Weight::Qkv, Weight::O, Weight::Up, Weight::Down}) a.weights[linear].transform = WeightTransform::None;
  return a;
}

NNTERP_ARCH("gpt_bigcode", gpt_bigcode)

}  // namespace nnterp::model
