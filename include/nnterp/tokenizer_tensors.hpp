// Batch encodings as torch tensors (kept apart from nnterp/tokenizer.hpp so that the tokenizer
// itself stays torch-free).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "nnterp/tokenizer.hpp"

namespace nnterp {

struct BatchTensors {
  torch::Tensor input_ids;       // int64 [B, T]
  torch::Tensor attention_mask;  // int64 [B, T], 0 on padding
};

// Converts a (rectangular) BatchEncoding to int64 [B, T] tensors on the CPU.
BatchTensors to_tensors(const BatchEncoding& batch);

// Encodes `texts` (left-padded by default) straight to tensors.
BatchTensors encode_batch_tensors(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                  const BatchOptions& options = {});

}  // namespace nnterp
