// Load-time validation (nnterp's automatic tests): a tiny left-padded forward checks that every
// standardized point exists with its documented shape, that attention rows sum to 1, that the
// residual stream chains (layer i output = layer i+1 input), that zeroing attention to the first
// token changes the logits, and that the logits are finite.
#pragma once

#include <string>
#include <vector>

namespace nnterp {

class LanguageModel;

struct ValidationCheck {
  std::string name;    // "shape of layers.{i}.attn_probs"
  bool passed = false;
  std::string detail;  // what was measured / what went wrong
};

struct ValidationReport {
  std::vector<ValidationCheck> checks;
  bool passed() const;
  std::string failures() const;  // one line per failed check
};

ValidationReport validate_model(const LanguageModel& model);

}  // namespace nnterp
