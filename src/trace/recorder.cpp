#include "nnterp/recorder.hpp"

namespace nnterp {

void PointRecorder::at(const PointId& point, torch::Tensor& value) {
  // The decoder never edits a tapped tensor in place, so keeping a reference is enough.
  if (!keep_ || keep_(point)) records_.emplace_back(point.name(), value);
}

bool PointRecorder::wants_attention_probs(int layer) {
  return !keep_ || keep_(PointId{Point::AttnProbs, layer});
}

const torch::Tensor* PointRecorder::find(const std::string& name) const {
  for (const auto& [n, t] : records_)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace nnterp
