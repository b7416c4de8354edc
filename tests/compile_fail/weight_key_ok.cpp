// Compiles: an architecture's weight map with correctly spelled keys (see tests/CMakeLists.txt,
// test compile_fail.weight_key_ok). Its twin weight_key_misspelled.cpp must not compile.
#include "model/arch.hpp"

namespace nnterp::model {

void map_attention(WeightMap& w) {
  const std::string L = "model.layers.{i}.self_attn.";
  w[Weight::Qkv] = cat({L + "q_proj.weight", L + "k_proj.weight", L + "v_proj.weight"});
  map_linear(w, Weight::O, L + "o_proj", true);
}

}  // namespace nnterp::model
