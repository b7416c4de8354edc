// The trace as Python drives it: a `with model.trace(...)` block opens an OpenTrace, the block's
// code reads and writes points through it (each read runs the forward, on its own stack, up to the
// point), and the block's end finishes or abandons it (python/nnterp/_model.py).
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "bindings.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::python {

namespace {

ForwardInput forward_input(const StandardizedTransformer& model, const py::handle& inputs) {
  auto batch = model.tokenize(trace_input(inputs));
  ForwardInput input;
  input.input_ids = batch.input_ids;
  input.attention_mask = batch.attention_mask;
  return input;
}

// A point as the accessors pass it (the Point's int, cheaper to convert than the enum), checked.
PointId point_id(int point, int layer) {
  if (point < 0 || point > static_cast<int>(Point::Logits)) throw py::value_error("unknown point " + std::to_string(point));
  return PointId{static_cast<Point>(point), layer};
}

class PyTrace {
 public:
  PyTrace(ModelPtr model, const py::handle& inputs, bool grad, bool check_non_finite)
      : PyTrace(model, forward_input(*model, inputs), grad, check_non_finite) {}

  PyTrace(ModelPtr model, const ForwardInput& input, bool grad, bool check_non_finite) : model_(std::move(model)) {
    TraceOptions options;
    options.grad = grad;
    options.check_non_finite = check_non_finite;
    open_ = std::make_unique<OpenTrace>(*model_, input, options);
  }

  // The live value at a point: the forward runs up to it (with the GIL released: it runs no Python).
  torch::Tensor get(int point, int layer) {
    const PointId id = point_id(point, layer);
    py::gil_scoped_release unlocked;
    return trace().at(id);
  }
  torch::Tensor get_named(const std::string& name) {
    py::gil_scoped_release unlocked;
    return trace().at(name);
  }
  // Replaces the value at a point: the forward continues with `value` (shape and dtype checked
  // when it resumes, as in C++).
  void set(int point, int layer, const torch::Tensor& value) {
    const PointId id = point_id(point, layer);
    py::gil_scoped_release unlocked;
    trace().at(id) = value;
  }

  torch::Tensor finish() {
    py::gil_scoped_release unlocked;
    auto logits = open().finish();
    open_.reset();
    return logits;
  }
  void abandon() {
    if (!open_) return;
    py::gil_scoped_release unlocked;
    open_->abandon();
    open_.reset();
  }

  Trace& trace() { return open().trace(); }
  bool is_open() const { return open_ != nullptr; }

 private:
  OpenTrace& open() {
    if (!open_) throw Error(ErrorKind::InvalidArgument, "trace", "the trace is closed: its `with` block has ended");
    return *open_;
  }
  ModelPtr model_;  // keeps the model alive while the trace is
  std::unique_ptr<OpenTrace> open_;
};

// A generation driven step by step from Python (`for step in gen.iter[...]`): each step's forward
// is a PyTrace the loop body reads and edits.
class PyGeneration {
 public:
  PyGeneration(ModelPtr model, const py::handle& inputs, const GenerateOptions& options)
      : model_(std::move(model)), generation_(*model_, trace_input(inputs), options) {}
  bool done() const { return generation_.done(); }
  int step() const { return generation_.step(); }
  PyTrace open_step() { return PyTrace(model_, generation_.next_input(), false, true); }
  void accept(const torch::Tensor& logits) {
    py::gil_scoped_release unlocked;
    generation_.accept(logits);
  }
  // Steps with no body, until `step` (or the end).
  void run_until(int step) {
    py::gil_scoped_release unlocked;
    while (!generation_.done() && generation_.step() < step)
      generation_.accept(run_trace(*model_, generation_.next_input(), TraceBody{}));
  }
  GenerateResult result() const { return generation_.result(); }

 private:
  ModelPtr model_;
  Generation generation_;
};

}  // namespace

void bind_trace(py::module_& m) {
  py::enum_<Point>(m, "Point")
      .value("Embed", Point::Embed)
      .value("LayerInput", Point::LayerInput)
      .value("AttnInput", Point::AttnInput)
      .value("Query", Point::Query)
      .value("Key", Point::Key)
      .value("Value", Point::Value)
      .value("AttnScores", Point::AttnScores)
      .value("AttnProbs", Point::AttnProbs)
      .value("ConvState", Point::ConvState)
      .value("RecurrentState", Point::RecurrentState)
      .value("Z", Point::Z)
      .value("AttnOutput", Point::AttnOutput)
      .value("ResidMid", Point::ResidMid)
      .value("MlpInput", Point::MlpInput)
      .value("RouterLogits", Point::RouterLogits)
      .value("ExpertIndices", Point::ExpertIndices)
      .value("ExpertWeights", Point::ExpertWeights)
      .value("MlpHidden", Point::MlpHidden)
      .value("MlpOutput", Point::MlpOutput)
      .value("LayerOutput", Point::LayerOutput)
      .value("FinalNorm", Point::FinalNorm)
      .value("Logits", Point::Logits);
  m.def("point_table", [] {
    py::list rows;
    for (const auto& info : point_table())
      rows.append(py::dict(py::arg("point") = info.point, py::arg("pattern") = info.pattern,
                           py::arg("trace_name") = info.trace_name, py::arg("shape") = info.shape,
                           py::arg("meaning") = info.meaning, py::arg("per_layer") = info.per_layer()));
    return rows;
  });

  m.def("trace_points", [](const StandardizedTransformer& model, const py::handle& inputs, const std::vector<std::string>& names) {
    auto batch = model.tokenize(trace_input(inputs));
    std::vector<std::pair<std::string, torch::Tensor>> values;
    {
      py::gil_scoped_release unlocked;
      run_trace(model, batch, [&](Trace& t) {
        for (const auto& name : names) values.emplace_back(name, t.at(name).clone());
      });
    }
    py::dict out;
    for (auto& [name, value] : values) out[py::str(name)] = value;
    return out;
  }, py::arg("model"), py::arg("inputs"), py::arg("points"),
  "The values of the named points (in forward order) read by a C++ trace body: copies, by name.");

  // For bench/bench_python_trace.py: the median time of a C++ trace whose body reads `names` (and
  // does nothing else), so the Python block's cost is measured against C++ in the same process.
  m.def("_time_cpp_trace", [](const StandardizedTransformer& model, const py::handle& inputs,
                              const std::vector<std::string>& names, int reps) {
    auto batch = model.tokenize(trace_input(inputs));
    std::vector<PointId> points;
    for (const auto& name : names) points.push_back(parse_point(name));
    py::gil_scoped_release unlocked;
    std::vector<double> seconds;
    for (int r = 0; r < reps; ++r) {
      const auto start = std::chrono::steady_clock::now();
      run_trace(model, batch, [&](Trace& t) {
        for (const auto& p : points) (void)t.at(p);
      });
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return seconds[seconds.size() / 2];
  });

  py::class_<PyTrace>(m, "Trace", "One forward pass driven by a `with` block (use StandardizedTransformer.trace).")
      .def(py::init<ModelPtr, const py::handle&, bool, bool>(), py::arg("model"), py::arg("inputs"),
           py::arg("grad") = false, py::arg("check_non_finite") = true)
      .def("get", &PyTrace::get, py::arg("point"), py::arg("layer") = -1,
           "The live value at a point (a Point, or its int: the accessors pass ints, cheaper to convert).")
      .def("get", &PyTrace::get_named, py::arg("name"))
      .def("set", &PyTrace::set, py::arg("point"), py::arg("layer"), py::arg("value"))
      .def("finish", &PyTrace::finish)
      .def("abandon", &PyTrace::abandon)
      .def_property_readonly("is_open", &PyTrace::is_open)
      .def_property_readonly("input_ids", [](PyTrace& t) { return t.trace().input_ids(); })
      .def_property_readonly("attention_mask", [](PyTrace& t) { return t.trace().attention_mask(); })
      .def("next_token_probs", [](PyTrace& t) {
        py::gil_scoped_release unlocked;
        return t.trace().next_token_probs();
      })
      .def("steer", [](PyTrace& t, const std::vector<int>& layers, const torch::Tensor& vector, double factor,
                       const std::vector<int64_t>& positions, std::optional<int64_t> batch_index) {
             py::gil_scoped_release unlocked;
             t.trace().steer(layers, vector, factor, positions, batch_index);
           }, py::arg("layers"), py::arg("steering_vector"), py::arg("factor") = 1.0,
           py::arg("positions") = std::vector<int64_t>{}, py::arg("batch_index") = std::nullopt)
      .def("skip_layers", [](PyTrace& t, int first, int last, std::optional<torch::Tensor> with) {
             py::gil_scoped_release unlocked;
             t.trace().skip_layers(first, last, with.value_or(torch::Tensor()));
           }, py::arg("first"), py::arg("last"), py::arg("with_") = py::none())
      .def("stop", [](PyTrace& t) { t.trace().stop(); })
      .def("sae", [](PyTrace& t, const Sae& sae, std::optional<std::string> point, bool keep_error) {
             // The live features: in-place edits (and requires_grad_) reach the splice, as at a point.
             SaeSpliceOptions options;
             options.keep_error = keep_error;
             py::gil_scoped_release unlocked;
             return point ? t.trace().sae(*point, sae, options) : t.trace().sae(sae, options);
           }, py::arg("sae"), py::arg("point") = py::none(), py::arg("keep_error") = true);

  py::class_<PyGeneration>(m, "Generation", "A generation run step by step (use StandardizedTransformer.generate).")
      .def(py::init([](ModelPtr model, const py::handle& inputs, const py::dict& options) {
             return std::make_unique<PyGeneration>(std::move(model), inputs, generate_options(options));
           }),
           py::arg("model"), py::arg("inputs"), py::arg("options"))
      .def_property_readonly("done", &PyGeneration::done)
      .def_property_readonly("step", &PyGeneration::step)
      .def("open_step", &PyGeneration::open_step)
      .def("accept", &PyGeneration::accept)
      .def("run_until", &PyGeneration::run_until, py::arg("step") = std::numeric_limits<int>::max())
      .def("result", [](const PyGeneration& g) { return generate_result(g.result()); });
}

}  // namespace nnterp::python
