// Loading a checkpoint into standardized weights, driven by ArchSpec::weights.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "model/arch.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::model {

// The row blocks of one projection weight, in order: its output rows are theirs concatenated.
using RowBlocks = std::vector<torch::Tensor>;

class Weights {
 public:
  // Standardized weight (layers.3.attn.qkv.weight) → tensor; absent optional weights are absent.
  std::map<WeightId, torch::Tensor> tensors;
  // Fused weights (q|k|v, gate|up) whose parts are used in place from the file instead, kept as
  // their row blocks (absent from `tensors`).
  std::map<WeightId, RowBlocks> row_blocks;
  // Standardized weight → the checkpoint names it was built from (for `nnterp info`).
  std::map<WeightId, std::vector<std::string>> sources;

  const torch::Tensor* find(const WeightId& id) const;
  // Throws Error(MissingWeight) naming the weight when absent.
  const torch::Tensor& get(const WeightId& id) const;
  // An undefined tensor when absent.
  torch::Tensor get_or_undefined(const WeightId& id) const;
  // A weight as row blocks: its blocks, or its tensor as the one block; empty when absent.
  RowBlocks rows_or_empty(const WeightId& id) const;
  RowBlocks rows(const WeightId& id) const;  // throws Error(MissingWeight) when absent
};

// Where the weights go: their dtype (the model's) and device.
struct WeightPlacement {
  WeightPlacement(torch::ScalarType dtype = torch::kFloat32, torch::Device device = torch::kCPU) : dtype(dtype), device(device) {}
  torch::ScalarType dtype;
  torch::Device device;
};

// Bytes of standardized weights used in place from the memory-mapped files, and built in memory.
struct WeightLoadStats {
  int64_t bytes_in_place = 0, bytes_copied = 0;
};

// Reads every standardized weight the spec maps: a Model-scoped weight once, a Layer-scoped one
// per layer, an Expert-scoped one per layer and expert. Reports all missing tensors at once (each
// with its HF and standardized name). A checkpoint tensor that nothing uses (and that
// spec.ignored_weights does not list) is handled by spec.unused_tensors: an error by default (an
// unused tensor means nnterp would silently run a different model), listing for each the nearest
// mapped HF tensor and its standardized weight.
// A weight stored in `placement.dtype` on the CPU that needs no re-ordering is the memory-mapped
// tensor itself, no copy: one part (a transposed view for GPT-2's Conv1D), or several parts kept as
// row blocks (q | k | v, gate | up). The others (converted, re-ordered) are built in
// memory, and the file pages of their sources are released right after (WeightStore::release), so
// that a fused QKV costs its size once, not twice, and the load's peak stays near the model's size.
Weights load_weights(const ArchSpec& spec, const io::WeightStore& store, const WeightPlacement& placement,
                     WeightLoadStats* stats = nullptr);

}  // namespace nnterp::model
