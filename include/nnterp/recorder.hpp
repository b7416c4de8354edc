// PointRecorder: hooks that keep (a chosen subset of) the standardized points of a forward pass.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nnterp/forward.hpp"

namespace nnterp {

class PointRecorder : public PointHooks {
 public:
  // Keep every point for which `keep` is true (all points when empty).
  explicit PointRecorder(std::function<bool(const PointId&)> keep = {}) : keep_(std::move(keep)) {}
  void at(const PointId& point, torch::Tensor& value) override;
  bool wants_attention_probs(int layer) override;

  // In forward order, named as in point_table() ("layers.0.attn_output").
  const std::vector<std::pair<std::string, torch::Tensor>>& records() const { return records_; }
  const torch::Tensor* find(const std::string& name) const;

 private:
  std::function<bool(const PointId&)> keep_;
  std::vector<std::pair<std::string, torch::Tensor>> records_;
};

}  // namespace nnterp
