// arcee (AFM): llama attention with an MLP without gate, down(relu(up(x))²) (`hidden_act` relu2),
// and yarn rope scaling (cos/sin × the attention factor; a lone `mscale` key has no effect, as in HF).
#include "model/archs/relatives.hpp"

namespace nnterp::model {

void use_ungated_mlp(ArchSpec& a) {
  const std::string M = "model.layers.{i}.mlp.";
  a.mlp.kind = MlpKind::Plain;
  a.weights.erase(Weight::GateUp);
  map_linear(a.weights, Weight::Up, M + "up_proj", true);
  map_linear(a.weights, Weight::Down, M + "down_proj", true);
}

static ArchSpec arcee(const Config& c) {
  ArchSpec a = llama_like(c, "arcee", "ArceeForCausalLM");
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "relu2"), c.source());
  use_ungated_mlp(a);
  return a;
}

NNTERP_ARCH("arcee", arcee)

}  // namespace nnterp::model
