#include "nnterp/weight_names.hpp"

#include <stdexcept>
#include <tuple>

#include "core/name_patterns.hpp"

namespace nnterp {

const std::vector<WeightInfo>& weight_table() {
  // Local, not file-level: this file shares a unity-build batch with others.
  constexpr WeightScope M = WeightScope::Model, L = WeightScope::Layer, E = WeightScope::Expert;
  static const std::vector<WeightInfo> table = {
      {Weight::Embed, "embed.weight", M, "embed_tokens", "token embedding matrix [vocab, hidden]"},
      {Weight::PosEmbed, "pos_embed.weight", M, "embed_tokens", "learned absolute position embeddings [positions, hidden]"},
      {Weight::EmbedNorm, "embed_norm.weight", M, "embed_tokens", "norm right after the embedding"},
      {Weight::EmbedNormBias, "embed_norm.bias", M, "embed_tokens", "its bias"},
      {Weight::AttnNorm, "layers.{i}.attn_norm.weight", L, "self_attn", "pre-attention norm"},
      {Weight::AttnNormBias, "layers.{i}.attn_norm.bias", L, "self_attn", "its bias"},
      {Weight::MlpNorm, "layers.{i}.mlp_norm.weight", L, "mlp", "pre-MLP norm"},
      {Weight::MlpNormBias, "layers.{i}.mlp_norm.bias", L, "mlp", "its bias"},
      {Weight::PostAttnNorm, "layers.{i}.post_attn_norm.weight", L, "self_attn", "norm of the attention output before the residual add"},
      {Weight::PostAttnNormBias, "layers.{i}.post_attn_norm.bias", L, "self_attn", "its bias"},
      {Weight::PostMlpNorm, "layers.{i}.post_mlp_norm.weight", L, "mlp", "norm of the MLP output before the residual add"},
      {Weight::PostMlpNormBias, "layers.{i}.post_mlp_norm.bias", L, "mlp", "its bias"},
      {Weight::Qkv, "layers.{i}.attn.qkv.weight", L, "self_attn", "fused projection, rows [q (heads·hd) | k (kv·hd) | v (kv·hd)]"},
      {Weight::QkvBias, "layers.{i}.attn.qkv.bias", L, "self_attn", "its bias"},
      {Weight::QNorm, "layers.{i}.attn.q_norm.weight", L, "self_attn", "query norm (QK-norm)"},
      {Weight::QNormBias, "layers.{i}.attn.q_norm.bias", L, "self_attn", "its bias"},
      {Weight::KNorm, "layers.{i}.attn.k_norm.weight", L, "self_attn", "key norm (QK-norm)"},
      {Weight::KNormBias, "layers.{i}.attn.k_norm.bias", L, "self_attn", "its bias"},
      {Weight::O, "layers.{i}.attn.o.weight", L, "self_attn", "output projection [hidden, heads·hd]"},
      {Weight::OBias, "layers.{i}.attn.o.bias", L, "self_attn", "its bias"},
      {Weight::AttnSinks, "layers.{i}.attn.sinks", L, "self_attn",
       "attention sink logit per head [heads], one more softmax column without a value (gpt-oss)"},
      {Weight::QA, "layers.{i}.attn.q_a.weight", L, "self_attn", "latent attention: q's down projection [q_lora_rank, hidden]"},
      {Weight::QABias, "layers.{i}.attn.q_a.bias", L, "self_attn", "its bias"},
      {Weight::QANorm, "layers.{i}.attn.q_a_norm.weight", L, "self_attn", "latent attention: RMSNorm of q's latent"},
      {Weight::QB, "layers.{i}.attn.q_b.weight", L, "self_attn",
       "latent attention: q per head [q_nope | q_rope], [heads·(nope + rope), q_lora_rank or hidden]"},
      {Weight::KvA, "layers.{i}.attn.kv_a.weight", L, "self_attn",
       "latent attention: [latent (kv_lora_rank) | k_rope shared by all heads] from the input"},
      {Weight::KvABias, "layers.{i}.attn.kv_a.bias", L, "self_attn", "its bias"},
      {Weight::KvANorm, "layers.{i}.attn.kv_a_norm.weight", L, "self_attn", "latent attention: RMSNorm of the kv latent"},
      {Weight::KvB, "layers.{i}.attn.kv_b.weight", L, "self_attn",
       "latent attention: per head [k_nope | v] from the normed latent, [heads·(nope + v_head_dim), kv_lora_rank]"},
      {Weight::ConvIn, "layers.{i}.conv.in.weight", L, "self_attn", "short convolution: input projection, rows [b | c | x]"},
      {Weight::ConvInBias, "layers.{i}.conv.in.bias", L, "self_attn", "its bias"},
      {Weight::ConvKernel, "layers.{i}.conv.kernel.weight", L, "self_attn",
       "short convolution: causal depthwise kernel [hidden, 1, kernel] over b · x"},
      {Weight::ConvKernelBias, "layers.{i}.conv.kernel.bias", L, "self_attn", "its bias"},
      {Weight::ConvOut, "layers.{i}.conv.out.weight", L, "self_attn", "short convolution: output projection of c · conv"},
      {Weight::ConvOutBias, "layers.{i}.conv.out.bias", L, "self_attn", "its bias"},
      {Weight::DeltaQkvz, "layers.{i}.deltanet.qkvz.weight", L, "self_attn",
       "Gated DeltaNet: input projection, per key head [q | k | v | z] (v and z for its value heads)"},
      {Weight::DeltaBa, "layers.{i}.deltanet.ba.weight", L, "self_attn", "Gated DeltaNet: per key head [b | a] (β and decay inputs)"},
      {Weight::DeltaConv, "layers.{i}.deltanet.conv.weight", L, "self_attn", "Gated DeltaNet: causal depthwise conv over [q | k | v]"},
      {Weight::DeltaALog, "layers.{i}.deltanet.a_log", L, "self_attn", "Gated DeltaNet: log of each value head's decay rate"},
      {Weight::DeltaDtBias, "layers.{i}.deltanet.dt_bias", L, "self_attn", "Gated DeltaNet: each value head's time-step bias"},
      {Weight::DeltaNorm, "layers.{i}.deltanet.norm.weight", L, "self_attn", "Gated DeltaNet: RMSNorm of each head's output, × silu(z)"},
      {Weight::DeltaOut, "layers.{i}.deltanet.out.weight", L, "self_attn", "Gated DeltaNet: output projection"},
      {Weight::Up, "layers.{i}.mlp.up.weight", L, "mlp", "plain MLP input projection [intermediate, hidden]"},
      {Weight::UpBias, "layers.{i}.mlp.up.bias", L, "mlp", "its bias"},
      {Weight::GateUp, "layers.{i}.mlp.gate_up.weight", L, "mlp", "gated MLP input projection, rows [gate | up]"},
      {Weight::GateUpBias, "layers.{i}.mlp.gate_up.bias", L, "mlp", "its bias"},
      {Weight::Down, "layers.{i}.mlp.down.weight", L, "mlp", "MLP output projection [hidden, intermediate]"},
      {Weight::DownBias, "layers.{i}.mlp.down.bias", L, "mlp", "its bias"},
      {Weight::XieluAlphaP, "layers.{i}.mlp.act.alpha_p", L, "mlp", "xIELU: softplus(alpha_p) scales x² for x > 0"},
      {Weight::XieluAlphaN, "layers.{i}.mlp.act.alpha_n", L, "mlp", "xIELU: beta + softplus(alpha_n) scales the x ≤ 0 branch"},
      {Weight::XieluBeta, "layers.{i}.mlp.act.beta", L, "mlp", "xIELU: the linear term's slope"},
      {Weight::XieluEps, "layers.{i}.mlp.act.eps", L, "mlp", "xIELU: the x ≤ 0 branch's expm1(min(x, eps))"},
      {Weight::Router, "layers.{i}.moe.router.weight", L, "mlp", "mixture-of-experts router [experts, hidden]"},
      {Weight::RouterBias, "layers.{i}.moe.router.bias", L, "mlp", "its bias, part of the router logits"},
      {Weight::RouterScoreBias, "layers.{i}.moe.router.score_bias", L, "mlp",
       "added to the routing scores to choose the experts, not to weight them (DeepSeek-V3's e_score_correction_bias)"},
      {Weight::ExpertGateUp, "layers.{i}.moe.experts.{e}.gate_up.weight", E, "mlp", "expert e's gated input projection, rows [gate | up]"},
      {Weight::ExpertGateUpBias, "layers.{i}.moe.experts.{e}.gate_up.bias", E, "mlp", "its bias"},
      {Weight::ExpertDown, "layers.{i}.moe.experts.{e}.down.weight", E, "mlp", "expert e's output projection"},
      {Weight::ExpertDownBias, "layers.{i}.moe.experts.{e}.down.bias", E, "mlp", "its bias"},
      {Weight::SharedGateUp, "layers.{i}.moe.shared.gate_up.weight", L, "mlp", "shared expert's gated input projection"},
      {Weight::SharedDown, "layers.{i}.moe.shared.down.weight", L, "mlp", "shared expert's output projection"},
      {Weight::SharedGate, "layers.{i}.moe.shared_gate.weight", L, "mlp", "shared expert's sigmoid gate [1, hidden]"},
      {Weight::FinalNorm, "final_norm.weight", M, "ln_final", "final norm"},
      {Weight::FinalNormBias, "final_norm.bias", M, "ln_final", "its bias"},
      {Weight::LmHead, "lm_head.weight", M, "lm_head", "unembedding [vocab, hidden]"},
      {Weight::LmHeadBias, "lm_head.bias", M, "lm_head", "its bias"},
  };
  return table;
}

const WeightInfo& weight_info(Weight weight) {
  const auto& info = weight_table().at(static_cast<size_t>(weight));
  if (info.weight != weight) throw std::logic_error("weight_table() is out of the enum's order");
  return info;
}

// A weight has a bias when the next entry is its ".bias" twin.
static bool bias_follows(Weight weight) {
  const auto& table = weight_table();
  const size_t next = static_cast<size_t>(weight) + 1;
  if (next >= table.size()) return false;
  const std::string name = weight_info(weight).pattern, bias = table[next].pattern;
  const std::string stem = name.substr(0, name.size() - std::string(".weight").size());
  return name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 && bias == stem + ".bias";
}

bool has_bias(Weight weight) { return bias_follows(weight); }

Weight bias_of(Weight weight) {
  if (!bias_follows(weight))
    throw std::logic_error(std::string("standardized weight '") + weight_info(weight).pattern + "' has no bias");
  return static_cast<Weight>(static_cast<int>(weight) + 1);
}

std::string WeightId::name() const { return expand_name_pattern(weight_info(weight).pattern, layer, expert); }

std::string WeightId::module() const {
  const auto& info = weight_info(weight);
  if (info.scope == WeightScope::Model) return info.module;
  return "layers." + std::to_string(layer) + "." + info.module;
}

bool WeightId::operator<(const WeightId& o) const {
  return std::tie(weight, layer, expert) < std::tie(o.weight, o.layer, o.expert);
}

}  // namespace nnterp
