// llama: pre-RMSNorm blocks, rotary (rotate_half; llama3 / linear rope scaling), GQA, SwiGLU MLP.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec llama(const Config& c) {
  return llama_like(c, "llama", "LlamaForCausalLM");
}

NNTERP_ARCH("llama", llama)

}  // namespace nnterp::model
