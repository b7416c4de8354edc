#include "nnterp/points.hpp"

#include <algorithm>
#include <cstring>

#include "core/name_patterns.hpp"
#include "nnterp/error.hpp"

namespace nnterp {

const std::vector<PointInfo>& point_table() {
  static const std::vector<PointInfo> table = {
      {Point::Embed, "embed.output", "token_embeddings", "[B,T,H]",
       "output of the token-embedding module"},
      {Point::LayerInput, "layers.{i}.input", "layers_input", "[B,T,H]",
       "residual stream entering block i"},
      {Point::AttnInput, "layers.{i}.attn_input", "attentions_input", "[B,T,H]",
       "input of the attention module (after the block's pre-attention norm, if any)"},
      {Point::Query, "layers.{i}.q", "queries", "[B,heads,T,d_head]",
       "attention queries after QK-norm and rotary"},
      {Point::Key, "layers.{i}.k", "keys", "[B,kv_heads,T,d_head]",
       "attention keys after QK-norm and rotary (before GQA repetition)"},
      {Point::Value, "layers.{i}.v", "values", "[B,kv_heads,T,d_head]", "attention values"},
      {Point::AttnScores, "layers.{i}.attn_scores", "attention_scores", "[B,heads,T,S]",
       "pre-softmax attention scores, after scaling, soft-capping, ALiBi and the mask (S = keys incl. cached ones)"},
      {Point::AttnProbs, "layers.{i}.attn_probs", "attention_probabilities", "[B,heads,T,S]",
       "post-softmax attention weights (S = keys incl. cached ones)"},
      {Point::ConvState, "layers.{i}.conv_state", "conv_states", "[B,channels,K-1]",
       "the last K-1 inputs of a short-conv / Gated DeltaNet layer's convolution after this pass (its cache)"},
      {Point::RecurrentState, "layers.{i}.recurrent_state", "recurrent_states", "[B,value_heads,dk,dv]",
       "a Gated DeltaNet layer's recurrent state after this pass, float32 (its cache)"},
      {Point::Z, "layers.{i}.z", "z", "[B,T,heads,d_v]",
       "each head's attention output (after any output gate), the input of o_proj (TransformerLens hook_z)"},
      {Point::AttnOutput, "layers.{i}.attn_output", "attentions_output", "[B,T,H]",
       "output of the HF attention module"},
      {Point::ResidMid, "layers.{i}.resid_mid", "resid_mid", "[B,T,H]",
       "residual stream after the attention branch is added (sequential blocks only)"},
      {Point::MlpInput, "layers.{i}.mlp_input", "mlps_input", "[B,T,H]",
       "input of the MLP module (after the block's pre-MLP norm, if any)"},
      {Point::RouterLogits, "layers.{i}.router_logits", "router_logits", "[B*T,experts]",
       "mixture-of-experts router logits (MoE layers only)"},
      {Point::ExpertIndices, "layers.{i}.expert_indices", "expert_indices", "[B*T,k]",
       "the k experts each token is routed to, int64 (MoE layers only; writable: re-route)"},
      {Point::ExpertWeights, "layers.{i}.expert_weights", "expert_weights", "[B*T,k]",
       "their routing weights, float32, as the router computed them (writable: re-weight or ablate)"},
      {Point::MlpHidden, "layers.{i}.mlp_hidden", "mlp_hidden", "[B,T,intermediate]",
       "the MLP's neurons: act(up(x)), or act(gate(x))·up(x), the input of down_proj (dense MLP layers only)"},
      {Point::MlpOutput, "layers.{i}.mlp_output", "mlps_output", "[B,T,H]",
       "output of the HF MLP / MoE module"},
      {Point::LayerOutput, "layers.{i}.output", "layers_output", "[B,T,H]",
       "residual stream leaving block i"},
      {Point::FinalNorm, "ln_final.output", "ln_final", "[B,T,H]", "output of the final norm"},
      {Point::Logits, "logits", "logits", "[B,T,V]", "output of lm_head (after final soft-capping/scaling)"},
  };
  return table;
}

bool PointInfo::per_layer() const { return std::strstr(pattern, "{i}") != nullptr; }

const PointInfo& point_info(Point point) { return point_table().at(static_cast<size_t>(point)); }

std::string PointId::name() const {
  return expand_name_pattern(point_info(point).pattern, layer);
}

static int stage(const PointId& p) {
  // Embed comes before every layer; ln_final and logits after every layer.
  if (p.point == Point::Embed) return -1;
  if (p.point == Point::FinalNorm || p.point == Point::Logits) return 1 << 30;
  return p.layer;
}

bool PointId::before(const PointId& o) const {
  int a = stage(*this), b = stage(o);
  if (a != b) return a < b;
  return static_cast<int>(point) < static_cast<int>(o.point);
}

PointId parse_point(std::string_view name) {
  // A per-layer name is "layers.<n>.<rest>": replace the number by "{i}" and look the pattern up.
  std::string pattern(name);
  int layer = -1;
  if (name.rfind("layers.", 0) == 0) {
    size_t start = 7, end = start;
    while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
    if (end > start && end - start < 9) {
      layer = std::stoi(std::string(name.substr(start, end - start)));
      pattern = "layers.{i}" + std::string(name.substr(end));
    }
  }
  for (const auto& info : point_table())
    if (pattern == info.pattern) return PointId{info.point, info.per_layer() ? layer : -1};
  std::vector<std::string> patterns;
  for (const auto& info : point_table()) patterns.emplace_back(info.pattern);
  throw Error(ErrorKind::InvalidArgument, std::string(name), "unknown point name",
              "did you mean '" + nearest_name(pattern, patterns) + "'? (`nnterp points` lists them all)");
}

}  // namespace nnterp
