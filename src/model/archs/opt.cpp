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
  auto norm = [&](const std::string& std_prefix, const std::string& hf_prefix) {
    if (affine) map_norm(w, std_prefix, hf_prefix, true);
  };
  w["embed.weight"] = src(D + "embed_tokens.weight");
  w["pos_embed.weight"] = src(D + "embed_positions.weight");
  norm("layers.{i}.attn_norm", L + "self_attn_layer_norm");
  norm("layers.{i}.mlp_norm", L + "final_layer_norm");
  const std::string A = L + "self_attn.";
  w["layers.{i}.attn.qkv.weight"] = cat({A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"});
  w["layers.{i}.attn.qkv.bias"] = cat({A + "q_proj.bias", A + "k_proj.bias", A + "v_proj.bias"}, true);
  map_linear(w, "layers.{i}.attn.o", A + "out_proj", true);
  map_linear(w, "layers.{i}.mlp.up", L + "fc1", true);
  map_linear(w, "layers.{i}.mlp.down", L + "fc2", true);
  norm("final_norm", D + "final_layer_norm");
  w["lm_head.weight"] = src("lm_head.weight");
  a.prefix_aliases = {{"model.", ""}};
  return a;
}

NNTERP_ARCH("opt", opt)

}  // namespace nnterp::model
