// Batch encodings as torch tensors (kept apart from nnterp/tokenizer.hpp so that the tokenizer
// itself stays torch-free).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "nnterp/token_batch.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {

using BatchTensors = TokenBatch;

// Converts a (rectangular) BatchEncoding to int64 [B, T] tensors on the CPU.
BatchTensors to_tensors(const BatchEncoding& batch);

// Encodes `texts` (left-padded by default) straight to tensors.
BatchTensors encode_batch_tensors(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                  const BatchOptions& options = {});

}  // namespace nnterp
