// deepseek_v2: multi-head latent attention (use_latent_attention; V2-Lite's lone q_proj when
// q_lora_rank is null) with rotary as complex multiplication of interleaved pairs in float32, the
// softmax scale (nope + rope)^-0.5 as HF computes it (no yarn mscale², which the original code
// applies: equal without rope_scaling), and DeepSeek's mixture of experts routed by a softmax
// (use_deepseek_moe: group_limited_greedy scores a group by its best expert; the k weights are
// never renormalised, × routed_scaling_factor).
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

void use_latent_attention(ArchSpec& a, const Config& c, RotaryLayout layout) {
  auto& m = a.attn.mla;
  m.kv_lora_rank = c.integer({"kv_lora_rank"});
  m.q_lora_rank = c.integer_or({"q_lora_rank"}, 0);
  m.qk_nope_dim = c.integer({"qk_nope_head_dim"});
  m.qk_rope_dim = c.integer({"qk_rope_head_dim"});
  a.attn.head_dim = m.qk_nope_dim + m.qk_rope_dim;
  a.attn.v_head_dim = c.integer({"v_head_dim"});
  if (a.attn.num_kv_heads != a.attn.num_heads)
    throw Error(ErrorKind::Config, c.source(),
                "num_key_value_heads (" + std::to_string(a.attn.num_kv_heads) + ") must equal num_attention_heads (" +
                    std::to_string(a.attn.num_heads) + "): latent attention makes one key and value per head");
  for (auto& layer : a.layers) layer.rotary = rotary_from_config(c, m.qk_rope_dim, layout);
  const std::string A = "model.layers.{i}.self_attn.";
  a.weights.erase(Weight::Qkv);
  a.weights.erase(Weight::QkvBias);
  if (m.q_lora_rank > 0) {
    map_linear(a.weights, Weight::QA, A + "q_a_proj", true);
    map_norm(a.weights, Weight::QANorm, A + "q_a_layernorm", false);
    a.weights[Weight::QB] = src(A + "q_b_proj.weight");
  } else {
    a.weights[Weight::QB] = src(A + "q_proj.weight");
  }
  map_linear(a.weights, Weight::KvA, A + "kv_a_proj_with_mqa", true);
  map_norm(a.weights, Weight::KvANorm, A + "kv_a_layernorm", false);
  a.weights[Weight::KvB] = src(A + "kv_b_proj.weight");
}

static ArchSpec deepseek_v2(const Config& c) {
  ArchSpec a = llama_like(c, "deepseek_v2", "DeepseekV2ForCausalLM");
  use_latent_attention(a, c, RotaryLayout::Interleaved);
  a.attn.rotary_precision = RotaryPrecision::Float32;
  use_deepseek_moe(a, c, RouterScoring::Softmax);
  return a;
}

NNTERP_ARCH("deepseek_v2", deepseek_v2)

}  // namespace nnterp::model
