// Sparse dictionaries (nnterp/sae.hpp) and their methods (nnterp/sae_methods.hpp) for the Python
// package (python/nnterp/sae.py). Trace.sae, the splice inside a trace, is bound with the trace
// (trace.cpp). Long runs release the GIL.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.hpp"
#include "nnterp/error.hpp"
#include "nnterp/sae_methods.hpp"

namespace nnterp::python {

namespace {

py::dict config_dict(const SaeConfig& c) {
  auto point = [](const std::optional<PointId>& p) { return p ? py::object(py::str(p->name())) : py::object(py::none()); };
  return py::dict(py::arg("architecture") = c.architecture, py::arg("activation") = sae_activation_name(c.activation),
                  py::arg("d_in") = c.d_in, py::arg("d_sae") = c.d_sae, py::arg("d_out") = c.d_out, py::arg("k") = c.k,
                  py::arg("apply_b_dec_to_input") = c.apply_b_dec_to_input, py::arg("transcoder") = c.transcoder,
                  py::arg("format") = c.format, py::arg("hook_name") = c.hook_name, py::arg("point") = point(c.input_point),
                  py::arg("output_point") = point(c.output_point), py::arg("model_name") = c.model_name,
                  py::arg("source") = c.source.string());
}

// An SAE from tensors (tests, notebooks): ReLU ("standard"), "topk" (k) or "jumprelu" (threshold).
Sae sae_from_weights(const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& W_dec,
                     const torch::Tensor& b_dec, const std::string& point, const std::string& architecture, int64_t k,
                     std::optional<torch::Tensor> threshold, bool apply_b_dec_to_input) {
  SaeConfig c;
  if (architecture == "standard" || architecture == "relu") c.activation = SaeActivation::ReLU;
  else if (architecture == "topk") c.activation = SaeActivation::TopK;
  else if (architecture == "jumprelu") c.activation = SaeActivation::JumpReLU;
  else throw Error(ErrorKind::InvalidArgument, "architecture", "'" + architecture + "' is not one of standard, topk, jumprelu");
  c.architecture = architecture;
  c.d_in = W_enc.size(0), c.d_sae = W_enc.size(1), c.d_out = W_dec.size(1);
  c.k = k;
  c.apply_b_dec_to_input = apply_b_dec_to_input;
  c.input_point = parse_point(point);
  SaeWeights w;
  w.W_enc = W_enc, w.b_enc = b_enc, w.W_dec = W_dec, w.b_dec = b_dec;
  if (threshold) w.threshold = *threshold;
  return Sae(c, w);
}

std::vector<int64_t> target_list(const py::handle& target) {
  if (py::isinstance<py::int_>(target)) return {target.cast<int64_t>()};
  return target.cast<std::vector<int64_t>>();
}

}  // namespace

void bind_sae(py::module_& m) {
  using Model = StandardizedTransformer;
  py::class_<Sae>(m, "Sae", "A sparse autoencoder or transcoder (nnterp::Sae): SAELens, Gemma Scope or safetensors.")
      .def_static("load",
                  [](const std::filesystem::path& path, std::optional<std::string> point) {
                    SaeLoadOptions o;
                    if (point) o.point = parse_point(*point);
                    return Sae::load(path, o);
                  },
                  py::arg("path"), py::arg("point") = py::none(),
                  "A SAELens folder, a Gemma Scope folder or params file, or a .safetensors file; `point` "
                  "(\"layers.3.output\") overrides where it reads and writes.")
      .def_static("from_weights", &sae_from_weights, py::arg("W_enc"), py::arg("b_enc"), py::arg("W_dec"), py::arg("b_dec"),
                  py::arg("point"), py::arg("architecture") = "standard", py::arg("k") = 0, py::arg("threshold") = py::none(),
                  py::arg("apply_b_dec_to_input") = false)
      .def("encode", &Sae::encode, py::arg("x"), "The feature activations of x [..., d_in]: [..., d_sae].")
      .def("decode",
           [](const Sae& s, const torch::Tensor& features, std::optional<torch::Tensor> input) {
             return s.decode(features, input.value_or(torch::Tensor()));
           },
           py::arg("features"), py::arg("input") = py::none(),
           "The reconstruction [..., d_out]; `input` (what was encoded) for per-token normalizations and skip transcoders.")
      .def("reconstruct", &Sae::reconstruct, py::arg("x"))
      .def("save_saelens", &Sae::save_saelens, py::arg("dir"))
      .def_property_readonly("d_in", &Sae::d_in)
      .def_property_readonly("d_sae", &Sae::d_sae)
      .def_property_readonly("d_out", &Sae::d_out)
      .def_property_readonly("config", [](const Sae& s) { return config_dict(s.config()); })
      .def_property_readonly("W_enc", [](const Sae& s) { return s.weights().W_enc; })
      .def_property_readonly("W_dec", [](const Sae& s) { return s.weights().W_dec; })
      .def("__repr__", [](const Sae& s) {
        const auto& c = s.config();
        return "Sae(" + c.architecture + ", d_in=" + std::to_string(c.d_in) + ", d_sae=" + std::to_string(c.d_sae) +
               (c.input_point ? ", point=" + c.input_point->name() : std::string()) + ")";
      });

  m.def("sae_top_features", [](const Model& model, const py::handle& prompts, const Sae& sae, int64_t k, int64_t batch_size) {
    auto input = trace_input(prompts);
    SaeTopFeatures r;
    {
      py::gil_scoped_release unlocked;
      r = sae_top_features(model, input, sae, k, batch_size);
    }
    return py::dict(py::arg("indices") = r.indices, py::arg("activations") = r.activations, py::arg("input_ids") = r.input_ids,
                    py::arg("attention_mask") = r.attention_mask, py::arg("tokens") = r.tokens);
  });
  m.def("sae_feature_activations", [](const Model& model, const py::handle& prompts, const Sae& sae,
                                      const std::vector<int64_t>& features, int64_t batch_size) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return sae_feature_activations(model, input, sae, features, batch_size);
  });
  m.def("sae_feature_attribution", [](const Model& model, const py::handle& prompts, const Sae& sae, const py::handle& target,
                                      int64_t idx, int64_t batch_size, int64_t top) {
    auto input = trace_input(prompts);
    const auto targets = target_list(target);
    SaeAttributionOptions o;
    o.idx = idx, o.batch_size = batch_size, o.top = top;
    SaeAttribution r;
    {
      py::gil_scoped_release unlocked;
      r = sae_feature_attribution(model, input, sae, targets, o);
    }
    return py::dict(py::arg("targets") = r.targets, py::arg("logits") = r.logits, py::arg("activations") = r.activations,
                    py::arg("attribution") = r.attribution, py::arg("attribution_at_idx") = r.attribution_at_idx,
                    py::arg("dla") = r.dla.defined() ? py::object(py::cast(r.dla)) : py::object(py::none()),
                    py::arg("top_features") = r.top_features);
  });
  m.def("sae_evaluate", [](const Model& model, const py::handle& prompts, const Sae& sae, int64_t batch_size,
                           bool exclude_special_tokens) {
    auto input = trace_input(prompts);
    SaeEvalOptions o;
    o.batch_size = batch_size, o.exclude_special_tokens = exclude_special_tokens;
    SaeEvaluation r;
    {
      py::gil_scoped_release unlocked;
      r = sae_evaluate(model, input, sae, o);
    }
    return py::dict(py::arg("tokens") = r.tokens, py::arg("predictions") = r.predictions, py::arg("fve") = r.fve,
                    py::arg("mse") = r.mse, py::arg("l0") = r.l0, py::arg("dead_fraction") = r.dead_fraction,
                    py::arg("feature_density") = r.feature_density, py::arg("ce_clean") = r.ce_clean,
                    py::arg("ce_sae") = r.ce_sae, py::arg("ce_zero") = r.ce_zero, py::arg("loss_recovered") = r.loss_recovered);
  });
}

}  // namespace nnterp::python
