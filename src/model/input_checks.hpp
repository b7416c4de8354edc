// Every check on what a forward pass is given: ids, mask, positions (decoder.cpp). Also run by
// LanguageModel::tokenize on token inputs, so that a bad TokenBatch fails before any work.
#pragma once

#include <cstdint>

#include "nnterp/forward.hpp"

namespace nnterp::model {

void check_forward_input(const ForwardInput& in, int64_t past, int64_t vocab);

}  // namespace nnterp::model
