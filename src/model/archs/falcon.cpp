// falcon: like gpt_neox (parallel LayerNorm blocks with a fused query_key_value, rotary
// rotate_half over the full head), except no biases unless `bias`, exact gelu, ffn_hidden_size,
// tied lm_head, and three layouts chosen by the config:
//  * new_decoder_architecture (40B/180B): GQA with num_kv_heads; fused rows per kv group
//    [q × heads/kv, k, v]; two norms ln_attn / ln_mlp (or one input_layernorm when
//    num_ln_in_parallel_attn = 1), always parallel;
//  * multi_query (7B): one k/v head, rows [q | k | v]; input_layernorm;
//  * neither: rows interleaved per head [q, k, v] like NeoX; input_layernorm.
// Old-architecture blocks are parallel when parallel_attn (single norm), else sequential with
// post_attention_layernorm. Unsupported: alibi=true (Falcon-RW adds the bias before scaling).
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec falcon(const Config& c) {
  ArchSpec a;
  a.name = "falcon";
  a.hf_class = "FalconForCausalLM";
  if (c.boolean_or({"alibi"}, false))
    throw Error(ErrorKind::Unsupported, c.source(), "Falcon with alibi=true (Falcon-RW) is not supported",
                "only rotary Falcon models (7B/40B/180B/11B style) are implemented");
  read_sizes(a, c, {{"hidden_size", "n_embed"}, {"num_hidden_layers", "n_layer"}, {"num_attention_heads", "n_head"},
                    {"layer_norm_epsilon"}});
  const bool new_arch = c.boolean_or({"new_decoder_architecture"}, false);
  const bool multi_query = c.boolean_or({"multi_query"}, true);
  const bool parallel = c.boolean_or({"parallel_attn"}, true);
  const int64_t heads = a.attn.num_heads;
  a.attn.num_kv_heads = new_arch ? c.integer_or({"num_kv_heads", "n_head_kv"}, heads) : (multi_query ? 1 : heads);
  a.positions = PositionKind::Rotary;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"activation"}, "gelu"), c.source());
  a.mlp.intermediate = c.integer_or({"ffn_hidden_size"}, 4 * a.hidden);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  LayerSpec layer;
  layer.positions = PositionKind::Rotary;
  layer.rotary = rotary_from_config(c, a.attn.head_dim, RotaryLayout::Half);
  a.layers = uniform_layers(a.num_layers, layer);

  auto& w = a.weights;
  const std::string L = "transformer.h.{i}.";
  const bool two_norms = new_arch && c.integer_or({"num_ln_in_parallel_attn"}, 2) == 2;
  if (new_arch && !two_norms && !parallel)
    throw Error(ErrorKind::Unsupported, c.source(),
                "new_decoder_architecture with num_ln_in_parallel_attn=1 and parallel_attn=false is not supported");
  if (new_arch || parallel) {
    a.residual = Residual::Parallel;
    a.pre_mlp_norm = two_norms;
    a.quirks.parallel_branches_summed_first = true;  // mlp_output + attention_output, then + residual
  }
  if (two_norms) {
    map_norm(w, Weight::AttnNorm, L + "ln_attn", true);
    map_norm(w, Weight::MlpNorm, L + "ln_mlp", true);
  } else {
    map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
    if (a.pre_mlp_norm) map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", true);
  }
  const WeightTransform packing = new_arch ? WeightTransform::QkvFalconGroups
                                  : multi_query ? WeightTransform::None
                                                : WeightTransform::QkvPerHeadInterleaved;
  w[Weight::Embed] = src("transformer.word_embeddings.weight");
  w[Weight::Qkv] = {{L + "self_attention.query_key_value.weight"}, packing};
  w[Weight::QkvBias] = {{L + "self_attention.query_key_value.bias"}, packing, true};
  map_linear(w, Weight::O, L + "self_attention.dense", true);
  map_linear(w, Weight::Up, L + "mlp.dense_h_to_4h", true);
  map_linear(w, Weight::Down, L + "mlp.dense_4h_to_h", true);
  map_norm(w, Weight::FinalNorm, "transformer.ln_f", true);
  w[Weight::LmHead] = src("lm_head.weight");
  // Checkpoints exported from the original RefinedWeb code keep the rotary buffer.
  a.ignored_weights = {L + "self_attention.maybe_rotary.inv_freq", L + "self_attention.rotary_emb.inv_freq"};
  return a;
}

NNTERP_ARCH("falcon", falcon)

}  // namespace nnterp::model
