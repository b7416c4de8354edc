// bloom: like gpt2, except ALiBi (Bloom slopes, key positions without pads) instead of learned
// positions, a LayerNorm right after the embedding, nn.Linear weights, fused `query_key_value`
// interleaved per head, MLP width fixed at 4·hidden (bloom_gelu = tanh gelu), and HF's attention /
// MLP module outputs include the residual. Hub checkpoints are saved without `transformer.`.
// Unsupported: apply_residual_connection_post_layernorm=true.
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec bloom(const Config& c) {
  ArchSpec a;
  a.name = "bloom";
  a.hf_class = "BloomForCausalLM";
  if (c.boolean_or({"apply_residual_connection_post_layernorm"}, false))
    throw Error(ErrorKind::Unsupported, c.source(), "apply_residual_connection_post_layernorm=true is not supported",
                "only Bloom models whose residual is the block input are implemented");
  read_sizes(a, c, {{"hidden_size", "n_embed"}, {"n_layer", "num_hidden_layers"}, {"n_head", "num_attention_heads"},
                    {"layer_norm_epsilon"}});
  a.embed_norm = true;
  a.positions = PositionKind::Alibi;
  a.alibi = AlibiKind::Bloom;
  a.attn.score_rounding = ScoreRounding::AfterAlibi;  // alibi.baddbmm(q, k, alpha = 1/sqrt(hd))
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = Activation::GeluTanh;
  a.mlp.intermediate = 4 * a.hidden;
  a.quirks.attn_output_includes_residual = a.quirks.mlp_output_includes_residual = true;
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  a.layers = uniform_layers(a.num_layers, LayerSpec{});

  auto& w = a.weights;
  const std::string L = "transformer.h.{i}.";
  w[Weight::Embed] = src("transformer.word_embeddings.weight");
  map_norm(w, Weight::EmbedNorm, "transformer.word_embeddings_layernorm", true);
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
  map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", true);
  w[Weight::Qkv] = {{L + "self_attention.query_key_value.weight"}, WeightTransform::QkvPerHeadInterleaved};
  w[Weight::QkvBias] = {{L + "self_attention.query_key_value.bias"}, WeightTransform::QkvPerHeadInterleaved, true};
  map_linear(w, Weight::O, L + "self_attention.dense", true);
  map_linear(w, Weight::Up, L + "mlp.dense_h_to_4h", true);
  map_linear(w, Weight::Down, L + "mlp.dense_4h_to_h", true);
  map_norm(w, Weight::FinalNorm, "transformer.ln_f", true);
  w[Weight::LmHead] = src("lm_head.weight");
  a.prefix_aliases = {{"transformer.", ""}};
  return a;
}

NNTERP_ARCH("bloom", bloom)

}  // namespace nnterp::model
