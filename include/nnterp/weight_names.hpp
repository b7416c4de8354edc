// The standardized weights, defined once. Every architecture file maps HuggingFace checkpoint
// tensors onto these keys (a misspelled key is a compile error), the one decoder reads them by
// key, and `nnterp info` / StandardizedTransformer::modules() print them by name. The table in
// src/core/weight_names.cpp gives each key its name, scope, module and shape.
#pragma once

#include <string>
#include <vector>

namespace nnterp {

// A norm's or projection's weight comes first, its bias right after (see bias_of).
enum class Weight {
  Embed,             // embed.weight                  [vocab, hidden]
  PosEmbed,          // pos_embed.weight              [positions, hidden] (learned absolute positions)
  EmbedNorm,         // embed_norm.weight             [hidden] (a norm right after the embedding: Bloom)
  EmbedNormBias,     // embed_norm.bias
  AttnNorm,          // layers.{i}.attn_norm.weight   [hidden] (the pre-attention norm)
  AttnNormBias,      // layers.{i}.attn_norm.bias
  MlpNorm,           // layers.{i}.mlp_norm.weight    [hidden] (the pre-MLP norm)
  MlpNormBias,       // layers.{i}.mlp_norm.bias
  PostAttnNorm,      // layers.{i}.post_attn_norm.weight  (norm of the attention output before the add)
  PostAttnNormBias,  // layers.{i}.post_attn_norm.bias
  PostMlpNorm,       // layers.{i}.post_mlp_norm.weight
  PostMlpNormBias,   // layers.{i}.post_mlp_norm.bias
  Qkv,               // layers.{i}.attn.qkv.weight    rows [q (heads·hd) | k (kv·hd) | v (kv·hd)]
  QkvBias,           // layers.{i}.attn.qkv.bias
  QNorm,             // layers.{i}.attn.q_norm.weight (QK-norm; [heads, hd] when per head and separate)
  QNormBias,         // layers.{i}.attn.q_norm.bias
  KNorm,             // layers.{i}.attn.k_norm.weight
  KNormBias,         // layers.{i}.attn.k_norm.bias
  O,                 // layers.{i}.attn.o.weight      [hidden, heads·hd]
  OBias,             // layers.{i}.attn.o.bias
  AttnSinks,         // layers.{i}.attn.sinks         [heads] (a logit per head that joins each softmax: gpt-oss)
  // Multi-head latent attention (DeepSeek-V2/V3), instead of Qkv:
  QA,                // layers.{i}.attn.q_a.weight    [q_lora_rank, hidden] (q's down projection)
  QABias,            // layers.{i}.attn.q_a.bias
  QANorm,            // layers.{i}.attn.q_a_norm.weight [q_lora_rank]
  QB,                // layers.{i}.attn.q_b.weight    [heads·(nope + rope), q_lora_rank or hidden]
  KvA,               // layers.{i}.attn.kv_a.weight   [kv_lora_rank + rope, hidden] (latent c | shared k_rope)
  KvABias,           // layers.{i}.attn.kv_a.bias
  KvANorm,           // layers.{i}.attn.kv_a_norm.weight [kv_lora_rank]
  KvB,               // layers.{i}.attn.kv_b.weight   [heads·(nope + v_head_dim), kv_lora_rank] (per head [k_nope | v])
  // A short-convolution mixer (LFM2), in a layer without attention:
  ConvIn,            // layers.{i}.conv.in.weight     [3·hidden, hidden] rows [b | c | x]
  ConvInBias,        // layers.{i}.conv.in.bias
  ConvKernel,        // layers.{i}.conv.kernel.weight [hidden, 1, kernel] (depthwise, causal)
  ConvKernelBias,    // layers.{i}.conv.kernel.bias
  ConvOut,           // layers.{i}.conv.out.weight    [hidden, hidden]
  ConvOutBias,       // layers.{i}.conv.out.bias
  // A Gated DeltaNet mixer (Qwen3-Next), in a layer without attention:
  DeltaQkvz,         // layers.{i}.deltanet.qkvz.weight  per key head [q | k | v (g heads) | z (g heads)]
  DeltaBa,           // layers.{i}.deltanet.ba.weight    per key head [b (g) | a (g)]
  DeltaConv,         // layers.{i}.deltanet.conv.weight  [2·key heads·dk + value heads·dv, 1, kernel]
  DeltaALog,         // layers.{i}.deltanet.a_log        [value heads]
  DeltaDtBias,       // layers.{i}.deltanet.dt_bias      [value heads]
  DeltaNorm,         // layers.{i}.deltanet.norm.weight  [dv] (the gated output norm)
  DeltaOut,          // layers.{i}.deltanet.out.weight   [hidden, value heads·dv]
  Up,                // layers.{i}.mlp.up.weight      [intermediate, hidden] (plain MLP)
  UpBias,            // layers.{i}.mlp.up.bias
  GateUp,            // layers.{i}.mlp.gate_up.weight rows [gate | up] (gated MLP)
  GateUpBias,        // layers.{i}.mlp.gate_up.bias
  Down,              // layers.{i}.mlp.down.weight    [hidden, intermediate]
  DownBias,          // layers.{i}.mlp.down.bias
  XieluAlphaP,       // layers.{i}.mlp.act.alpha_p    [1] (xIELU's parameters: Apertus)
  XieluAlphaN,       // layers.{i}.mlp.act.alpha_n    [1]
  XieluBeta,         // layers.{i}.mlp.act.beta       []
  XieluEps,          // layers.{i}.mlp.act.eps        []
  Router,            // layers.{i}.moe.router.weight  [experts, hidden]
  RouterBias,        // layers.{i}.moe.router.bias    [experts] (part of the router logits: gpt-oss)
  RouterScoreBias,   // layers.{i}.moe.router.score_bias [experts] (added to the scores to choose experts, not to weight them)
  ExpertGateUp,      // layers.{i}.moe.experts.{e}.gate_up.weight  rows [gate | up]
  ExpertGateUpBias,  // layers.{i}.moe.experts.{e}.gate_up.bias
  ExpertDown,        // layers.{i}.moe.experts.{e}.down.weight
  ExpertDownBias,    // layers.{i}.moe.experts.{e}.down.bias
  SharedGateUp,      // layers.{i}.moe.shared.gate_up.weight       (the shared expert)
  SharedDown,        // layers.{i}.moe.shared.down.weight
  SharedGate,        // layers.{i}.moe.shared_gate.weight          [1, hidden]
  FinalNorm,         // final_norm.weight             [hidden]
  FinalNormBias,     // final_norm.bias
  LmHead,            // lm_head.weight                [vocab, hidden]
  LmHeadBias,        // lm_head.bias
};

enum class WeightScope {
  Model,   // one tensor per model
  Layer,   // one per layer ("{i}" in the name)
  Expert,  // one per layer and expert ("{i}" and "{e}")
};

struct WeightInfo {
  Weight weight;
  const char* pattern;  // "layers.{i}.attn.qkv.weight"
  WeightScope scope;
  const char* module;   // the standardized module holding it: "embed_tokens", "self_attn", "mlp", "ln_final", "lm_head"
  const char* meaning;
};

// Every standardized weight, in the order of the enum.
const std::vector<WeightInfo>& weight_table();
const WeightInfo& weight_info(Weight weight);
// The bias paired with a norm or projection weight (Weight::Qkv → Weight::QkvBias); throws
// std::logic_error for a weight that has none (a bias, an embedding, a router).
Weight bias_of(Weight weight);
bool has_bias(Weight weight);

// One concrete tensor: a weight at a layer (and expert). Unused indices are -1.
struct WeightId {
  Weight weight;
  int layer = -1;
  int expert = -1;
  std::string name() const;    // "layers.3.attn.qkv.weight"
  std::string module() const;  // "layers.3.self_attn", "embed_tokens"
  bool operator<(const WeightId& o) const;
  bool operator==(const WeightId& o) const { return weight == o.weight && layer == o.layer && expert == o.expert; }
};

}  // namespace nnterp
