// Must NOT compile (test compile_fail.weight_key_misspelled:
// passes only when the compiler rejects the misspelled key by name): a misspelled
// standardized weight key is a compile error, not a weight silently dropped at load time.
// Identical to weight_key_ok.cpp except for the one misspelling.
#include "model/arch.hpp"

namespace nnterp::model {

void map_attention(WeightMap& w) {
  const std::string L = "model.layers.{i}.self_attn.";
  w[Weight::Qvk] = cat({L + "q_proj.weight", L + "k_proj.weight", L + "v_proj.weight"});
  map_linear(w, Weight::O, L + "o_proj", true);
}

}  // namespace nnterp::model
