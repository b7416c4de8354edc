// nnterp._nnterp: the C++ engine for the Python package (python/nnterp/). This file binds the
// model, its tokenizer and the error translation; trace.cpp the trace, methods.cpp the methods.
// The package's Python code gives them the Python library's names (docs/python.md).
#include <pybind11/stl.h>

#include <map>

#include "bindings.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/params.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/threading.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::python {

namespace {

// The Python classes of nnterp's error kinds (nnterp/errors.py registers them at import).
std::map<ErrorKind, py::object>& error_classes() {
  static auto* classes = new std::map<ErrorKind, py::object>();  // never destroyed: lives as long as the interpreter
  return *classes;
}

const std::map<std::string, ErrorKind>& kind_names() {
  static const std::map<std::string, ErrorKind> names = {
      {"Io", ErrorKind::Io},
      {"Format", ErrorKind::Format},
      {"Config", ErrorKind::Config},
      {"Unsupported", ErrorKind::Unsupported},
      {"MissingWeight", ErrorKind::MissingWeight},
      {"UnexpectedWeight", ErrorKind::UnexpectedWeight},
      {"Shape", ErrorKind::Shape},
      {"NotFound", ErrorKind::NotFound},
      {"InvalidArgument", ErrorKind::InvalidArgument},
      {"OutOfOrder", ErrorKind::OutOfOrder},
      {"Tokenizer", ErrorKind::Tokenizer},
      {"Template", ErrorKind::Template},
  };
  return names;
}

void raise_python_error(const Error& e) {
  auto it = error_classes().find(e.kind());
  if (it == error_classes().end()) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return;
  }
  py::object error = it->second(e.what());
  error.attr("subject") = e.subject();
  error.attr("detail") = e.message();
  error.attr("hint") = e.hint();
  PyErr_SetObject(it->second.ptr(), error.ptr());
}

torch::Tensor as_ids(const torch::Tensor& ids) {
  if (ids.is_floating_point() || ids.is_complex() || ids.scalar_type() == torch::kBool)
    throw py::type_error("token ids must be an integer tensor, got " + std::string(c10::toString(ids.scalar_type())));
  if (ids.dim() == 1) return ids.unsqueeze(0).to(torch::kInt64);
  if (ids.dim() != 2) throw py::type_error("token ids must be [batch, tokens] or [tokens], got " + std::to_string(ids.dim()) + " dimensions");
  return ids.to(torch::kInt64);
}

}  // namespace

TraceInput trace_input(const py::handle& inputs) {
  if (py::isinstance<py::str>(inputs)) return TraceInput(inputs.cast<std::string>());
  if (THPVariable_Check(inputs.ptr())) {
    auto ids = as_ids(inputs.cast<torch::Tensor>());
    return TraceInput(TokenBatch{ids, torch::ones_like(ids)});
  }
  if ((py::isinstance<py::list>(inputs) || py::isinstance<py::tuple>(inputs))) {
    auto items = py::reinterpret_borrow<py::sequence>(inputs);
    std::vector<std::string> prompts;
    for (const auto& item : items) {
      if (!py::isinstance<py::str>(item))
        throw py::type_error("a batch of prompts must hold only str, got " + std::string(py::str(item.get_type())));
      prompts.push_back(item.cast<std::string>());
    }
    if (prompts.empty()) throw py::value_error("the batch of prompts is empty");
    return TraceInput(std::move(prompts));
  }
  const bool mapping = py::isinstance<py::dict>(inputs) || py::hasattr(inputs, "keys");
  auto field = [&](const char* name) -> py::object {
    if (mapping) return py::reinterpret_borrow<py::object>(inputs)[name];
    return py::getattr(inputs, name);
  };
  if (mapping ? py::reinterpret_borrow<py::object>(inputs).attr("__contains__")("input_ids").cast<bool>()
              : py::hasattr(inputs, "input_ids")) {
    auto ids = as_ids(field("input_ids").cast<torch::Tensor>());
    py::object mask = mapping ? py::reinterpret_borrow<py::object>(inputs).attr("get")("attention_mask", py::none())
                              : py::getattr(inputs, "attention_mask", py::none());
    auto m = mask.is_none() ? torch::ones_like(ids) : as_ids(mask.cast<torch::Tensor>());
    return TraceInput(TokenBatch{ids, m});
  }
  throw py::type_error("expected a prompt (str), a list of prompts, a tensor of token ids, or a mapping with "
                       "'input_ids' (and 'attention_mask'); got " + std::string(py::str(inputs.get_type())));
}

void bind_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_python_error(e);
    }
  });
  m.def("_register_error_class", [](const std::string& kind, py::object cls) {
    auto it = kind_names().find(kind);
    if (it == kind_names().end()) throw py::value_error("unknown error kind " + kind);
    error_classes()[it->second] = std::move(cls);
  });
  m.def("_error_kinds", [] {
    std::vector<std::string> kinds;
    for (const auto& [name, kind] : kind_names()) kinds.push_back(name);
    return kinds;
  });
}

void bind_model(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer", "The model's tokenizer (HF tokenizers' algorithms, in C++).")
      .def("encode", [](const Tokenizer& t, const std::string& text, bool add_special_tokens) {
             return t.encode_ids(text, add_special_tokens);
           }, py::arg("text"), py::arg("add_special_tokens") = true)
      .def("tokens", [](const Tokenizer& t, const std::string& text, bool add_special_tokens) {
             return t.encode(text, add_special_tokens).tokens;
           }, py::arg("text"), py::arg("add_special_tokens") = true)
      .def("decode", &Tokenizer::decode, py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def("id_to_token", &Tokenizer::id_to_token)
      .def("token_to_id", &Tokenizer::token_to_id)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("pad_token_id", &Tokenizer::pad_token_id)
      .def_property_readonly("bos_token_id", &Tokenizer::bos_token_id)
      .def_property_readonly("eos_token_id", &Tokenizer::eos_token_id)
      .def_property_readonly("padding_id", &Tokenizer::padding_id)
      .def_static("from_folder", [](const std::string& path) { return Tokenizer::from_folder(path); }, py::arg("path"))
      .def_property_readonly("has_chat_template", &Tokenizer::has_chat_template)
      .def_property_readonly("chat_template_names", &Tokenizer::chat_template_names)
      .def("chat_template_source",
           [](const Tokenizer& t, const std::string& name, bool tools) {
             ChatTemplateOptions options;
             options.chat_template = name;
             if (tools) options.tools_json = "[]";
             return t.chat_template_source(options);
           },
           py::arg("name") = "", py::arg("tools") = false)
      .def("apply_chat_template",
           [](const Tokenizer& t, const std::string& messages_json, bool add_generation_prompt,
              bool continue_final_message, const std::string& chat_template, const std::string& tools_json,
              const std::string& documents_json, const std::string& extra_json, const std::string& fixed_time) {
             ChatTemplateOptions options;
             options.add_generation_prompt = add_generation_prompt;
             options.continue_final_message = continue_final_message;
             options.chat_template = chat_template;
             options.tools_json = tools_json;
             options.documents_json = documents_json;
             options.extra_json = extra_json;
             options.render.fixed_time = fixed_time;
             py::gil_scoped_release release;
             return t.apply_chat_template_json(messages_json, options);
           },
           py::arg("messages_json"), py::arg("add_generation_prompt") = false,
           py::arg("continue_final_message") = false, py::arg("chat_template") = "", py::arg("tools_json") = "",
           py::arg("documents_json") = "", py::arg("extra_json") = "", py::arg("fixed_time") = "",
           "transformers' apply_chat_template(tokenize=False) on a JSON list of messages.");

  py::class_<StandardizedTransformer, ModelPtr>(m, "Model", "A loaded model (nnterp::StandardizedTransformer).")
      .def(py::init([](const std::string& path, const std::string& dtype, const std::string& device, bool load_tokenizer,
                       bool validate) {
             LoadOptions options;
             options.dtype = parse_dtype_option(dtype, "dtype");
             options.device = parse_device_option(device, "device");
             options.load_tokenizer = load_tokenizer;
             options.validate = validate;
             py::gil_scoped_release unlocked;
             return std::make_shared<StandardizedTransformer>(path, options);
           }),
           py::arg("path"), py::arg("dtype") = "float32", py::arg("device") = "cpu", py::arg("load_tokenizer") = true,
           py::arg("validate") = true)
      .def_property_readonly("path", [](const StandardizedTransformer& s) { return s.path().string(); })
      .def_property_readonly("architecture", &StandardizedTransformer::architecture)
      .def_property_readonly("hf_class", &StandardizedTransformer::hf_class)
      .def_property_readonly("num_layers", &StandardizedTransformer::num_layers)
      .def_property_readonly("num_heads", &StandardizedTransformer::num_heads)
      .def_property_readonly("num_kv_heads", &StandardizedTransformer::num_kv_heads)
      .def_property_readonly("head_dim", &StandardizedTransformer::head_dim)
      .def_property_readonly("hidden_size", &StandardizedTransformer::hidden_size)
      .def_property_readonly("vocab_size", &StandardizedTransformer::vocab_size)
      .def_property_readonly("has_router", [](const StandardizedTransformer& s) { return s.has_router(); })
      .def_property_readonly("has_attention_sinks", [](const StandardizedTransformer& s) { return s.has_attention_sinks(); },
                             "Whether each softmax has a sink logit per head (gpt-oss): attention rows sum to less than 1.")
      .def_property_readonly("padding_dependence", [](const StandardizedTransformer& s) { return s.padding_dependence(); },
                             "Empty, or how this architecture's outputs depend on left padding (as HF's do).")
      .def("has_point", [](const StandardizedTransformer& s, const std::string& name) { return s.has_point(parse_point(name)); },
           py::arg("point"), "Whether this model computes the point named `point` (e.g. \"layers.0.attn_probs\").")
      .def("why_no_point",
           [](const StandardizedTransformer& s, const std::string& name) {
             std::string why;
             s.has_point(parse_point(name), &why);
             return why;
           },
           py::arg("point"), "Why this model does not compute `point` (empty when it does).")
      .def("point_shape",
           [](const StandardizedTransformer& s, const std::string& name, int64_t batch, int64_t tokens, int64_t past) {
             return s.point_shape(parse_point(name), batch, tokens, past);
           },
           py::arg("point"), py::arg("batch"), py::arg("tokens"), py::arg("past") = 0,
           "The shape of `point` in a forward over batch rows of `tokens` tokens after `past` cached ones.")
      .def("has_router_at", [](const StandardizedTransformer& s, int64_t layer) { return s.has_router(layer); },
           py::arg("layer"), "Whether layer `layer` is a mixture-of-experts layer (has router logits).")
      .def_property_readonly("dtype", [](const StandardizedTransformer& s) { return dtype_name(s.dtype()); })
      .def_property_readonly("device", [](const StandardizedTransformer& s) { return s.device().str(); })
      .def_property_readonly("eos_token_ids", &StandardizedTransformer::eos_token_ids)
      .def_property_readonly("pad_token_id", &StandardizedTransformer::pad_token_id)
      .def_property_readonly("tokenizer", &StandardizedTransformer::tokenizer, py::return_value_policy::reference_internal)
      .def("tokenize", [](const StandardizedTransformer& s, const py::handle& inputs) {
             auto batch = s.tokenize(trace_input(inputs));
             return py::make_tuple(batch.input_ids, batch.attention_mask);
           }, py::arg("inputs"))
      .def("forward", [](const StandardizedTransformer& s, const torch::Tensor& ids, std::optional<torch::Tensor> mask) {
             py::gil_scoped_release unlocked;
             return s.forward(ids, mask.value_or(torch::Tensor()));
           }, py::arg("input_ids"), py::arg("attention_mask") = py::none())
      .def("project_on_vocab", [](const StandardizedTransformer& s, const torch::Tensor& hidden) {
             py::gil_scoped_release unlocked;
             return s.project_on_vocab(hidden);
           }, py::arg("hidden"))
      .def("final_norm", [](const StandardizedTransformer& s, const torch::Tensor& hidden) {
             py::gil_scoped_release unlocked;
             return s.final_norm(hidden);
           }, py::arg("hidden"))
      .def("unembed", [](const StandardizedTransformer& s, const torch::Tensor& normed) {
             py::gil_scoped_release unlocked;
             return s.unembed(normed);
           }, py::arg("normed"))
      .def("has_param",
           [](const StandardizedTransformer& s, const std::string& name, int layer) {
             std::string why;
             const bool has = has_param(s, parse_param(name), layer, &why);
             return py::make_tuple(has, why);
           },
           py::arg("name"), py::arg("layer") = -1, "(whether the model has the parameter, why not)")
      .def("param", [](const StandardizedTransformer& s, const std::string& name, int layer) {
             return param(s, parse_param(name), layer);
           }, py::arg("name"), py::arg("layer") = -1)
      .def("set_param", [](StandardizedTransformer& s, const std::string& name, int layer, const torch::Tensor& value) {
             set_param(s, parse_param(name), layer, value);
           }, py::arg("name"), py::arg("layer"), py::arg("value"))
      .def("ablate_neuron", [](StandardizedTransformer& s, int layer, int64_t neuron) { ablate_neuron(s, layer, neuron); },
           py::arg("layer"), py::arg("neuron"))
      .def("project_out_of_residual_writes",
           [](StandardizedTransformer& s, const torch::Tensor& direction) { project_out_of_residual_writes(s, direction); },
           py::arg("direction"));
  m.def("param_table", [] {
    py::list rows;
    for (const auto& info : param_table())
      rows.append(py::dict(py::arg("name") = info.name, py::arg("per_layer") = info.per_layer,
                           py::arg("shape") = info.shape, py::arg("meaning") = info.meaning));
    return rows;
  });

  m.def("default_model_dir", [] { return default_model_dir().string(); });
  m.def("load_safetensors", [](const std::string& path) {
    auto file = io::SafetensorsFile::open(path);
    py::dict tensors;
    for (const auto& info : file->tensors()) tensors[py::str(info.name)] = file->tensor(info.name).clone();
    return tensors;
  }, py::arg("path"), "Every tensor of a .safetensors file (copies in memory), by name.");
  m.def("save_safetensors", [](const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
    std::vector<std::pair<std::string, torch::Tensor>> items(tensors.begin(), tensors.end());
    io::save_safetensors(path, items);
  }, py::arg("path"), py::arg("tensors"));
  m.def("configure_threads", [](int threads) { return configure_threads(threads).blas_threads; }, py::arg("threads") = 0,
        "Sets nnterp's threading policy (BLAS threads = cores or `threads`, libtorch intra-op = 1); returns the BLAS threads.");
}

}  // namespace nnterp::python

PYBIND11_MODULE(_nnterp, m) {
  m.doc() = "nnterp's C++ engine; use the `nnterp` package.";
  m.attr("__version__") = NNTERP_VERSION;
  nnterp::python::bind_errors(m);
  nnterp::python::bind_model(m);
  nnterp::python::bind_trace(m);
  nnterp::python::bind_methods(m);
  nnterp::python::bind_chat(m);
  nnterp::python::bind_sae(m);
  nnterp::python::bind_tuned_lens(m);
}
