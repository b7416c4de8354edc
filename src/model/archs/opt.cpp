// opt: like gpt2, except nn.Linear weights (not Conv1D), separate q/k/v/out_proj, learned
// positions with an offset of 2 (row position_id + 2), a ReLU MLP fc1/fc2 on the flattened tokens
// (same math), keys `model.decoder.*` (hub checkpoints saved from OPTModel lack `model.`), tied.
// Unsupported: the post-LN variant (do_layer_norm_before=false, OPT-350m), project_in/out
// (word_embed_proj_dim != hidden_size) and _remove_final_layer_norm.
#include "model/arch.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

static ArchSpec opt(const Config& c) {
  ArchSpec a;
  a.name = "opt";
  a.hf_class = "OPTForCausalLM";
  a.attn.scale_query = true;  // q_proj(x) * scaling, rounded, then q·k
  read_sizes(a, c, {{"hidden_size"}, {"num_hidden_layers"}, {"num_attention_heads"}, {/* fixed 1e-5 */}, {"max_position_embeddings"}});
  auto unsupported = [&](const std::string& what, const std::string& hint) {
    throw Error(ErrorKind::Unsupported, c.source(), what + " is not supported", hint);
  };
  if (!c.boolean_or({"do_layer_norm_before"}, true))
    unsupported("do_layer_norm_before=false (post-LayerNorm OPT, e.g. opt-350m)", "only pre-LayerNorm OPT models are implemented");
  if (c.integer_or({"word_embed_proj_dim"}, a.hidden) != a.hidden)
    unsupported("word_embed_proj_dim != hidden_size (project_in / project_out)", "only OPT models without embedding projections are implemented");
  if (c.boolean_or({"_remove_final_layer_norm"}, false)) unsupported("_remove_final_layer_norm=true", "");
  const bool affine = c.boolean_or({"layer_norm_elementwise_affine"}, true);
  if (!affine) a.norm.kind = NormKind::NonParametricLayerNorm;
  a.positions = PositionKind::Learned;
  a.learned_position_offset = 2;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"activation_function"}, "relu"), c.source());
  a.mlp.intermediate = c.integer({"ffn_dim"});
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);
  a.layers = uniform_layers(a.num_layers, LayerSpec{});

  auto& w = a.weights;
  const std::string D = "model.decoder.", L = D + "layers.{i}.";
  auto norm = [&](Weight weight, const std::string& hf_prefix) {
    if (affine) map_norm(w, weight, hf_prefix, true);
  };
  w[Weight::Embed] = src(D + "embed_tokens.weight");
  w[Weight::PosEmbed] = src(D + "embed_positions.weight");
  norm(Weight::AttnNorm, L + "self_attn_layer_norm");
  norm(Weight::MlpNorm, L + "final_layer_norm");
  const std::string A = L + "self_attn.";
  w[Weight::Qkv] = cat({A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"});
  w[Weight::QkvBias] = cat({A + "q_proj.bias", A + "k_proj.bias", A + "v_proj.bias"}, true);
  map_linear(w, Weight::O, A + "out_proj", true);
  map_linear(w, Weight::Up, L + "fc1", true);
  map_linear(w, Weight::Down, L + "fc2", true);
  norm(Weight::FinalNorm, D + "final_layer_norm");
  w[Weight::LmHead] = src("lm_head.weight");
  a.prefix_aliases = {{"model.", ""}};
  return a;
}

NNTERP_ARCH("opt", opt)

}  // namespace nnterp::model
