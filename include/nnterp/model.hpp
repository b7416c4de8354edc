// StandardizedTransformer: the model (nnterp/language_model.hpp) with nnterp's trace and
// generation, the class most programs use.
//
//   nnterp::StandardizedTransformer model("path/to/model");   // or a hub id in the local cache
//   model.trace("The capital of France is", [&](nnterp::Trace& t) { h5 = t.layers_output[5].clone(); });
#pragma once

#include "nnterp/generate.hpp"
#include "nnterp/language_model.hpp"
#include "nnterp/trace.hpp"

namespace nnterp {

class StandardizedTransformer : public LanguageModel {
 public:
  using LanguageModel::LanguageModel;

  // Runs `body` in lock-step with one forward pass (see trace.hpp); returns the logits
  // (undefined if the body called stop()).
  torch::Tensor trace(const TraceInput& inputs, const TraceBody& body, const TraceOptions& options = {}) const {
    return run_trace(*this, tokenize(inputs), body, options);
  }
  // Batched generation with a KV cache; `body` intervenes at chosen steps (see generate.hpp).
  GenerateResult generate(const TraceInput& inputs, const GenerateOptions& options = {}, const StepBody& body = {}) const {
    return nnterp::generate(*this, inputs, options, body);
  }
};

}  // namespace nnterp
