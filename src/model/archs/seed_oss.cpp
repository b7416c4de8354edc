// seed_oss (Seed-OSS): llama with q/k/v biases (`attention_bias`; o_proj's is `attention_out_bias`,
// false in released checkpoints) and an explicit head_dim that need not be hidden / heads
// (q_proj: hidden → heads·head_dim, o_proj back). Its dropouts are inactive in eval.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec seed_oss(const Config& c) { return llama_like(c, "seed_oss", "SeedOssForCausalLM"); }

NNTERP_ARCH("seed_oss", seed_oss)

}  // namespace nnterp::model
