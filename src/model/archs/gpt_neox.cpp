// gpt_neox: like llama, except LayerNorms with bias, a parallel residual with two norms
// x + attn(ln1(x)) + mlp(ln2(x)) (sequential when use_parallel_residual=false), fused
// `query_key_value` interleaved per head, partial rotary (rotary_pct) with rotate_half, biases
// everywhere, a plain gelu MLP, lm_head `embed_out`, untied; no GQA.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec gpt_neox(const Config& c) {
  ArchSpec a;
  a.name = "gpt_neox";
  a.hf_class = "GPTNeoXForCausalLM";
  read_sizes(a, c, {{"hidden_size"}, {"num_hidden_layers"}, {"num_attention_heads"}, {"layer_norm_eps"}});
  a.residual = c.boolean_or({"use_parallel_residual"}, true) ? Residual::Parallel : Residual::Sequential;
  a.quirks.parallel_branches_summed_first = true;  // mlp_output + attn_output + hidden_states
  a.positions = PositionKind::Rotary;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "gelu"), c.source());
  a.mlp.intermediate = c.integer({"intermediate_size"});
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, false);
  LayerSpec layer;
  layer.positions = PositionKind::Rotary;
  const double pct = c.number_or({"rotary_pct", "partial_rotary_factor"}, 0.25);
  layer.rotary = rotary_from_config(c, static_cast<int64_t>(a.attn.head_dim * pct), RotaryLayout::Half);
  a.layers = uniform_layers(a.num_layers, layer);

  auto& w = a.weights;
  const std::string L = "gpt_neox.layers.{i}.";
  w[Weight::Embed] = src("gpt_neox.embed_in.weight");
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
  map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", true);
  w[Weight::Qkv] = {{L + "attention.query_key_value.weight"}, WeightTransform::QkvPerHeadInterleaved};
  w[Weight::QkvBias] = {{L + "attention.query_key_value.bias"}, WeightTransform::QkvPerHeadInterleaved, true};
  map_linear(w, Weight::O, L + "attention.dense", true);
  map_linear(w, Weight::Up, L + "mlp.dense_h_to_4h", true);
  map_linear(w, Weight::Down, L + "mlp.dense_4h_to_h", true);
  map_norm(w, Weight::FinalNorm, "gpt_neox.final_layer_norm", true);
  w[Weight::LmHead] = src("embed_out.weight");
  // Pythia-era checkpoints carry the causal-mask and rotary buffers as tensors.
  a.ignored_weights = {L + "attention.bias", L + "attention.masked_bias", L + "attention.rotary_emb.inv_freq"};
  return a;
}

NNTERP_ARCH("gpt_neox", gpt_neox)

}  // namespace nnterp::model
