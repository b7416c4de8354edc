// dots1 (rednote dots.llm1): qwen3's attention (per-head QK-norm before rotary) with DeepSeek-V3's
// mixture of experts (use_deepseek_moe: sigmoid router with a correction bias, shared experts,
// the first first_k_dense_replace layers dense).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec dots1(const Config& c) {
  ArchSpec a = qwen3(c);
  a.name = "dots1";
  a.hf_class = "Dots1ForCausalLM";
  use_deepseek_moe(a, c, RouterScoring::Sigmoid);
  return a;
}

NNTERP_ARCH("dots1", dots1)

}  // namespace nnterp::model
