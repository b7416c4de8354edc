// gptj: like gpt2, except nn.Linear weights, separate q/k/v/out_proj without bias, rotary
// (theta 1e4) on the first rotary_dim dims with the interleaved (rotate_every_two) layout instead
// of learned positions, a parallel block with the single ln_1: x + attn(ln_1(x)) + mlp(ln_1(x)),
// fc_in/fc_out and lm_head with biases, untied.
#include "model/archs/relatives.hpp"

namespace nnterp::model {

ArchSpec gptj(const Config& c) {
  ArchSpec a;
  a.name = "gptj";
  a.hf_class = "GPTJForCausalLM";
  read_sizes(a, c, {{"n_embd", "hidden_size"}, {"n_layer", "num_hidden_layers"}, {"n_head", "num_attention_heads"},
                    {"layer_norm_epsilon"}});
  a.residual = Residual::Parallel;
  a.pre_mlp_norm = false;
  a.quirks.parallel_branches_summed_first = true;  // attn + feed_forward + residual
  a.attn.score_rounding = ScoreRounding::Never;      // _attn upcasts q and k to float32
  a.positions = PositionKind::Rotary;
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"activation_function"}, "gelu_new"), c.source());
  a.mlp.intermediate = c.integer_or({"n_inner"}, 4 * a.hidden);
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, false);
  LayerSpec layer;
  layer.positions = PositionKind::Rotary;
  layer.rotary.dim = c.integer_or({"rotary_dim"}, 64);  // GPTJConfig's default
  layer.rotary.layout = RotaryLayout::Interleaved;
  a.layers = uniform_layers(a.num_layers, layer);

  auto& w = a.weights;
  const std::string L = "transformer.h.{i}.", A = L + "attn.";
  w[Weight::Embed] = src("transformer.wte.weight");
  map_norm(w, Weight::AttnNorm, L + "ln_1", true);
  w[Weight::Qkv] = cat({A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"});
  w[Weight::O] = src(A + "out_proj.weight");
  map_linear(w, Weight::Up, L + "mlp.fc_in", true);
  map_linear(w, Weight::Down, L + "mlp.fc_out", true);
  map_norm(w, Weight::FinalNorm, "transformer.ln_f", true);
  map_linear(w, Weight::LmHead, "lm_head", true);
  // EleutherAI/gpt-j-6b carries the causal-mask buffers (and older exports the sin/cos table).
  a.ignored_weights = {A + "bias", A + "masked_bias", A + "embed_positions"};
  return a;
}

NNTERP_ARCH("gptj", gptj)

}  // namespace nnterp::model
