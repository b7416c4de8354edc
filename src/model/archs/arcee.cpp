// arcee (AFM): llama attention with an MLP without gate, down(relu(up(x))²) (`hidden_act` relu2),
// and yarn rope scaling (cos/sin × the attention factor; a lone `mscale` key has no effect, as in HF).
#include "model/arch.hpp"

namespace nnterp::model {

static ArchSpec arcee(const Config& c) {
  ArchSpec a = llama_like(c, "arcee", "ArceeForCausalLM");
  a.mlp.kind = MlpKind::Plain;
  a.mlp.activation = activation_from_name(c.string_or({"hidden_act"}, "relu2"), c.source());
  const std::string L = "model.layers.{i}.";
  a.weights.erase(Weight::GateUp);
  map_linear(a.weights, Weight::Up, L + "mlp.up_proj", true);
  map_linear(a.weights, Weight::Down, L + "mlp.down_proj", true);
  return a;
}

NNTERP_ARCH("arcee", arcee)

}  // namespace nnterp::model
