// Shared by the extension's files (python/src/): the pieces each binds, and the conversion of what
// Python passes as model input.
#pragma once

#include <pybind11/pybind11.h>
#include <torch/csrc/autograd/python_variable.h>  // THPVariable_Check
#include <torch/csrc/utils/pybind.h>                // at::Tensor <-> torch.Tensor, zero-copy

#include <memory>

#include "nnterp/model.hpp"

namespace nnterp::python {

namespace py = pybind11;

using ModelPtr = std::shared_ptr<StandardizedTransformer>;

// A prompt (str), a batch of prompts (list/tuple of str), token ids (a [B, T] or [T] integer
// tensor, every position attended), or a mapping/object with `input_ids` and `attention_mask`
// (what a tokenizer call returns). Anything else is a TypeError naming what was given.
TraceInput trace_input(const py::handle& inputs);

// GenerateOptions from Python keyword arguments (unknown names are a TypeError), and a
// GenerateResult as a dict (methods.cpp).
GenerateOptions generate_options(const py::dict& options);
py::dict generate_result(const GenerateResult& result);

void bind_errors(py::module_& m);
void bind_model(py::module_& m);
void bind_trace(py::module_& m);
void bind_methods(py::module_& m);
void bind_chat(py::module_& m);
void bind_sae(py::module_& m);
void bind_tuned_lens(py::module_& m);

}  // namespace nnterp::python
