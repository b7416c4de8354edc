// Loading a checkpoint into standardized weights, driven by ArchSpec::weights.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "model/arch.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::model {

class Weights {
 public:
  // Standardized name ("layers.3.attn.qkv.weight") → tensor; absent optional weights are absent.
  std::map<std::string, torch::Tensor> tensors;
  // Standardized name → the checkpoint names it was built from (for `nnterp info`).
  std::map<std::string, std::vector<std::string>> sources;

  const torch::Tensor* find(const std::string& name) const;
  // Throws Error(MissingWeight) naming the weight when absent.
  const torch::Tensor& get(const std::string& name) const;
  // An undefined tensor when absent.
  torch::Tensor get_or_undefined(const std::string& name) const;
};

// Expands "{i}" / "{e}" in `pattern`.
std::string expand_name(const std::string& pattern, int64_t layer, int64_t expert = -1);

// Reads every standardized weight the spec maps. Reports all missing tensors at once, and every
// checkpoint tensor that nothing uses (unless listed in spec.ignored_weights) as an error: an
// unused tensor means nnterp would silently run a different model.
Weights load_weights(const ArchSpec& spec, const io::WeightStore& store, torch::ScalarType dtype);

}  // namespace nnterp::model
