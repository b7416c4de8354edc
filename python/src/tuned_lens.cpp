// The tuned lens (nnterp/tuned_lens.hpp) for the Python package (python/nnterp/tuned_lens.py gives
// it its Python signatures). Training and evaluation release the GIL; the progress callback takes it
// back for each call.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nnterp/tuned_lens.hpp"

namespace nnterp::python {

void bind_tuned_lens(py::module_& m) {
  using Model = StandardizedTransformer;
  py::class_<TunedLens>(m, "TunedLens", "A tuned lens: per-layer affine translators (nnterp::TunedLens).")
      .def_static("load", [](const std::string& path, const Model& model) { return TunedLens::load(path, model); })
      .def_static("identity", [](const Model& model) { return TunedLens::identity(model); })
      .def("save", [](const TunedLens& lens, const std::string& path) { lens.save(path); })
      .def("translate", &TunedLens::translate, py::arg("layer"), py::arg("hidden"))
      .def("weight", &TunedLens::weight, py::arg("layer"))
      .def("bias", &TunedLens::bias, py::arg("layer"))
      .def_property_readonly("num_layers", &TunedLens::num_layers)
      .def_property_readonly("hidden_size", &TunedLens::hidden_size)
      .def_property_readonly("model", [](const TunedLens& l) { return l.info().model; })
      .def_property_readonly("fingerprint", [](const TunedLens& l) { return l.info().fingerprint; })
      .def_property_readonly("steps", [](const TunedLens& l) { return l.info().steps; })
      .def_property_readonly("train_loss", [](const TunedLens& l) { return l.info().train_loss; });

  m.def("tuned_lens", [](const Model& model, const py::handle& prompts, const TunedLens& lens, const std::vector<int>& layers,
                         int64_t idx, int64_t batch_size) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return tuned_lens(model, input, lens, LensOptions{layers, idx, batch_size});
  });
  m.def("lens_kl_to_final", [](const Model& model, const py::handle& prompts, const TunedLens& lens, int64_t batch_size,
                               bool last_token_only) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return lens_kl_to_final(model, input, lens, batch_size, last_token_only);
  });
  m.def("train_tuned_lens", [](const Model& model, const py::handle& prompts, int64_t steps, int64_t batch_size,
                               const std::string& optimizer, double lr, double weight_decay, int64_t warmup_steps,
                               uint64_t seed, const std::string& checkpoint, int64_t checkpoint_every, bool resume,
                               const py::object& on_step) {
    auto input = trace_input(prompts);
    TunedLensTrainOptions o;
    o.steps = steps, o.batch_size = batch_size, o.optimizer = parse_lens_optimizer(optimizer);
    o.lr = lr, o.weight_decay = weight_decay, o.warmup_steps = warmup_steps, o.seed = seed;
    o.checkpoint = checkpoint, o.checkpoint_every = checkpoint_every, o.resume = resume;
    if (!on_step.is_none())
      // By reference: the options are copied while the GIL is released, and copying a py::object
      // would touch its reference count.
      o.on_step = [&on_step](const TunedLensTrainProgress& p) {
        py::gil_scoped_acquire locked;
        on_step(p.step, p.steps, p.loss);
      };
    py::gil_scoped_release unlocked;
    return train_tuned_lens(model, input, o);
  });
}

}  // namespace nnterp::python
