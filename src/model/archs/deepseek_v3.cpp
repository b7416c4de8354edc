// deepseek_v3: DeepSeek-V2's latent attention with a q LoRA (q_a_proj, q_a_layernorm, q_b_proj),
// the rotary dims de-interleaved before a rotate_half rotary (rope_interleave), yarn, and the
// softmax scale × mscale(factor, mscale_all_dim)²; and its mixture of experts, shared by the models
// built on it (GLM-4.5, dots1): a sigmoid router (`mlp.gate`, in float32) whose experts are chosen
// on score + `e_score_correction_bias` among the `topk_group` best of `n_group` groups (a group
// scored by the sum of its two best biased scores) and weighted by the unbiased scores,
// renormalised when norm_topk_prob (sum + 1e-20) and × routed_scaling_factor; plus
// `n_shared_experts` experts' width of ungated shared SwiGLU. Layers before first_k_dense_replace
// keep the dense SwiGLU.
#include <cmath>

#include "model/archs/relatives.hpp"

namespace nnterp::model {

void use_deepseek_moe(ArchSpec& a, const Config& c, RouterScoring scoring) {
  const int64_t first_moe = c.integer_or({"first_k_dense_replace"}, 0), every = c.integer_or({"moe_layer_freq"}, 1);
  if (!set_moe_layers(a, [&](int64_t i) { return i >= first_moe && every > 0 && i % every == 0; })) return;
  const std::string M = "model.layers.{i}.mlp.";
  const bool v2 = scoring == RouterScoring::Softmax;  // HF's DeepSeek-V2 never renormalises
  use_moe(a, c.integer({"n_routed_experts"}), c.integer({"num_experts_per_tok"}), !v2 && c.boolean_or({"norm_topk_prob"}, false),
          M + "gate.weight", M + "experts.{e}.gate_proj.weight", M + "experts.{e}.up_proj.weight",
          M + "experts.{e}.down_proj.weight");
  auto& m = a.mlp.moe;
  m.scoring = scoring;
  m.router_in_float32 = true;
  const bool grouped = !v2 || c.string_or({"topk_method"}, "greedy") == "group_limited_greedy";
  m.groups = grouped ? c.integer_or({"n_group"}, 1) : 1;
  m.top_groups = c.integer_or({"topk_group"}, 1);
  m.group_score = scoring == RouterScoring::Sigmoid ? GroupScore::SumTop2 : GroupScore::Max;
  m.normalize_epsilon = 1e-20;
  m.routed_scaling = c.number_or({"routed_scaling_factor"}, 1.0);
  m.sum_in_float32 = !v2;
  if (scoring == RouterScoring::Sigmoid) a.weights[Weight::RouterScoreBias] = src(M + "gate.e_score_correction_bias");
  if (c.integer_or({"n_shared_experts"}, 0) > 0) use_shared_expert(a, M + "shared_experts.");
}

static ArchSpec deepseek_v3(const Config& c) {
  ArchSpec a = llama_like(c, "deepseek_v3", "DeepseekV3ForCausalLM");
  use_latent_attention(a, c, RotaryLayout::Half);
  a.attn.mla.rope_deinterleave = c.boolean_or({"rope_interleave"}, true);
  if (c.has("rope_scaling")) {
    const Config s = c.section("rope_scaling");
    const double factor = s.number_or({"factor"}, 1.0), m_all = s.number_or({"mscale_all_dim"}, 0);
    const double mscale = factor <= 1 ? 1.0 : 0.1 * m_all * std::log(factor) + 1.0;
    if (m_all != 0) a.attn.scale = mscale * mscale / std::sqrt(static_cast<double>(a.attn.head_dim));
  }
  use_deepseek_moe(a, c, RouterScoring::Sigmoid);
  return a;
}

NNTERP_ARCH("deepseek_v3", deepseek_v3)

}  // namespace nnterp::model
