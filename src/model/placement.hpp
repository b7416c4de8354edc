// Where a model's weights go: the dtype (LoadOptions::dtype resolved, "auto" included), the
// device (checked against the libtorch nnterp runs on), and whether they fit in memory.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "model/weights.hpp"
#include "nnterp/config.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::model {

// float32 / bfloat16 / float16 as asked; kAutoDType: config.json's dtype (torch_dtype), else the
// checkpoint's floating dtype. Errors: a dtype that is not one of the three (naming
// LoadOptions::dtype or config.json's key), and, under auto, shards that disagree in dtype.
torch::ScalarType resolve_dtype(const std::optional<torch::ScalarType>& requested, const Config& config,
                                const io::WeightStore& store);
// Throws when the device is unusable from this libtorch (CPU-only build, missing GPU index).
void check_device(const torch::Device& device, const std::string& option = "LoadOptions::device");
// Throws, before anything is converted, when the weights converted to `dtype` cannot fit in the
// memory this machine has available (a 16 GB bf16 checkpoint in float32 on a 24 GB machine).
void check_memory_for(const io::WeightStore& store, const WeightPlacement& placement);
// The process's peak resident memory so far (VmHWM), 0 where unknown.
int64_t peak_rss_bytes();

}  // namespace nnterp::model
