// llama4_text (Llama-4's language model, `Llama4ForCausalLM`): rotary layers (no_rope_layers[i] = 1)
// rotate interleaved pairs in float32 (llama3 scaling), then L2-normalise q and k without weight
// (use_qk_norm), and attend within chunks of attention_chunk_size real tokens; NoPE layers attend
// causally over everything, without QK-norm, with q × the temperature log1p(floor((c + 1) /
// floor_scale))·attn_scale + 1 at index c of the padded sequence. The MLP (`feed_forward`) is a
// dense SwiGLU of intermediate_size_mlp, or in moe_layers a top-k router (`router`) whose sigmoid
// weight multiplies the expert's input, experts fused across experts and stored for x @ W
// (`experts.gate_up_proj` [E, H, 2I] with [gate | up] columns, `experts.down_proj` [E, I, H]), plus
// `shared_expert`. Multimodal checkpoints nest this under `language_model` (not supported here).
#include <algorithm>

#include "model/archs/relatives.hpp"

namespace nnterp::model {

static ArchSpec llama4_text(const Config& c) {
  ArchSpec a = llama_like(c, "llama4_text", "Llama4ForCausalLM");
  a.mlp.intermediate = c.integer_or({"intermediate_size_mlp"}, a.mlp.intermediate);
  a.attn.rotary_precision = RotaryPrecision::Float32;
  const int64_t n = a.num_layers, chunk = c.integer_or({"attention_chunk_size"}, 8192);
  std::vector<int64_t> rope_layers(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rope_layers[i] = (i + 1) % 4 != 0;  // HF's default no_rope_layer_interval 4
  rope_layers = c.integers_or({"no_rope_layers"}, rope_layers);
  const auto types = c.strings_or({"layer_types"}, {});
  const bool tuning = c.boolean_or({"attn_temperature_tuning"}, true);
  for (int64_t i = 0; i < n; ++i) {
    auto& layer = a.layers[i];
    layer.rotary.layout = RotaryLayout::Interleaved;
    const bool rope = i < static_cast<int64_t>(rope_layers.size()) && rope_layers[i] != 0;
    const bool chunked = types.empty() ? rope : types[i] == "chunked_attention";
    if (!rope) layer.positions = PositionKind::None;
    layer.attention_chunk = chunked ? chunk : 0;
    layer.qk_norm = rope;
    layer.temperature_tuning = !rope && tuning;
  }
  if (c.boolean_or({"use_qk_norm"}, true)) a.attn.qk_norm = QkNorm::PerHead;
  a.attn.qk_norm_spec = {NormKind::NonParametricRMSNorm, a.norm.eps};
  a.attn.qk_norm_after_rotary = true;
  a.attn.temperature_scale = c.number_or({"attn_scale"}, 0.1);
  a.attn.temperature_floor = c.number_or({"floor_scale"}, 8192);
  if (tuning) a.padding_dependence = "NoPE layers scale q by a temperature of the index in the padded sequence (pads counted, HF's cache_position)";

  const std::string F = "model.layers.{i}.feed_forward.";
  a.weights[Weight::GateUp] = cat({F + "gate_proj.weight", F + "up_proj.weight"});
  a.weights[Weight::Down] = src(F + "down_proj.weight");
  const int64_t step = c.integer_or({"interleave_moe_layer_step"}, 1);
  std::vector<int64_t> moe_layers;
  for (int64_t i = step - 1; step > 0 && i < n; i += step) moe_layers.push_back(i);
  moe_layers = c.integers_or({"moe_layers"}, moe_layers);
  if (!set_moe_layers(a, [&](int64_t i) { return std::count(moe_layers.begin(), moe_layers.end(), i) > 0; })) return a;
  use_fused_moe(a, c.integer({"num_local_experts"}), c.integer_or({"num_experts_per_tok"}, 1), false, F + "router.weight",
                F + "experts.gate_up_proj", F + "experts.down_proj", WeightTransform::SelectExpertTransposed);
  a.mlp.moe.scoring = RouterScoring::Sigmoid;
  a.mlp.moe.weight_on_input = true;
  use_shared_expert(a, F + "shared_expert.");
  return a;
}

NNTERP_ARCH("llama4_text", llama4_text)

}  // namespace nnterp::model
