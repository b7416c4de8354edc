// The standardized points of a forward pass, defined once. Every architecture exposes the same
// points under the same names; printing, parsing, `nnterp points`, dumps and the trace use this table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nnterp {

// Enumerators are in forward order: within a layer, a point listed later is computed later.
enum class Point {
  Embed,         // embed.output             [B,T,H]  token embeddings (before positions/scaling outside the module)
  LayerInput,    // layers.{i}.input         [B,T,H]  residual stream entering block i
  AttnInput,     // layers.{i}.attn_input    [B,T,H]  input of the attention module (after its pre-norm)
  Query,         // layers.{i}.q             [B,heads,T,d_head]     after QK-norm and rotary
  Key,           // layers.{i}.k             [B,kv_heads,T,d_head]  after QK-norm and rotary, before GQA repeat
  Value,         // layers.{i}.v             [B,kv_heads,T,d_head]
  AttnScores,    // layers.{i}.attn_scores   [B,heads,T,S]  pre-softmax scores (scaled, soft-capped, masked)
  AttnProbs,     // layers.{i}.attn_probs    [B,heads,T,S]  post-softmax attention weights
  ConvState,     // layers.{i}.conv_state    [B,channels,K-1]  conv inputs a conv mixer keeps after this pass
  RecurrentState,// layers.{i}.recurrent_state [B,value_heads,dk,dv]  Gated DeltaNet's state after this pass
  Z,             // layers.{i}.z             [B,T,heads,d_v]  per-head attention output, the input of o_proj
  AttnOutput,    // layers.{i}.attn_output   [B,T,H]  output of the HF attention module
  ResidMid,      // layers.{i}.resid_mid     [B,T,H]  residual stream after the attention add
  MlpInput,      // layers.{i}.mlp_input     [B,T,H]  input of the MLP module (after its pre-norm)
  RouterLogits,  // layers.{i}.router_logits [B*T,experts]  MoE router logits
  ExpertIndices, // layers.{i}.expert_indices [B*T,k]     the experts each token is routed to (int64)
  ExpertWeights, // layers.{i}.expert_weights [B*T,k]     their routing weights (float32)
  MlpHidden,     // layers.{i}.mlp_hidden    [B,T,intermediate]  the MLP's neurons, input of down_proj
  MlpOutput,     // layers.{i}.mlp_output    [B,T,H]  output of the HF MLP/MoE module
  LayerOutput,   // layers.{i}.output        [B,T,H]  residual stream leaving block i
  FinalNorm,     // ln_final.output          [B,T,H]
  Logits,        // logits                   [B,T,V]
};

struct PointInfo {
  Point point;
  const char* pattern;      // "layers.{i}.attn_output"; "{i}" marks a per-layer point
  const char* trace_name;   // the nnterp (Python) accessor name: "attentions_output"
  const char* shape;        // documented shape
  const char* meaning;
  bool per_layer() const;
};

// All points, in forward order.
const std::vector<PointInfo>& point_table();
const PointInfo& point_info(Point point);

// A point at a layer (layer is -1 for points that are not per layer).
struct PointId {
  Point point;
  int layer = -1;
  std::string name() const;  // "layers.3.attn_output", "logits"
  bool operator==(const PointId& o) const { return point == o.point && layer == o.layer; }
  bool operator!=(const PointId& o) const { return !(*this == o); }
  // Forward order: embed < layer 0 points < ... < layer L-1 points < ln_final < logits.
  bool before(const PointId& o) const;
};

// Parses "layers.3.attn_output", "embed.output", "logits", ... An unknown name throws an
// Error naming the closest known pattern.
PointId parse_point(std::string_view name);

}  // namespace nnterp
