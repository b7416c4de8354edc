// Human-readable shapes and dtypes for error messages.
#pragma once

#include <torch/types.h>

#include <string>

namespace nnterp {

inline std::string shape_text(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

inline std::string tensor_text(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return shape_text(t.sizes()) + " " + c10::toString(t.scalar_type());
}

}  // namespace nnterp
