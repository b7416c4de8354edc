// lfm2 (Liquid LFM2): `layer_types` mixes gated short-convolution layers ("conv": `conv.in_proj`
// → [b | c | x], depthwise causal `conv.conv` of conv_L_cache over b·x, c·that, `conv.out_proj`)
// with attention layers (per-head q_layernorm / k_layernorm before rotary, `out_proj`). Block
// h = x + mixer(operator_norm(x)), out = h + feed_forward(ffn_norm(h)), the SwiGLU w2(silu(w1)·w3)
// sized by block_auto_adjust_ff_dim; the final norm is `model.embedding_norm`. Tied. As in HF, the
// convolutions run over left pads too (HF's LFM2 does not mask them).
#include <algorithm>

#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

namespace {

// HF's block_auto_adjust_ff_dim: 2/3 of intermediate_size, × block_ffn_dim_multiplier, rounded up
// to a multiple of block_multiple_of.
int64_t feed_forward_size(const Config& c) {
  int64_t size = c.integer({"intermediate_size"});
  if (!c.boolean_or({"block_auto_adjust_ff_dim"}, false)) return size;
  size = static_cast<int64_t>(2.0 * static_cast<double>(size) / 3.0);
  if (c.has("block_ffn_dim_multiplier"))
    size = static_cast<int64_t>(c.number({"block_ffn_dim_multiplier"}) * static_cast<double>(size));
  const int64_t multiple = std::max<int64_t>(1, c.integer_or({"block_multiple_of"}, 256));
  return multiple * ((size + multiple - 1) / multiple);
}

std::vector<bool> conv_layers(const Config& c, int64_t n) {
  std::vector<bool> conv(static_cast<size_t>(n), true);
  if (!c.has("layer_types")) {
    for (int64_t i : c.integers_or({"full_attn_idxs"}, {}))
      if (i >= 0 && i < n) conv[i] = false;
    return conv;
  }
  const auto types = c.strings_or({"layer_types"}, {});
  if (types.size() != static_cast<size_t>(n))
    throw Error(ErrorKind::Config, c.source(), "'layer_types' should list one type per layer (" + std::to_string(n) + ")");
  for (int64_t i = 0; i < n; ++i) {
    if (types[i] != "conv" && types[i] != "full_attention")
      throw Error(ErrorKind::Unsupported, c.source(), "lfm2 layer type \"" + types[i] + "\" is not supported",
                  "supported layer types: conv, full_attention");
    conv[i] = types[i] == "conv";
  }
  return conv;
}

}  // namespace

static ArchSpec lfm2(const Config& c) {
  ArchSpec a = llama_like(c, "lfm2", "Lfm2ForCausalLM");
  a.norm.eps = c.number_or({"norm_eps"}, 1e-5);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings", "tie_embedding"}, true);
  a.mlp.intermediate = feed_forward_size(c);
  const std::string L = "model.layers.{i}.", F = L + "feed_forward.", C = L + "conv.";
  map_norm(a.weights, Weight::AttnNorm, L + "operator_norm", false);
  map_norm(a.weights, Weight::MlpNorm, L + "ffn_norm", false);
  a.weights[Weight::FinalNorm] = src("model.embedding_norm.weight");
  a.weights[Weight::GateUp] = cat({F + "w1.weight", F + "w3.weight"});
  a.weights[Weight::Down] = src(F + "w2.weight");
  a.weights.erase(Weight::OBias);
  map_linear(a.weights, Weight::O, L + "self_attn.out_proj", true);
  use_qk_norm(a, QkNorm::PerHead, L + "self_attn.q_layernorm", L + "self_attn.k_layernorm");

  a.short_conv_kernel = c.integer_or({"conv_L_cache"}, 3);
  const auto conv = conv_layers(c, a.num_layers);
  for (int64_t i = 0; i < a.num_layers; ++i)
    if (conv[i]) a.layers[i].mixer = Mixer::ShortConv, a.layers[i].positions = PositionKind::None;
  map_linear(a.weights, Weight::ConvIn, C + "in_proj", true);
  map_linear(a.weights, Weight::ConvKernel, C + "conv", true);
  map_linear(a.weights, Weight::ConvOut, C + "out_proj", true);
  if (std::find(conv.begin(), conv.end(), true) != conv.end())
    a.padding_dependence = "short-convolution layers run over the left pads too (HF's LFM2 does not mask them), "
                           "so a row's pads flow into its first real tokens";
  return a;
}

NNTERP_ARCH("lfm2", lfm2)

}  // namespace nnterp::model
