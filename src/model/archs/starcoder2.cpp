// starcoder2: like mistral (sliding window on every layer when set), except LayerNorms with
// bias, biases on q/k/v/o and on the plain MLP c_proj(gelu_tanh(c_fc(x))) (use_bias), and tied
// embeddings by default.
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec starcoder2(const Config& c) {
  ArchSpec a = llama_like(c, "starcoder2", "Starcoder2ForCausalLM");
  for (auto& layer : a.layers) layer.sliding_window = c.integer_or({"sliding_window"}, 0);
  a.norm = {NormKind::LayerNorm, c.number_or({"norm_epsilon"}, 1e-5)};
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "gelu_pytorch_tanh"), c.source());
  a.tie_embeddings = c.boolean_or({"tie_word_embeddings"}, true);

  auto& w = a.weights;
  const std::string L = "model.layers.{i}.";
  map_norm(w, Weight::AttnNorm, L + "input_layernorm", true);
  map_norm(w, Weight::MlpNorm, L + "post_attention_layernorm", true);
  map_norm(w, Weight::FinalNorm, "model.norm", true);
  w.erase(Weight::GateUp);
  map_linear(w, Weight::Up, L + "mlp.c_fc", true);
  map_linear(w, Weight::Down, L + "mlp.c_proj", true);
  return a;
}

NNTERP_ARCH("starcoder2", starcoder2)

}  // namespace nnterp::model
