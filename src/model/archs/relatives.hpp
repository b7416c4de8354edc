// Builders and helpers that one architecture file exposes to its relatives (the architectures
// that derive from it). Each is defined in archs/<name>.cpp next to its NNTERP_ARCH registration.
// Data only, like the architecture files themselves: no torch.
#pragma once

#include <functional>
#include <string>

#include "model/arch.hpp"

namespace nnterp::model {

ArchSpec gemma(const Config& c);   // gemma.cpp: for gemma2
ArchSpec gemma2(const Config& c);  // gemma2.cpp: for gemma3_text
ArchSpec gptj(const Config& c);    // gptj.cpp: for codegen
ArchSpec gpt2(const Config& c);    // gpt2.cpp: for gpt_bigcode
ArchSpec olmo2(const Config& c);   // deepseek_v2.cpp: DeepSeek's multi-head latent attention (`self_attn.{q_a_proj, q_a_layernorm,
// q_b_proj or q_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj}`, the sizes kv_lora_rank,
// q_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim) with rotary of `layout` on the
// qk_rope_head_dim dims; for deepseek_v2 and deepseek_v3.
void use_latent_attention(ArchSpec& a, const Config& c, RotaryLayout layout);
// deepseek_v3.cpp: DeepSeek's mixture of experts under `mlp.` (gate, experts, shared_experts),
// MoE from first_k_dense_replace on (every moe_layer_freq-th layer), routed by `scoring`:
// Sigmoid is DeepSeek-V3's router (correction bias, groups scored by their two best), Softmax
// DeepSeek-V2's (groups scored by their best, no bias).
void use_deepseek_moe(ArchSpec& a, const Config& c, RouterScoring scoring);

// olmo2.cpp: for olmo3
ArchSpec granite(const Config& c); // granite.cpp: for granitemoe
ArchSpec hunyuan_v1_dense(const Config& c);  // hunyuan_v1_dense.cpp: for hunyuan_v1_moe
ArchSpec qwen2(const Config& c);   // qwen2.cpp: for qwen3
ArchSpec ernie4_5(const Config& c);  // ernie4_5.cpp: for ernie4_5_moe
ArchSpec qwen3(const Config& c);   // qwen3.cpp: for qwen3_moe

// cohere.cpp: the Cohere block (parallel, single mean-centred LayerNorm without bias, interleaved
// rotary, logit_scale, tied), for cohere and cohere2.
ArchSpec cohere_like(const Config& c, const std::string& name, const std::string& hf_class);

// arcee.cpp: an MLP without gate, down(act(up(x))), from `mlp.{up,down}_proj` (optional biases);
// for arcee and apertus.
void use_ungated_mlp(ArchSpec& a);

// mixtral.cpp: makes a llama-like spec's MLP a mixture of SwiGLU experts (for mixtral, olmoe,
// qwen2_moe and the MoE models after them). `router` and the expert names are HF names with "{i}"
// (layer) and "{e}" (expert); `up` is concatenated after `gate` into Weight::ExpertGateUp's rows.
// The dense MLP's weights stay mapped for the layers that set_moe_layers leaves dense.
void use_moe(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router,
             const std::string& gate, const std::string& up, const std::string& down);
// The same with experts fused across experts: `gate_up` and `down` name tensors stored for all
// experts at once, read per expert by `layout` (WeightTransform::SelectExpert for nn.Linear's
// [E, out, in], SelectExpertTransposed for [E, in, out] used as x @ W).
void use_fused_moe(ArchSpec& a, int64_t num_experts, int64_t top_k, bool normalize_top_k, const std::string& router,
                   const std::string& gate_up, const std::string& down, WeightTransform layout);
// Layer i routes over the experts iff is_moe(i); the others keep the dense MLP. False when every
// layer is dense.
bool set_moe_layers(ArchSpec& a, const std::function<bool(int64_t)>& is_moe);
// An ungated shared SwiGLU expert from `<prefix>{gate,up,down}_proj.weight` (prefix with "{i}").
void use_shared_expert(ArchSpec& a, const std::string& prefix);

// qwen2_moe.cpp: Qwen-MoE's layer plan (num_experts, decoder_sparse_step, mlp_only_layers,
// num_experts_per_tok, norm_topk_prob; router mlp.gate, experts mlp.experts.{e}), the dense layers
// keeping the spec's SwiGLU; for qwen2_moe and qwen3_moe. False when every layer is dense.
bool use_qwen_moe(ArchSpec& a, const Config& c);
// The same plus Qwen2-MoE's shared expert (`mlp.shared_expert`) × sigmoid(`mlp.shared_expert_gate`);
// for qwen2_moe and qwen3_next.
void use_qwen_moe_with_gated_shared_expert(ArchSpec& a, const Config& c);

// deepseek_v2.cpp: DeepSeek's multi-head latent attention (`self_attn.{q_a_proj, q_a_layernorm,
// q_b_proj or q_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj}`, the sizes kv_lora_rank,
// q_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim) with rotary of `layout` on the
// qk_rope_head_dim dims; for deepseek_v2 and deepseek_v3.
void use_latent_attention(ArchSpec& a, const Config& c, RotaryLayout layout);
// deepseek_v3.cpp: DeepSeek's mixture of experts under `mlp.` (gate, experts, shared_experts),
// MoE from first_k_dense_replace on (every moe_layer_freq-th layer), routed by `scoring`:
// Sigmoid is DeepSeek-V3's router (correction bias, groups scored by their two best), Softmax
// DeepSeek-V2's (groups scored by their best, no bias).
void use_deepseek_moe(ArchSpec& a, const Config& c, RouterScoring scoring);

// olmo2.cpp: QK-norm over the whole q / k projections (RMSNorm, `self_attn.{q,k}_norm`), for
// olmo2 and olmoe.
void use_whole_projection_qk_norm(ArchSpec& a, const Config& c);

}  // namespace nnterp::model
