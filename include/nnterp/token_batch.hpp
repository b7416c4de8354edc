// Token ids with their attention mask: what a tokenizer produces, an --inputs file holds and a
// forward pass or trace takes.
#pragma once

#include <torch/types.h>

namespace nnterp {

struct TokenBatch {
  torch::Tensor input_ids;       // int64 [B, T]
  torch::Tensor attention_mask;  // int64 [B, T], 0 on padding; undefined: all ones
};

}  // namespace nnterp
