// Builders and helpers shared between architecture files (qwen3, olmo*, stablelm, starcoder2,
// cohere*, granite, mixtral, qwen2_moe). Data only, like the architecture files themselves.
#pragma once

#include <string>

#include "model/arch.hpp"

namespace nnterp::model {

// cohere.cpp: the Cohere block (parallel, single mean-centred LayerNorm without bias, interleaved
// rotary, logit_scale, tied), for cohere and cohere2.
ArchSpec cohere_like(const Config& c, const std::string& name, const std::string& hf_class);

// mixtral.cpp: replaces a llama-like spec's dense MLP by a mixture of SwiGLU experts. `router` and
// the expert names are HF names with "{i}" (layer) and "{e}" (expert); `up` is concatenated
// after `gate` into the experts' gate_up rows.
void use_moe(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router,
             const std::string& gate, const std::string& up, const std::string& down);

// olmo2.cpp: QK-norm over the whole q / k projections (RMSNorm, `self_attn.{q,k}_norm`).
void use_whole_projection_qk_norm(ArchSpec& a, const Config& c);

}  // namespace nnterp::model
