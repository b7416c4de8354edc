// gpt2: pre-LayerNorm blocks with biases everywhere, learned absolute positions, fused Conv1D
// c_attn ([in, out] storage, q|k|v), gelu_new MLP, tied lm_head.
#include "model/archs/relatives.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

ArchSpec gpt2(const Config& c) {
  ArchSpec a;
  a.name = "gpt2";
  a.hf_class = "GPT2LMHeadModel";
  read_sizes(a, c, {{"n_embd", "hidden_size"}, {"n_layer", "num_hidden_layers"}, {"n_head", "num_attention_heads"},
                    {"layer_norm_epsilon"}, {"n_positions", "max_position_embeddings"}});
  if (!c.boolean_or({"scale_attn_weights"}, true)) a.attn.scale = 1.0;
  if (c.boolean_or({"scale_attn_by_inverse_layer_idx"}, false))
    throw Error(ErrorKind::Unsupported, c.source(), "scale_attn_by_inverse_layer_idx=true is not supported");
  a.positions = PositionKind::Learned;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"activation_function"}, "gelu_new"), c.source());
  a.mlp.intermediate = c.integer_or({"n_inner"}, 4 * a.hidden);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  a.layers = uniform_layers(a.num_layers, LayerSpec{});

  auto conv1d = [](const std::string& name) { return WeightSource{{name}, WeightTransform::Transpose, false}; };
  auto& w = a.weights;
  const std::string L = "transformer.h.{i}.";
  w[Weight::Embed] = src("transformer.wte.weight");
  w[Weight::PosEmbed] = src("transformer.wpe.weight");
  map_norm(w, Weight::AttnNorm, L + "ln_1", true);
  map_norm(w, Weight::MlpNorm, L + "ln_2", true);
  w[Weight::Qkv] = conv1d(L + "attn.c_attn.weight");
  w[Weight::QkvBias] = src(L + "attn.c_attn.bias");
  w[Weight::O] = conv1d(L + "attn.c_proj.weight");
  w[Weight::OBias] = src(L + "attn.c_proj.bias");
  w[Weight::Up] = conv1d(L + "mlp.c_fc.weight");
  w[Weight::UpBias] = src(L + "mlp.c_fc.bias");
  w[Weight::Down] = conv1d(L + "mlp.c_proj.weight");
  w[Weight::DownBias] = src(L + "mlp.c_proj.bias");
  map_norm(w, Weight::FinalNorm, "transformer.ln_f", true);
  w[Weight::LmHead] = src("lm_head.weight");
  // Old checkpoints carry the causal-mask buffers as tensors.
  a.ignored_weights = {L + "attn.bias", L + "attn.masked_bias", "h.{i}.attn.bias", "h.{i}.attn.masked_bias"};
  a.prefix_aliases = {{"transformer.", ""}};
  return a;
}

NNTERP_ARCH("gpt2", gpt2)

}  // namespace nnterp::model
